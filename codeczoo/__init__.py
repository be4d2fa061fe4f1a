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
from .codec import Codec
from .errors import (BitstreamError, CodecMismatchError, CodeczooError, ImageFormatError,
                     OutputError, PixelLimitError, UnknownCodecError, WeightsError)
from .registry import get_card, list_codecs, load, register_codec
from . import classic as _classic  # noqa: F401  (registers JPEG 2000)
from . import models as _models  # noqa: F401  (registers the learned codecs)


def encode(image, codec: str = "jpeg2000", quality: int | None = None, *, pretrained: bool = True,
           bits_stored: int | None = None, photometric: str = "MONOCHROME2") -> bytes:
    """Compress ``image`` with the registered codec ``codec`` (pretrained weights if it has any).

    ``bits_stored`` is required for 16-bit arrays (``codeczoo.io.read_image`` returns it).
    """
    from .registry import has_pretrained

    model = load(codec, pretrained=pretrained and has_pretrained(codec))
    return model.encode(image, quality, bits_stored=bits_stored, photometric=photometric)


def decoder_for(data: bytes, *, max_pixels: int | None = None):
    """The codec instance able to decode ``data``, chosen from its header.

    Learned codecs are loaded with their registry weights; a bitstream written with weights the
    registry does not hold raises :class:`CodecMismatchError` (decode it with the codec instance
    that wrote it). An image above the pixel limit (:mod:`codeczoo.limits`) is refused before
    any codec is built.
    """
    from .bitstream import NO_WEIGHTS
    from .limits import check_pixels
    from .registry import has_pretrained

    header = read_header(data)
    check_pixels(header.spec.height + header.pad_bottom, header.spec.width + header.pad_right,
                 max_pixels)
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


def decode(data: bytes, *, max_pixels: int | None = None):
    """Decompress any codeczoo bitstream; the codec is read from its header.

    ``max_pixels`` overrides the pixel limit (``CODECZOO_MAX_PIXELS``, default 2**26 pixels).
    """
    return decoder_for(data, max_pixels=max_pixels).decode(data, max_pixels=max_pixels)


__all__ = [
    "BitstreamError", "Codec", "CodecMismatchError", "CodeczooError", "Header", "ImageFormatError",
    "OutputError", "PixelLimitError", "UnknownCodecError", "WeightsError", "decode", "decoder_for",
    "encode", "get_card",
    "list_codecs", "load", "read_header", "register_codec",
]
