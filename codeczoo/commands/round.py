"""``codeczoo round MINUTES OUTDIR``: one training round on a lent GPU (train, export, evaluate).

See :mod:`codeczoo.training.round` and docs/training.md ("A GPU round"); on a bare GPU machine
``scripts/gpu_round.sh MINUTES OUTDIR`` installs the carried wheels first and passes its start time.
"""

from __future__ import annotations


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "round", help="train every shipped learned codec for MINUTES, export fp16, evaluate on val")
    parser.add_argument("minutes", type=float, help="whole budget, start-up to last file")
    parser.add_argument("out", help="output folder (new or empty): summary.json, summary.md, "
                                    "round.tar.gz")
    parser.add_argument("--started", type=float, default=None,
                        help="Unix time the budget started (default: now)")
    parser.add_argument("--codecs", default=None,
                        help="comma-separated codecs (default: every learned codec with weights "
                             "and a recipes/<codec>/cxr-64-gpu.yaml)")
    parser.add_argument("--smoke", action="store_true",
                        help="CPU, tiny crops, one iteration, one image: the whole chain in a minute")
    parser.add_argument("--data-root", default=None,
                        help="data folder with cxr/train and cxr/val (default: CODECZOO_DATA or "
                             "../shared/data)")
    parser.add_argument("--accelerator", choices=("auto", "gpu", "cpu"), default="auto")
    parser.add_argument("--keep-work", action="store_true", help="keep the working folder")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..training.round import markdown, run_round

    summary = run_round(args.minutes, args.out, started=args.started,
                        codecs=args.codecs.split(",") if args.codecs else None, smoke=args.smoke,
                        data_root=args.data_root, accelerator=args.accelerator,
                        keep_work=args.keep_work)
    print(markdown(summary))
    print(f"written to {args.out}: summary.json, summary.md, round.tar.gz")
    return 0 if summary["round"]["within_budget"] else 1
