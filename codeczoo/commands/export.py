"""``codeczoo export CKPT --name NAME``: a training checkpoint's weights into a registry.

Writes ``NAME/NAME-<sha256[:8]>.safetensors``, its entry in ``NAME/weights.json`` and the
training record ``NAME/training.json`` into the user registry (``$CODECZOO_REGISTRY`` or the
per-user default), or ``--registry DIR`` (a checkout's ``registry/`` to ship them); afterwards
``codeczoo.load(NAME)`` uses the new weights. See :mod:`codeczoo.training.export`.
"""

from __future__ import annotations


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="export a training checkpoint's weights into a registry")
    parser.add_argument("checkpoint", help="Lightning checkpoint written by 'codeczoo fit'")
    parser.add_argument("--name", required=True,
                        help="registered codec name the weights belong to (e.g. sushmit2019-rnnconv)")
    parser.add_argument("--fp16", action="store_true",
                        help="store float16 weights (half the size; the entry records the largest "
                             "reconstruction difference this causes on a sample image)")
    parser.add_argument("--registry", default=None,
                        help="registry folder (default: CODECZOO_REGISTRY or the per-user registry; "
                             "a checkout's registry/ ships the weights with codeczoo)")
    parser.add_argument("--recipe", help="the recipe YAML the run used (recorded with the weights)")
    parser.add_argument("--data-source",
                        help="where the training images come from: source, license, split")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..registry import codec_class
    from ..training.export import export_checkpoint

    path, entry, training = export_checkpoint(
        args.checkpoint, args.name, fp16=args.fp16, registry=args.registry, recipe=args.recipe,
        data_source=args.data_source)
    quality = entry.arguments.get("quality") if codec_class(args.name).model_per_quality else None
    loads = (f"codeczoo.load({args.name!r})" if quality is None  # one network per quality:
             else f"codeczoo.load({args.name!r}, quality={quality})")
    print(f"wrote {path} ({entry.size_bytes} bytes, {entry.dtype}, sha256 {entry.sha256[:16]}...) "
          f"after {training['steps']} steps; {loads} now uses it")
    if "fp16_max_abs_diff" in entry.notes:
        print(f"fp16 storage changes reconstructions by at most {entry.notes['fp16_max_abs_diff']:.2e} "
              f"and PSNR by at most {entry.notes['fp16_max_psnr_delta_db']:.3f} dB (sample X-ray, "
              "every quality)")
    return 0
