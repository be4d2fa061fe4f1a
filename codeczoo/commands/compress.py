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
    parser.add_argument("--format", choices=("czoo", "dicom"), default="czoo",
                        help="czoo: codeczoo bitstreams (default); dicom: DICOM inputs to "
                             "DICOM files whose pixel data is the codestream in its standard "
                             "transfer syntax (jpeg2000, jpegls, htj2k; see docs/io.md)")
    parser.add_argument("--untrained-weights", action="store_true",
                        help="allow a learned codec without trained weights (seeded random "
                             "weights: the files decode to noise, and only with this codeczoo "
                             "and torch version); for pipeline tests only")
    options.add_force(parser, "existing outputs")
    parser.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from .. import load_for_encoding
    from ..bitstream import read_header
    from ..files import BITSTREAM_SUFFIX, IMAGE_SUFFIXES, compress_file, plan, write_bytes

    codec = load_for_encoding(args.codec, args.quality, allow_untrained=args.untrained_weights)
    if args.format == "dicom":
        return run_dicom(args, codec)
    jobs = plan(args.inputs, args.output, IMAGE_SUFFIXES, BITSTREAM_SUFFIX, args.force)
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


def run_dicom(args, codec) -> int:
    """``--format dicom``: each DICOM input to an encapsulated DICOM (codeczoo.encapsulation)."""
    from tqdm import tqdm

    from ..encapsulation import compress_to_dicom, transfer_syntax_for
    from ..files import IMAGE_SUFFIXES, plan

    syntax = transfer_syntax_for(codec, args.quality)  # refuse learned codecs before any work
    jobs = plan(args.inputs, args.output, IMAGE_SUFFIXES, ".dcm", args.force)
    total_in = total_out = frames = pixels = 0
    for job in tqdm(jobs, desc=f"compress ({args.codec}, DICOM)", unit="img", disable=len(jobs) < 2):
        written = compress_to_dicom(job.source, job.target, codec, args.quality)
        total_in += job.source.stat().st_size
        total_out += written.file_bytes
        frames += written.frame_bytes
        pixels += written.pixels
    print(f"{len(jobs)} DICOM file(s), transfer syntax {syntax}: {total_in} -> {total_out} bytes; "
          f"pixel data {frames * 8 / max(pixels, 1):.4f} bpp ({args.codec}, quality "
          f"{codec.check_quality(args.quality)})")
    return 0
