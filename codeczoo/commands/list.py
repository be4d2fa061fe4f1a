"""``codeczoo list``: the registered codecs, with their rate settings and pretrained status."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("list", help="list the registered codecs")
    parser.add_argument("pattern", nargs="?", help="glob pattern, e.g. 'toderici*'")
    parser.add_argument("--pretrained", action="store_true", help="only codecs with shipped weights")
    parser.set_defaults(func=run)


def run(args) -> int:
    from .. import get_card, list_codecs
    from ..registry import has_pretrained

    names = list_codecs(args.pattern, pretrained=True if args.pretrained else None)
    if not names:
        print("no codec matches")
        return 0
    width = max(len(n) for n in names)
    for name in names:
        card = get_card(name)
        weights = "pretrained" if has_pretrained(name) else "no weights"
        print(f"{name:<{width}}  {weights:<10}  {card.get('description', '')}")
    return 0
