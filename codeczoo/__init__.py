"""codeczoo: a CompressAI-style zoo of X-ray image codecs with a PyTorch Lightning plugin.

Quick start::

    import codeczoo
    from codeczoo.io import read_image

    codeczoo.list_codecs()
    image = read_image("chest.dcm")     # stored integers, bits_stored, photometric
    codec = codeczoo.load("jpeg2000", quality=10)
    data = codec.encode(image.pixels, bits_stored=image.bits_stored)  # bytes, self-describing
    restored = codeczoo.decode(data)    # same shape and dtype as ``image.pixels``
"""

from __future__ import annotations

__version__ = "0.1.0"

import warnings as _warnings

# compressai 1.2.8 calls torch.jit.script at import time, which torch >= 2.10 reports as
# deprecated on every start of the command line; the call still works, so keep stderr clean.
_warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated",
                         category=FutureWarning)

from .bitstream import Header, read_header
from .cards import CodecCard, InputFormat, Paper, WeightsEntry
from .codec import Codec
from .errors import (BitstreamError, CodecMismatchError, CodeczooError, ImageFormatError,
                     OutputError, PixelLimitError, UnknownCodecError, WeightsError)
from .registry import get_card, list_codecs, load, register_codec
from . import classic as _classic  # noqa: F401  (registers the classical codecs)
from . import models as _models  # noqa: F401  (registers the learned codecs)
from . import residual as _residual  # noqa: F401  (registers the bounded-error layer)


def _refuse_untrained(codec: str, allow_untrained: bool, quality: int | None = None) -> bool:
    """Whether ``codec`` has trained weights (for ``quality``'s network, where each quality is
    one); a learned codec without them is refused (its files would decode to noise, and only
    this codeczoo and torch version could decode them at all) unless ``allow_untrained``."""
    from .registry import (codec_class, current_weights, no_weights_message, split_spec,
                           weights_quality)

    codec = split_spec(codec)[0]  # coding options (NAME@option=value) do not change weights
    network = weights_quality(codec, quality)  # the quality's network, where each is one
    if not codec_class(codec).learned or current_weights(codec, network) is not None:
        return True
    if not allow_untrained:
        raise WeightsError(
            f"{no_weights_message(codec, network)}; refusing to write files with untrained "
            "weights (allow_untrained=True, or --untrained-weights on the command line, writes "
            "them anyway: noise that only this codeczoo and torch version can decode)")
    return False


def load_for_encoding(codec: str, quality: int | None = None, *, allow_untrained: bool = False,
                      **kwargs):
    """The codec ``codec`` ready to write files that can be read back (see
    :func:`_refuse_untrained`)."""
    trained = _refuse_untrained(codec, allow_untrained, quality)
    return load(codec, quality, **({} if trained else {"pretrained": False}), **kwargs)


def load_bounded(codec: str, quality: int | None = None, *, allow_untrained: bool = False):
    """The residual layer (:mod:`codeczoo.residual`) over ``codec`` at ``quality``, ready to
    write files: both the residual model and a learned base need trained weights (as
    :func:`load_for_encoding`)."""
    from .residual import bounded

    _refuse_untrained("residual", allow_untrained)
    _refuse_untrained(codec, allow_untrained, quality)
    return bounded(codec, quality)


def encode(image, codec: str = "jpeg2000", quality: int | None = None, *,
           bits_stored: int | None = None, photometric: str = "MONOCHROME2",
           max_error: int | None = None, allow_untrained: bool = False) -> bytes:
    """Compress ``image`` with the registered codec ``codec`` (its trained weights).

    ``bits_stored`` is required for 16-bit arrays (``codeczoo.io.read_image`` returns it).
    ``max_error=K`` guarantees ``|image - decode(data)| <= K`` on every pixel (``0``: lossless):
    ``codec`` at ``quality`` becomes the base of the residual layer (:mod:`codeczoo.residual`).
    A learned codec without trained weights is refused unless ``allow_untrained=True`` (see
    :func:`load_for_encoding`); for research on untrained models use
    ``codeczoo.load(name, pretrained=False).encode(...)``.
    """
    if max_error is not None:
        model = load_bounded(codec, quality, allow_untrained=allow_untrained)
        return model.encode(image, max_error, bits_stored=bits_stored, photometric=photometric)
    model = load_for_encoding(codec, quality, allow_untrained=allow_untrained)
    return model.encode(image, quality, bits_stored=bits_stored, photometric=photometric)


_DECODERS: dict[tuple, Codec] = {}


def decoder_for(header: Header, weights=None) -> Codec:
    """The codec instance that decodes bitstreams with this header (cached per codec+weights).

    Learned codecs are loaded with the registered weights whose hash the header names: the
    weights in use, older shipped weights kept for old files, or a user registry's; or with
    ``weights``, a safetensors file of your own. A bitstream written with weights nobody
    supplied raises :class:`CodecMismatchError` naming them.
    """
    from .bitstream import NO_WEIGHTS
    from .registry import build, codec_class, entry, find_weights, registry_roots

    key = (header.codec, header.weights_hash, str(weights) if weights else None)
    if key in _DECODERS:
        return _DECODERS[key]
    entry(header.codec, import_class_path=False)  # a header never makes codeczoo import code
    # where each quality is its own network (CompressAI's families), the header's quality's
    network = header.quality if codec_class(header.codec).model_per_quality else None
    if weights is not None:
        codec = load(header.codec, network, weights=weights)
        if codec.weights_hash() != header.weights_hash:
            raise CodecMismatchError(
                f"bitstream was written by {header.codec} with weights {header.weights_hex}; "
                f"{weights} holds weights {codec.weights_hash().hex()}")
    elif header.weights_hash == NO_WEIGHTS:
        codec = build(header.codec)
    else:
        located = find_weights(header.codec, header.weights_hex)
        if located is not None:
            codec = load(header.codec, network, weights=located)
        else:  # untrained weights come from a fixed seed
            codec = load(header.codec, network, pretrained=False)
            if codec.weights_hash() != header.weights_hash:
                where = " or ".join(str(r) for r in registry_roots())
                raise CodecMismatchError(
                    f"bitstream was written by {header.codec} with weights "
                    f"{header.weights_hex}, which no registry holds ({where}): decode it with "
                    f"codeczoo.load({header.codec!r}, weights=FILE).decode(data), or "
                    f"'codeczoo decompress --weights FILE', FILE being those weights")
    _DECODERS[key] = codec
    return codec


def decode(data: bytes, weights=None, *, max_pixels: int | None = None):
    """Decompress any codeczoo bitstream; the codec and weights are read from its header
    (``weights``: a safetensors file of your own, for bitstreams written with it).

    ``max_pixels`` overrides the pixel limit (``CODECZOO_MAX_PIXELS``, default 2**26 pixels),
    checked before any codec is built.
    """
    from .bitstream import unpack
    from .limits import check_pixels

    header, payload = unpack(data)
    check_pixels(header.spec.height + header.pad_bottom, header.spec.width + header.pad_right,
                 max_pixels)
    return decoder_for(header, weights).decode_payload(header, payload, max_pixels=max_pixels)


__all__ = [
    "BitstreamError", "Codec", "CodecCard", "CodecMismatchError", "CodeczooError", "Header",
    "ImageFormatError", "InputFormat", "OutputError", "Paper", "PixelLimitError",
    "UnknownCodecError", "WeightsEntry", "WeightsError", "decode", "decoder_for", "encode",
    "get_card", "list_codecs", "load", "load_for_encoding", "read_header", "register_codec",
]
