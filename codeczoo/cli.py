"""The ``codeczoo`` command line (also ``python -m codeczoo``).

Each sub-command lives in its own module under :mod:`codeczoo.commands` with an
``add_parser(subparsers)`` function; this module only wires them together and turns every
:class:`~codeczoo.errors.CodeczooError` (and any operating-system error or lack of memory that
reaches it) into one line on stderr and exit code 1. Without a sub-command it prints its help on
stderr and exits 2, like any other usage error. ``fit``, ``validate`` and ``test`` hand the rest
of the command line to LightningCLI.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from .errors import CodeczooError, one_line

#: sub-command modules under codeczoo.commands, in the order ``--help`` lists them.
COMMANDS = ("list", "info", "compress", "decompress", "demo", "eval", "bench", "paper_table",
            "figure", "export", "fit_entropy", "round")
LIGHTNING_COMMANDS = ("fit", "validate", "test")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="codeczoo", description="A zoo of X-ray image codecs (learned and classical).")
    parser.add_argument("--version", action="version", version=f"codeczoo {__version__}")
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                        help="import MODULE first (repeatable): a module that registers your own "
                             "codecs, for every command, decoding included")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"codeczoo.commands.{name}").add_parser(sub)
    for name in LIGHTNING_COMMANDS:
        sub.add_parser(name, help=f"LightningCLI {name} (see 'codeczoo {name} --help')",
                       add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    with warnings.catch_warnings():  # restores showwarning for callers of main() in Python
        warnings.showwarning = _show_warning
        return _run(argv)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """codeczoo's own warnings (e.g. a PSNR target out of reach) as one line on stderr, without
    the source line Python's default format adds; other libraries' as Python shows them."""
    if category.__module__.split(".")[0] == "codeczoo":
        print(f"codeczoo: warning: {one_line(str(message))}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _run(argv: list[str]) -> int:
    try:
        argv = import_plugins(argv)
        if argv and argv[0] in LIGHTNING_COMMANDS:
            from .training.cli import run_lightning_cli

            run_lightning_cli(argv)
            return 0
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return 2
        return int(args.func(args) or 0)
    except CodeczooError as exc:
        print(f"codeczoo: error: {one_line(str(exc))}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. a folder that vanished mid-run: the system's reason, one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"codeczoo: error: {where}{one_line(exc.strerror or str(exc))}", file=sys.stderr)
        return 1
    except MemoryError:
        print("codeczoo: error: out of memory", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("codeczoo: interrupted", file=sys.stderr)
        return 130


def import_plugins(argv: list[str]) -> list[str]:
    """Import the modules named by leading ``--import MODULE`` options; return the rest."""
    while argv and (argv[0] == "--import" or argv[0].startswith("--import=")):
        if argv[0] == "--import":
            if len(argv) < 2:
                raise CodeczooError("--import needs a module name")
            module, argv = argv[1], argv[2:]
        else:
            module, argv = argv[0].split("=", 1)[1], argv[1:]
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise CodeczooError(f"--import {module}: {exc}") from None
    return argv


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
