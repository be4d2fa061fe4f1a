"""``codeczoo decompress IN... -o OUT``: .czoo bitstreams back to PNG, NPY or DICOM files."""

from __future__ import annotations

from . import options


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("decompress", help="decompress .czoo bitstreams to images")
    parser.add_argument("inputs", nargs="+", help=".czoo files or folders (searched recursively)")
    parser.add_argument("-o", "--output", required=True, help="output file (one input) or folder")
    parser.add_argument("--format", choices=("auto", "png", "npy", "dcm"), default="auto",
                        help="output format in a folder; auto = DICOM for DICOM sources, else PNG")
    parser.add_argument("--weights", metavar="FILE",
                        help="safetensors weights the bitstreams were written with, when no "
                             "registry holds them (your own export)")
    options.add_force(parser, "existing outputs")
    parser.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from ..files import BITSTREAM_SUFFIX, decompress_file, output_suffix, plan, read_bitstream

    def suffix_for(source):
        return output_suffix(read_bitstream(source), args.format)

    jobs = plan(args.inputs, args.output, (BITSTREAM_SUFFIX,), suffix_for, args.force)
    for job in tqdm(jobs, desc="decompress", unit="img", disable=len(jobs) < 2):
        decompress_file(read_bitstream(job.source), job.target, weights=args.weights)
    print(f"{len(jobs)} file(s) written to {args.output}")
    return 0
