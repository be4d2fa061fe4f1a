"""``codeczoo compress IN... -o OUT``: image files or folders to .czoo bitstreams."""

from __future__ import annotations

from . import options


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "compress", help="compress PNG/JPEG/NPY/DICOM files or folders to .czoo bitstreams")
    parser.add_argument("inputs", nargs="+", help="image files or folders (searched recursively)")
    parser.add_argument("-o", "--output", required=True,
                        help="output file (one input) or folder (mirrors the input folders)")
    parser.add_argument("--codec", default="jpeg2000", help="registered codec (codeczoo list)")
    parser.add_argument("--quality", type=int, help="rate setting (codec specific, see its card)")
    parser.add_argument("--max-error", type=int, metavar="K",
                        help="guarantee |original - decoded| <= K on every pixel (0 = lossless): "
                             "the codec at --quality becomes the base of the learned residual "
                             "layer (codeczoo.residual)")
    parser.add_argument("--no-pretrained", action="store_true",
                        help="use freshly initialised weights even where pretrained ones ship")
    options.add_force(parser, "existing outputs")
    parser.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from .. import load
    from ..bitstream import read_header
    from ..files import BITSTREAM_SUFFIX, IMAGE_SUFFIXES, compress_file, plan, write_bytes
    from ..registry import has_pretrained

    jobs = plan(args.inputs, args.output, IMAGE_SUFFIXES, BITSTREAM_SUFFIX, args.force)
    if args.max_error is not None:
        from ..residual import bounded

        codec = bounded(args.codec, args.quality, pretrained=False if args.no_pretrained else None)
        quality = codec.check_quality(args.max_error)
        label = (f"max error {quality}, base {args.codec} quality "
                 f"{codec.resolved_base_quality()}")
    else:
        pretrained = not args.no_pretrained and has_pretrained(args.codec)
        codec = load(args.codec, quality=args.quality, pretrained=pretrained)
        quality = args.quality
        label = f"{args.codec}, quality {codec.default_quality if quality is None else quality}"
    total_in = total_out = pixels = 0
    for job in tqdm(jobs, desc=f"compress ({args.codec})", unit="img", disable=len(jobs) < 2):
        data = compress_file(job.source, codec, quality)
        write_bytes(job.target, data)
        pixels += read_header(data).spec.pixels
        total_in += job.source.stat().st_size
        total_out += len(data)
    print(f"{len(jobs)} file(s): {total_in} -> {total_out} bytes, "
          f"{total_out * 8 / max(pixels, 1):.4f} bpp ({label})")
    return 0
