"""``codeczoo info FILE|CODEC``: what a bitstream holds, or a codec's card."""

from __future__ import annotations

from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("info", help="describe a .czoo bitstream, or a codec by name")
    parser.add_argument("target", help="a .czoo file, or a registered codec name")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run)


def describe_file(path: Path) -> dict:
    from ..bitstream import read_header, unpack
    from ..errors import CodeczooError, UnknownCodecError
    from ..metrics import bpp, stored_bits_ratio
    from ..registry import codec_class

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CodeczooError(f"cannot read {path}: {exc.strerror}") from exc
    header = read_header(data)
    spec = header.spec
    info = {
        "file": str(path), "bytes": len(data), "codec": header.codec,
        "codec_version": header.codec_version, "weights": header.weights_hex,
        "quality": header.quality, "height": spec.height, "width": spec.width,
        "dtype": spec.dtype, "bits_stored": spec.bits_stored, "photometric": spec.photometric,
        "padding": [header.pad_bottom, header.pad_right], "payload_bytes": header.payload_length,
        "metadata": header.metadata_kind, "metadata_bytes": len(header.metadata),
        "bpp": bpp(len(data), spec.pixels),
        "stored_bits_ratio": stored_bits_ratio(len(data), spec.pixels, spec.bits_stored),
    }
    # codecs whose payload holds more to show (the residual layer: bound, base codec, bytes)
    try:
        info.update(codec_class(header.codec).describe_payload(unpack(data)[1]))
    except UnknownCodecError:  # a codec this installation lacks: the header is still shown
        pass
    return info


def describe_codec(name: str) -> dict:
    """The card, with the weights in use, where they live, and the rate table."""
    from .. import get_card
    from ..registry import build, current_weights, read_training

    card = get_card(name).to_json()
    located = current_weights(name)
    if located is not None:
        card["weights"]["path"] = str(located.path)
        training = read_training(name)
        card["training"] = {k: training.get(k) for k in
                            ("steps", "cpu_minutes", "gpu_minutes", "hardware", "recipe")
                            if k in training}
    card["rate_table"] = build(name, **(dict(located.entry.arguments) if located else {})
                               ).rate_table()
    return card


def run(args) -> int:
    import json

    from .. import list_codecs

    path = Path(args.target)
    if not path.exists() and args.target in list_codecs():
        info = describe_codec(args.target)
    else:
        info = describe_file(path)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            if isinstance(value, float):
                value = f"{value:.4f}"
            elif isinstance(value, (dict, list)):
                value = json.dumps(value)
            print(f"{key:>18}: {value}")
    return 0
