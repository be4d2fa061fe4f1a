"""codeczoo: a CompressAI-style zoo of X-ray image codecs with a PyTorch Lightning plugin.

Quick start::

    import codeczoo
    codeczoo.list_codecs()
    codec = codeczoo.load("jpeg2000", quality=10)
    data = codec.encode(image)          # bytes, self-describing
    restored = codeczoo.decode(data)    # same shape and dtype as ``image``
"""

from __future__ import annotations

__version__ = "0.1.0"

import warnings as _warnings

# compressai 1.2.8 calls torch.jit.script at import time, which torch >= 2.10 reports as
# deprecated on every start of the command line; the call still works, so keep stderr clean.
_warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated",
                         category=FutureWarning)

from .bitstream import Header, read_header
from .codec import Codec
from .errors import (BitstreamError, CodecMismatchError, CodeczooError, ImageFormatError,
                     UnknownCodecError, WeightsError)
from .registry import get_card, list_codecs, load, register_codec
from . import classic as _classic  # noqa: F401  (registers JPEG 2000)
from . import models as _models  # noqa: F401  (registers the learned codecs)
from . import residual as _residual  # noqa: F401  (registers the bounded-error layer)


def encode(image, codec: str = "jpeg2000", quality: int | None = None, *, pretrained: bool = True,
           bits_stored: int | None = None, photometric: str = "MONOCHROME2",
           max_error: int | None = None) -> bytes:
    """Compress ``image`` with the registered codec ``codec`` (pretrained weights if it has any).

    ``max_error=K`` guarantees ``|image - decode(data)| <= K`` on every pixel (``0``: lossless):
    ``codec`` at ``quality`` becomes the base of the residual layer (:mod:`codeczoo.residual`).
    """
    from .registry import has_pretrained

    if max_error is not None:
        from .residual import bounded

        model = bounded(codec, quality, pretrained=None if pretrained else False)
        return model.encode(image, max_error, bits_stored=bits_stored, photometric=photometric)
    model = load(codec, pretrained=pretrained and has_pretrained(codec))
    return model.encode(image, quality, bits_stored=bits_stored, photometric=photometric)


def decoder_for(data: bytes):
    """The codec instance able to decode ``data``, chosen from its header.

    Learned codecs are loaded with their registry weights; a bitstream written with weights the
    registry does not hold raises :class:`CodecMismatchError` (decode it with the codec instance
    that wrote it).
    """
    from .bitstream import NO_WEIGHTS
    from .registry import has_pretrained

    header = read_header(data)
    if header.weights_hash == NO_WEIGHTS or not has_pretrained(header.codec):
        codec = load(header.codec)
    else:
        codec = load(header.codec, pretrained=True)
    if header.weights_hash != codec.weights_hash():
        raise CodecMismatchError(
            f"bitstream was written by {header.codec} with weights {header.weights_hex}, which the "
            f"registry does not hold (it has {codec.weights_hash().hex()}): decode it with the "
            "codec instance that encoded it")
    return codec


def decode(data: bytes):
    """Decompress any codeczoo bitstream; the codec is read from its header."""
    return decoder_for(data).decode(data)


__all__ = [
    "BitstreamError", "Codec", "CodecMismatchError", "CodeczooError", "Header", "ImageFormatError",
    "UnknownCodecError", "WeightsError", "decode", "decoder_for", "encode", "get_card",
    "list_codecs", "load", "read_header", "register_codec",
]
