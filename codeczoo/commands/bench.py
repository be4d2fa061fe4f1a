"""``codeczoo bench [DATA]``: every codec against JPEG 2000: results JSONs, BD-rates, table, plot.

Without DATA it runs on the radiographs bundled in ``codeczoo/samples``. The table it writes
(``table.md``) carries the exact command, ready to paste into ``docs/results.md``.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from . import options


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="benchmark every codec against JPEG 2000 (BD-rate, table, RD plot)")
    parser.add_argument("data", nargs="*", help="image folders or files (default: bundled samples)")
    options.add_codecs(parser)
    parser.add_argument("--include-untrained", action="store_true",
                        help="also benchmark codecs without shipped weights (pipeline check only)")
    parser.add_argument("--quality", action="append", default=[], metavar="CODEC=Q1,Q2",
                        help="rates to sweep for one codec (repeatable), e.g. jpeg2000=4,8,16")
    parser.add_argument("-o", "--output", default="bench", help="output folder (default: ./bench)")
    options.add_limit(parser)
    parser.add_argument("--method", choices=("pchip", "cubic"), default="pchip",
                        help="BD-rate interpolation (default: pchip)")
    options.add_device(parser)
    options.add_force(parser, "results in the output folder")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse <codec>.json already in the output folder when it matches "
                             "(same images, qualities and weights) instead of re-running the codec")
    parser.set_defaults(func=run)


def parse_quality_options(options: list[str]) -> dict[str, list[int]]:
    from ..errors import CodeczooError
    from ..evaluation.evaluate import parse_qualities

    out = {}
    for option in options:
        name, sep, values = option.rpartition("=")  # a codec spec has "=" too
        if not sep or not name:
            raise CodeczooError(f"--quality expects CODEC=Q1,Q2,..., got {option!r}")
        out[name] = parse_qualities(values)
    return out


def run(args) -> int:
    from ..errors import CodeczooError
    from ..evaluation.bench import run_bench

    out = Path(args.output)
    if (out / "table.md").exists() and not (args.force or args.reuse):
        raise CodeczooError(f"{out} already holds bench results (use --force or another -o)")
    codecs = [c for c in args.codecs.split(",") if c] if args.codecs else None
    data = None if not args.data else (args.data[0] if len(args.data) == 1 else args.data)
    report = run_bench(data, codecs, out, parse_quality_options(args.quality),
                       include_untrained=args.include_untrained, limit=args.limit,
                       device=args.device, method=args.method, reuse=args.reuse,
                       command="codeczoo " + shlex.join(["bench", *sys.argv[2:]])
                       if sys.argv[1:2] == ["bench"] else None)
    print(report.table)
    print("written: " + ", ".join(str(p) for p in report.files))
    return 0
