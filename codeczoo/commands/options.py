"""Command-line options that several commands share, spelled (and documented) once."""

from __future__ import annotations


def add_limit(parser) -> None:
    parser.add_argument("--limit", type=int, help="use only the first N images (sorted)")


def add_device(parser) -> None:
    parser.add_argument("--device", help="torch device for learned codecs (e.g. cuda)")


def add_force(parser, what: str = "an existing output file") -> None:
    parser.add_argument("--force", action="store_true", help=f"replace {what}")


def add_codecs(parser) -> None:
    parser.add_argument("--codecs",
                        help="comma-separated codecs (default: pretrained ones + jpeg2000)")
