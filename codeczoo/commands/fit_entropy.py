"""``codeczoo fit-entropy --codec NAME``: train the learned entropy stage of a recurrent codec.

Codes the training images with the codec's weights in use, fits a context model on them
(:mod:`codeczoo.training.entropy`) and writes it into the user registry (``$CODECZOO_REGISTRY``
or the per-user default) or ``--registry DIR`` (a checkout's ``registry/`` to ship it).
``--config NAME/entropy/cxr-cpu`` (a packaged recipe, ``recipes/NAME/entropy/cxr-cpu.yaml``
in a checkout, or any YAML path) reads the options from a recipe; options given on the command
line win.
"""

from __future__ import annotations

OPTIONS = ("data_root", "train_dir", "max_images", "steps", "minutes", "hidden", "groups", "lr",
           "seed", "registry", "cache_dir")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "fit-entropy", help="train the learned entropy stage of a recurrent codec's codes")
    parser.add_argument("--codec", required=True, help="recurrent codec with trained weights")
    parser.add_argument("--config", help="recipe (NAME/entropy/cxr-cpu or a YAML path) with any "
                        "of: " + ", ".join(OPTIONS))
    parser.add_argument("--data-root", dest="data_root", help="data folder (default: "
                        "$CODECZOO_DATA or ../shared/data)")
    parser.add_argument("--train-dir", dest="train_dir", help="training images under the data "
                        "folder (default cxr/train)")
    parser.add_argument("--max-images", dest="max_images", type=int,
                        help="code at most this many training images (an evenly spaced subset)")
    parser.add_argument("--steps", type=int, help="optimiser steps (default 3000)")
    parser.add_argument("--minutes", type=float, help="stop after this many minutes of fitting")
    parser.add_argument("--hidden", type=int, help="context model width (default 64)")
    parser.add_argument("--groups", type=int, help="channel groups per pass (default 4)")
    parser.add_argument("--cache-dir", dest="cache_dir", help="where the training codes are kept "
                        "between runs (default runs/entropy-codes)")
    parser.add_argument("--lr", type=float, help="learning rate (default 2e-3, cosine decay)")
    parser.add_argument("--seed", type=int, help="seed (held-out images, crops, order)")
    parser.add_argument("--registry", help="registry folder to write into (default: "
                        "CODECZOO_REGISTRY or the per-user registry)")
    parser.set_defaults(func=run)


def run(args) -> int:
    import json

    from ..errors import CodeczooError
    from ..training.entropy import fit_entropy

    options = {}
    if args.config:
        import yaml

        from ..training.recipes import resolve_recipe

        try:
            with open(resolve_recipe(args.config)) as handle:
                options = yaml.safe_load(handle) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise CodeczooError(f"recipe {args.config} is unreadable ({exc})") from None
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise CodeczooError(f"recipe {args.config} has unknown options: {', '.join(sorted(unknown))}")
    given = {k: getattr(args, k) for k in OPTIONS if getattr(args, k) is not None}
    options.update(given)
    # the card records the command as run: recipe and options given on the line
    command = " ".join([f"codeczoo fit-entropy --codec {args.codec}"]
                       + ([f"--config {args.config}"] if args.config else [])
                       + [f"--{k.replace('_', '-')} {v}" for k, v in given.items()])
    summary = fit_entropy(args.codec, command=command, **options)
    print(json.dumps(summary, indent=2))
    print(f"wrote {summary['file']}: {summary['held_out_bits_per_code_bit']} bits per code bit on "
          f"held-out tiles (gzip: {summary['held_out_gzip_bits_per_code_bit']}); "
          f"codeczoo.load({args.codec!r}, entropy='learned') uses it")
    return 0
