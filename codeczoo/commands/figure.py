"""``codeczoo figure IMAGE --bpp 0.5 -o fig.png``: each codec's reconstruction at a matched rate."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import options


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "figure", help="visual comparison of codecs at a matched bpp, with error maps (PNG)")
    parser.add_argument("image", help="an X-ray image file (PNG, DICOM, ...)")
    parser.add_argument("--bpp", type=float, default=0.5, help="target bits per pixel (default: 0.5)")
    parser.add_argument("-o", "--output", required=True, help="PNG file to write")
    options.add_codecs(parser)
    parser.add_argument("--region", help="top,left,height,width (default: centred 256 px square)")
    parser.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=None,
                        help="use the shipped weights (default: if the codec has them)")
    parser.add_argument("--include-untrained", action="store_true",
                        help="with the default codec list, add codecs without shipped weights")
    options.add_device(parser)
    options.add_force(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..errors import CodeczooError
    from ..evaluation.evaluate import parse_ints
    from ..evaluation.figure import comparison_figure

    image, output = Path(args.image), Path(args.output)
    if not image.is_file():
        raise CodeczooError(f"image not found: {image}")
    if output.suffix.lower() != ".png":
        raise CodeczooError(f"the figure is written as PNG: {output.name} does not end in .png")
    if output.resolve() == image.resolve():
        raise CodeczooError(f"output {output} is the input image")
    if output.exists() and not args.force:
        raise CodeczooError(f"output {output} exists (use --force to replace it)")
    region = parse_ints(args.region, "--region values") if args.region else None
    codecs = [c for c in args.codecs.split(",") if c] if args.codecs else None
    path, panels = comparison_figure(image, output, codecs, args.bpp, region, args.pretrained,
                                     args.include_untrained, args.device)
    for p in panels:
        print(f"{p.codec:32s} quality {p.quality:4d}  {p.bpp:.3f} bpp  "
              f"{'lossless' if p.psnr == float('inf') else f'{p.psnr:.2f} dB'}")
    print(f"figure written to {path}")
    return 0
