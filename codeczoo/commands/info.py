"""``codeczoo info FILE``: what a codeczoo bitstream holds (header fields, sizes, bpp)."""

from __future__ import annotations

from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("info", help="describe a .czoo bitstream (or a codec by name)")
    parser.add_argument("target", help="a .czoo file, or a registered codec name")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run)


def describe_file(path: Path) -> dict:
    from ..bitstream import read_header, unpack
    from ..errors import CodeczooError
    from ..errors import UnknownCodecError
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
        "bpp": len(data) * 8 / spec.pixels,
        "compression_ratio": spec.pixels * spec.bits_stored / (len(data) * 8),
    }
    # codecs whose payload holds more to show (the residual layer: bound, base codec, bytes)
    try:
        describe_payload = getattr(codec_class(header.codec), "describe_payload", None)
    except UnknownCodecError:  # a codec this installation lacks: the header is still shown
        describe_payload = None
    if describe_payload is not None:
        info.update(describe_payload(unpack(data)[1]))
    return info


def run(args) -> int:
    import json

    from .. import get_card, list_codecs

    path = Path(args.target)
    if not path.exists() and args.target in list_codecs():
        info = get_card(args.target)
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
