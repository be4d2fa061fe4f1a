"""``codeczoo list``: the registered codecs, whether trained weights are available, and where."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("list", help="list the registered codecs (or the recipes)")
    parser.add_argument("pattern", nargs="?", help="glob pattern, e.g. 'toderici*'")
    parser.add_argument("--pretrained", action="store_true", help="only codecs with trained weights")
    parser.add_argument("--recipes", action="store_true",
                        help="list the packaged training recipes instead (codeczoo fit --config NAME)")
    parser.set_defaults(func=run)


def run(args) -> int:
    import textwrap

    from .. import get_card, list_codecs
    from ..registry import current_weights, packaged_registry

    if args.recipes:
        from ..training.recipes import list_recipes

        for name in list_recipes(args.pattern):
            print(name)
        return 0
    names = list_codecs(args.pattern, pretrained=True if args.pretrained else None)
    if not names:
        print("no codec matches")
        return 0
    width = max(len(n) for n in names)
    for name in names:
        located = current_weights(name)
        if located is None:
            weights = "no weights" if _learned(name) else "-"
        else:
            packaged = located.root.resolve() == packaged_registry().resolve()
            weights = "pretrained" if packaged else "user weights"
        lines = textwrap.wrap(get_card(name).description, 100 - width - 16) or [""]
        print(f"{name:<{width}}  {weights:<12}  {lines[0]}")
        for line in lines[1:]:
            print(f"{'':<{width}}  {'':<12}  {line}")
    return 0


def _learned(name: str) -> bool:
    from ..registry import codec_class

    return codec_class(name).learned
