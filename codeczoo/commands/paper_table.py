"""``codeczoo paper-table DATA``: Sushmit et al. (2019) Tables I/II reproduced on n x n crops.

See :mod:`codeczoo.evaluation.paper_table` for the method (both ratios, JPEG 2000 counted as
codestream, container and .jp2 file) and ``docs/evaluation.md`` for the caveats.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from . import options


def _ints(text: str, what: str) -> list[int]:
    from ..evaluation.evaluate import parse_ints

    return parse_ints(text, what)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "paper-table", help="Sushmit et al. 2019 Tables I/II on n x n crops, beside the published numbers")
    parser.add_argument("data", nargs="*",
                        help="held-out test images (folders or files; default: bundled samples)")
    parser.add_argument("--sizes", default="32,64", help="crop sizes (default: 32,64)")
    parser.add_argument("--ratios", default="2,4,8", help="the paper's compression ratios (default: 2,4,8)")
    parser.add_argument("--crops", type=int, default=100, help="crops per size (default: 100)")
    parser.add_argument("--seed", type=int, default=0, help="crop sampling seed (default: 0)")
    parser.add_argument("--codecs", default="sushmit2019-rnnconv,toderici2017-lstm-oneshot,jpeg2000",
                        help="codecs (default: the paper's three)")
    parser.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=True,
                        help="learned codecs with shipped weights (default); --no-pretrained only "
                             "tests the pipeline")
    parser.add_argument("--no-bit-matched", action="store_true",
                        help="omit the JPEG 2000 row coded at the proposed codec's real bits")
    options.add_limit(parser)
    options.add_device(parser)
    parser.add_argument("-o", "--output", help="markdown file (default: print)")
    options.add_force(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..errors import CodeczooError
    from ..evaluation.paper_table import paper_table

    if args.output and Path(args.output).exists() and not args.force:
        raise CodeczooError(f"output {args.output} exists (use --force to replace it)")
    if args.crops < 1:
        raise CodeczooError(f"--crops must be at least 1, got {args.crops}")
    data = None if not args.data else (args.data[0] if len(args.data) == 1 else args.data)
    table, _ = paper_table(
        data, sizes=_ints(args.sizes, "--sizes"), ratios=_ints(args.ratios, "--ratios"), crops=args.crops, seed=args.seed,
        codecs=[c for c in args.codecs.split(",") if c], pretrained=args.pretrained,
        device=args.device, bit_matched=not args.no_bit_matched, limit=args.limit, progress=True,
        command="codeczoo " + shlex.join(["paper-table", *sys.argv[2:]])
        if sys.argv[1:2] == ["paper-table"] else None)
    if args.output:
        from ..atomic import write_text

        write_text(args.output, table, overwrite=True)
        print(f"table written to {args.output}")
    else:
        print(table)
    return 0
