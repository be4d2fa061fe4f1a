"""``codeczoo eval DATA --codec NAME --quality 1,2,4``: rate–distortion of one codec, as JSON.

Writes CompressAI's results schema (see :mod:`codeczoo.evaluation.evaluate`); plot it with
``python -m compressai.utils.plot -f results.json`` or compare codecs with ``codeczoo bench``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from . import options


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="rate-distortion of a codec on images (JSON in CompressAI's schema)")
    parser.add_argument("data", nargs="+", help="image folders (searched recursively) or files")
    parser.add_argument("--codec", required=True, help="registered codec (codeczoo list)")
    parser.add_argument("--quality", help="comma-separated rate settings (default: the codec's sweep)")
    parser.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=None,
                        help="use the shipped weights (default: if the codec has them)")
    parser.add_argument("-o", "--output", help="results JSON (default: print it)")
    parser.add_argument("--per-image", action="store_true", help="also record every image")
    parser.add_argument("--save-bitstreams", metavar="DIR",
                        help="write every bitstream here; bpp is then read from the files' sizes")
    options.add_limit(parser)
    parser.add_argument("--no-recursive", action="store_true", help="do not search subfolders")
    options.add_device(parser)
    options.add_force(parser)
    parser.add_argument("--record", action="store_true",
                        help="also record the results with the weights they measure "
                             "(<registry>/<codec>/training.json, 'evaluations'), with the command")
    parser.set_defaults(func=run)


def summary_lines(result: dict) -> list[str]:
    r = result["results"]
    lines = [f"{result['name']}: {result['dataset']['images']} image(s), bit depth {result['bit_depth']}",
             f"{'quality':>8} {'bpp':>9} {'PSNR dB':>9} {'SSIM':>7} {'MS-SSIM':>8} {'enc s':>7} {'dec s':>7}"]

    def f(v, spec):
        return "-" if v is None else format(v, spec)

    for i, q in enumerate(result["quality"]):
        psnr = r["psnr"][i]
        lines.append(f"{q:>8} {f(r['bpp'][i], '.4f'):>9} "
                     f"{('lossless' if psnr is None and q in result['codec']['lossless_qualities'] else f(psnr, '.2f')):>9} "
                     f"{f(r['ssim'][i], '.4f'):>7} {f(r.get('ms-ssim', [None] * len(result['quality']))[i], '.4f'):>8} "
                     f"{f(r['encoding_time'][i], '.3f'):>7} {f(r['decoding_time'][i], '.3f'):>7}")
    return lines


def run(args) -> int:
    from ..errors import CodeczooError
    from ..evaluation.data import find_images
    from ..evaluation.evaluate import evaluate, parse_qualities, write_results

    if args.output and Path(args.output).exists() and not args.force:
        raise CodeczooError(f"output {args.output} exists (use --force to replace it)")
    images = find_images(args.data if len(args.data) > 1 else args.data[0],
                         recursive=not args.no_recursive, limit=args.limit)
    if args.output and Path(args.output).resolve() in {p.resolve() for p in images}:
        raise CodeczooError(f"output {args.output} is one of the input images")
    result = evaluate(args.codec, images, parse_qualities(args.quality), pretrained=args.pretrained,
                      per_image=args.per_image, save_bitstreams=args.save_bitstreams,
                      device=args.device, progress=True, source=", ".join(args.data))
    result["command"] = "codeczoo " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["eval"] else None
    if args.record:
        from ..training.export import record_evaluation

        record_evaluation(args.codec, {
            "command": result["command"], "dataset": result["dataset"],
            "bit_depth": result["bit_depth"], "quality": result["quality"],
            "weights_hash": result["codec"]["weights_hash"],
            "weights_hashes": result["codec"]["weights_hashes"],
            "results": {k: result["results"][k] for k in
                        ("bpp", "psnr", "ssim", "ms-ssim", "encoding_time", "decoding_time")
                        if k in result["results"]},  # MS-SSIM is absent on small images
        })
    if args.output:
        write_results(result, args.output)
        print("\n".join(summary_lines(result)))
        print(f"results written to {args.output}")
    else:
        print(json.dumps(result, indent=2, allow_nan=False))
    return 0
