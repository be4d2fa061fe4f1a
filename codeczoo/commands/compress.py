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
    pretrained = not args.no_pretrained and has_pretrained(args.codec)
    codec = load(args.codec, quality=args.quality, pretrained=pretrained)
    total_in = total_out = pixels = 0
    for job in tqdm(jobs, desc=f"compress ({args.codec})", unit="img", disable=len(jobs) < 2):
        data = compress_file(job.source, codec, args.quality)
        write_bytes(job.target, data)
        pixels += read_header(data).spec.pixels
        total_in += job.source.stat().st_size
        total_out += len(data)
    quality = codec.default_quality if args.quality is None else args.quality
    print(f"{len(jobs)} file(s): {total_in} -> {total_out} bytes, "
          f"{total_out * 8 / max(pixels, 1):.4f} bpp ({args.codec}, quality {quality})")
    return 0
