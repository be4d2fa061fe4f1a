"""``codeczoo export CKPT --name NAME``: a training checkpoint into the codec registry.

Writes ``registry/NAME/NAME-<sha256[:8]>.safetensors`` and updates ``registry/NAME/card.json``
(arguments, weights, training record, validation metrics); afterwards
``codeczoo.load(NAME, pretrained=True)`` uses the new weights. See
:mod:`codeczoo.training.export`.
"""

from __future__ import annotations


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="export a training checkpoint's weights and card into the registry")
    parser.add_argument("checkpoint", help="Lightning checkpoint written by 'codeczoo fit'")
    parser.add_argument("--name", required=True,
                        help="registered codec name the weights belong to (e.g. sushmit2019-rnnconv)")
    parser.add_argument("--fp16", action="store_true",
                        help="store float16 weights (half the size; the card records the largest "
                             "reconstruction difference this causes on a sample image)")
    parser.add_argument("--registry", default=None,
                        help="registry folder (default: CODECZOO_REGISTRY or the repository's registry/)")
    parser.add_argument("--recipe", help="the recipe YAML the run used (recorded on the card)")
    parser.add_argument("--data-source",
                        help="where the training images come from: source, license, split")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..training.export import export_checkpoint

    card = export_checkpoint(args.checkpoint, args.name, fp16=args.fp16, registry=args.registry,
                             recipe=args.recipe, data_source=args.data_source)
    weights, training = card["weights"], card["training"]
    print(f"wrote {weights['file']} ({weights['size_bytes']} bytes, {weights['dtype']}, "
          f"sha256 {weights['sha256'][:16]}...) after {training['steps']} steps")
    if "fp16_max_abs_diff" in weights:
        print(f"fp16 storage changes reconstructions by at most {weights['fp16_max_abs_diff']:.2e} "
              f"and PSNR by at most {weights['fp16_max_psnr_delta_db']:.3f} dB (sample X-ray, "
              "every quality)")
    return 0
