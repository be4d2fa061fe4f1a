"""``codeczoo decompress IN... -o OUT``: .czoo bitstreams back to PNG, NPY or DICOM files.

Folders are processed file by file like ``compress`` (failures reported at the end, finished
outputs skipped on a rerun). Images above the pixel limit are refused before decoding
(``--max-pixels``, ``CODECZOO_MAX_PIXELS``; see :mod:`codeczoo.limits`).
"""

from __future__ import annotations

from . import options


def add_parser(subparsers) -> None:
    from ..limits import DEFAULT_MAX_PIXELS, ENV_VAR

    parser = subparsers.add_parser("decompress", help="decompress .czoo bitstreams to images")
    parser.add_argument("inputs", nargs="+", help=".czoo files or folders (searched recursively)")
    parser.add_argument("-o", "--output", required=True, help="output file (one input) or folder")
    parser.add_argument("--format", choices=("auto", "png", "npy", "dcm"), default="auto",
                        help="output format in a folder; auto = DICOM for DICOM sources, else PNG")
    parser.add_argument("--weights", metavar="FILE",
                        help="safetensors weights the bitstreams were written with, when no "
                             "registry holds them (your own export)")
    parser.add_argument("--max-pixels", metavar="N",
                        help=f"refuse images larger than N pixels (default: {ENV_VAR} or "
                             f"{DEFAULT_MAX_PIXELS:,}, a guard against decompression bombs)")
    options.add_force(parser, "existing outputs (finished outputs of the same inputs are "
                              "skipped without it)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..errors import CodeczooError
    from ..files import (BITSTREAM_SUFFIX, decompress_file, decompressed_output_problem,
                         output_suffix, plan, read_bitstream, report_failures, run_batch)
    from ..limits import max_pixels

    limit = max_pixels(args.max_pixels)

    def suffix_for(source):
        try:
            return output_suffix(read_bitstream(source), args.format)
        except CodeczooError:
            return ".png"  # unreadable: the job fails with the reason when it is reached

    jobs = plan(args.inputs, args.output, (BITSTREAM_SUFFIX,), suffix_for, what="bitstream")
    report = run_batch(jobs, lambda job: decompress_file(read_bitstream(job.source), job.target,
                                                         weights=args.weights, max_pixels=limit),
                       decompressed_output_problem, args.force, desc="decompress")
    if report.done:
        print(f"{len(report.done)} file(s) written to {args.output}")
    if report.skipped:
        print(f"{len(report.skipped)} file(s) already done (finished outputs kept)")
    return report_failures(report)
