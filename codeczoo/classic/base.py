"""What the library-backed classic codecs share: the binding import, the byte layer hooks and
CompressAI's tensor layer.

A subclass of :class:`LibraryCodec` implements two functions on unsigned integers,
``_encode(values, spec, quality) -> codestream`` and ``_decode(codestream, spec) -> values``
(which must check the size the codestream declares first, see :mod:`codeczoo.classic.declared`);
the container, validation and signedness are :class:`codeczoo.codec.Codec`'s. The payload is
always the format's bare codestream, so its bytes are what a file of that format would hold.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np
import torch

from .. import intensity
from ..bitstream import Header
from ..codec import Codec
from ..errors import BitstreamError, CodeczooError
from ..intensity import ImageSpec


def binding(module: str, requirement: str, codec: str, attribute: str | None = None) -> ModuleType:
    """Import a codec library's Python binding, or say in one line how to install it."""
    try:
        lib = importlib.import_module(module)
    except ImportError as exc:
        raise CodeczooError(f"{codec} needs {requirement}: pip install '{requirement}' ({exc})") from None
    if attribute is not None and not getattr(getattr(lib, attribute, None), "available", False):
        version = getattr(lib, "__version__", "?")
        raise CodeczooError(
            f"{codec}: this {module} ({version}) has no {attribute} codec; install {requirement}")
    return lib


def sample_dtype(bits_stored: int) -> np.dtype:
    """The array type handed to a library: uint8 up to 8 bits stored, else uint16."""
    return np.dtype(np.uint8 if bits_stored <= 8 else np.uint16)


class LibraryCodec(Codec):
    """Base of a classic codec implemented by a library (see the module docstring).

    Args (of every subclass):
        bits: bit depth of the integers the tensor layer (:meth:`compress`) codes its [0, 1]
            floats as.
    """

    def __init__(self, bits: int = 8):
        if not 1 <= bits <= 16:
            raise CodeczooError(f"{self.codec_name or type(self).__name__}: bits must be 1..16, got {bits}")
        self.bits = bits

    # -- what a subclass implements --------------------------------------------------------------
    def _encode(self, values: np.ndarray, spec: ImageSpec, quality: int) -> bytes:
        raise NotImplementedError

    def _decode(self, payload: bytes, spec: ImageSpec) -> np.ndarray:
        raise NotImplementedError

    # -- the byte layer ------------------------------------------------------------------------
    def encode_values(self, values: np.ndarray, spec: ImageSpec, quality: int
                      ) -> tuple[bytes, tuple[int, int]]:
        data = np.ascontiguousarray(values, dtype=sample_dtype(spec.bits_stored))
        return bytes(self._encode(data, spec, quality)), (0, 0)

    def decode_values(self, payload: bytes, header: Header) -> np.ndarray:
        values = self._decode(payload, header.spec)
        if values.ndim != 2:
            raise BitstreamError(f"{header.codec} payload decoded to shape {values.shape}, expected 2-D")
        return values.astype(np.uint16, copy=False)

    # -- the CompressAI-style tensor layer -----------------------------------------------------
    def _tensor_spec(self, height: int, width: int) -> ImageSpec:
        return ImageSpec(int(height), int(width), "uint8" if self.bits <= 8 else "uint16", self.bits)

    def compress(self, x: torch.Tensor) -> dict:
        """Code float images ``(B, 1, H, W)`` in [0, 1] as ``self.bits``-bit codestreams at
        ``default_quality`` (set by ``codeczoo.load(..., quality=...)``).

        Returns ``{"strings": [[codestream per item]], "shape": (H, W)}``.
        """
        if x.dim() != 4 or x.shape[1] != 1:
            raise CodeczooError(f"{self.codec_name}.compress expects (B, 1, H, W), got {tuple(x.shape)}")
        spec = self._tensor_spec(*x.shape[-2:])
        quality = self.check_quality(None)
        strings = [self.encode_values(intensity.from_unit(item, self.bits), spec, quality)[0]
                   for item in x]
        return {"strings": [strings], "shape": (spec.height, spec.width)}

    def decompress(self, strings, shape) -> dict:
        """Inverse of :meth:`compress`: ``{"x_hat": (B, 1, H, W)}`` float in [0, 1]."""
        spec = self._tensor_spec(*shape)
        items = []
        for payload in strings[0]:
            values = np.minimum(self._decode(payload, spec).astype(np.uint16), spec.max_value)
            items.append(intensity.to_unit(values, self.bits)[0])
        return {"x_hat": torch.stack(items)}
