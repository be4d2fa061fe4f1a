"""``codeczoo compress IN... -o OUT``: image files or folders to .czoo bitstreams.

A folder is processed file by file: a file that fails is reported at the end with its reason
and the others are done (exit 1 if any failed). Rerunning the same command skips the outputs
already finished (see :mod:`codeczoo.files`), so only what failed is retried, without ``--force``.
"""

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
    parser.add_argument("--entropy", choices=("gzip", "learned"),
                        help="entropy stage of a recurrent codec: gzip (the paper's, default) "
                             "or learned (context model + rANS; codeczoo fit-entropy trains it)")
    parser.add_argument("--psnr", type=int, metavar="DB",
                        help="recurrent codecs: reach this PSNR (dB, over the image's bit depth) "
                             "with spatially adaptive iterations instead of --quality iterations")
    parser.add_argument("--max-error", type=int, metavar="K",
                        help="guarantee |original - decoded| <= K on every pixel (0 = lossless): "
                             "the codec at --quality becomes the base of the learned residual "
                             "layer (codeczoo.residual)")
    parser.add_argument("--untrained-weights", action="store_true",
                        help="allow a learned codec without trained weights (seeded random "
                             "weights: the files decode to noise, and only with this codeczoo "
                             "and torch version); for pipeline tests only")
    options.add_force(parser, "existing outputs (finished outputs of the same inputs and "
                              "settings are skipped without it)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from .. import load_bounded, load_for_encoding
    from ..atomic import write_bytes
    from ..bitstream import read_header
    from ..errors import CodeczooError
    from ..files import (BITSTREAM_SUFFIX, compress_file, compressed_output_problem, plan,
                         read_bitstream, report_failures, run_batch)
    from ..io import IMAGE_SUFFIXES
    from ..metrics import bpp

    if args.max_error is not None:
        if args.format == "dicom":
            raise CodeczooError("--max-error writes codeczoo bitstreams (the residual layer has "
                                "no DICOM transfer syntax); drop --format dicom")
        base, base_quality = args.codec, args.quality
        if args.entropy or args.psnr is not None:  # adaptive / learned base, bounded residual
            base += (f"@entropy={args.entropy}" if args.entropy else "") + \
                ("@rate_control=psnr" if args.psnr is not None else "")
            base_quality = args.psnr if args.psnr is not None else args.quality
        codec = load_bounded(base, base_quality, allow_untrained=args.untrained_weights)
        quality = codec.check_quality(args.max_error)
        label = f"max error {quality}, base {args.codec} quality {codec.resolved_base_quality()}"
    else:
        spec = args.codec + (f"@entropy={args.entropy}" if args.entropy else "")
        if args.psnr is not None:
            if args.quality is not None:
                raise CodeczooError("--psnr and --quality both set the rate: give one of them")
            spec += "@rate_control=psnr"
        quality = args.psnr if args.psnr is not None else args.quality
        # coding options travel in the spec, so a codec without them refuses them by name
        codec = load_for_encoding(spec, quality, allow_untrained=args.untrained_weights)
        if args.format == "dicom":
            return run_dicom(args, codec)
        label = f"{codec.label}, quality {codec.default_quality if quality is None else quality}"
    jobs = plan(args.inputs, args.output, IMAGE_SUFFIXES, BITSTREAM_SUFFIX)
    if len(jobs) == 1 and jobs[0].target.suffix.lower() in IMAGE_SUFFIXES:
        raise CodeczooError(
            f"output {jobs[0].target} has an image file's suffix, but compress writes a codeczoo "
            f"bitstream: name it {jobs[0].target.with_suffix(BITSTREAM_SUFFIX).name}")

    def work(job) -> None:
        write_bytes(job.target, compress_file(job.source, codec, quality), overwrite=True)

    report = run_batch(jobs, work, lambda job: compressed_output_problem(job, codec, quality),
                       args.force, desc=f"compress ({args.codec})")
    total_in = total_out = pixels = 0
    for job in report.done:
        data = read_bitstream(job.target)
        pixels += read_header(data).spec.pixels
        total_in += job.source.stat().st_size
        total_out += len(data)
    if report.done:
        print(f"{len(report.done)} file(s) compressed: {total_in} -> {total_out} bytes, "
              f"{bpp(total_out, pixels):.4f} bpp ({label})")
    if report.skipped:
        print(f"{len(report.skipped)} file(s) already done (finished outputs kept)")
    return report_failures(report)


def run_dicom(args, codec) -> int:
    """``--format dicom``: each DICOM input to an encapsulated DICOM (codeczoo.encapsulation),
    with the same batch rules as ``.czoo`` outputs (failures reported, finished outputs kept)."""
    from ..encapsulation import compress_to_dicom, encapsulated_output_problem, transfer_syntax_for
    from ..files import plan, report_failures, run_batch
    from ..io import IMAGE_SUFFIXES
    from ..metrics import bpp

    syntax = transfer_syntax_for(codec, args.quality)  # refuse learned codecs before any work
    jobs = plan(args.inputs, args.output, IMAGE_SUFFIXES, ".dcm")
    written = {}

    def work(job) -> None:
        written[job.target] = compress_to_dicom(job.source, job.target, codec, args.quality)

    report = run_batch(jobs, work, lambda job: encapsulated_output_problem(job, syntax),
                       args.force, desc=f"compress ({args.codec}, DICOM)")
    done = [written[job.target] for job in report.done]
    if done:
        total_in = sum(job.source.stat().st_size for job in report.done)
        print(f"{len(done)} DICOM file(s), transfer syntax {syntax}: {total_in} -> "
              f"{sum(w.file_bytes for w in done)} bytes; pixel data "
              f"{bpp(sum(w.frame_bytes for w in done), sum(w.pixels for w in done)):.4f} bpp "
              f"({args.codec}, quality {codec.check_quality(args.quality)})")
    if report.skipped:
        print(f"{len(report.skipped)} file(s) already done (finished outputs kept)")
    return report_failures(report)
