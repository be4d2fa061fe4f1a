"""Bit depth, value range and photometric interpretation: the one place that knows them.

X-rays arrive as unsigned 8 to 16 bit integers (PNG) or as DICOM stored values with
``BitsStored`` between 8 and 16, unsigned or signed (``PixelRepresentation``), and with
``MONOCHROME1`` (high value = dark) or ``MONOCHROME2`` (high value = bright). A codec never
rescales, windows or inverts them: it keeps the stored integers.  This module

* validates an image array and describes it (:class:`ImageSpec`),
* maps stored integers to the unsigned range ``[0, 2**bits - 1]`` a codec works in
  (signed data is offset by ``2**(bits-1)``) and back,
* maps that unsigned range to the unit interval ``[0, 1]`` learned codecs train on, and back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .errors import ImageFormatError

PHOTOMETRICS = ("MONOCHROME2", "MONOCHROME1")
DTYPES = ("uint8", "uint16", "int8", "int16")
MIN_BITS, MAX_BITS = 1, 16


@dataclass(frozen=True)
class ImageSpec:
    """What a codec must know about an image to give it back exactly.

    Attributes:
        height, width: the original size in pixels.
        dtype: NumPy dtype name of the array handed in and given back.
        bits_stored: significant bits (8 for 8-bit PNG, DICOM ``BitsStored``).
        photometric: ``MONOCHROME2`` or ``MONOCHROME1``; recorded, never applied.
    """

    height: int
    width: int
    dtype: str
    bits_stored: int
    photometric: str = "MONOCHROME2"

    @property
    def signed(self) -> bool:
        return self.dtype.startswith("int")

    @property
    def max_value(self) -> int:
        """Largest value of the unsigned working range, ``2**bits_stored - 1`` (PSNR's peak)."""
        return (1 << self.bits_stored) - 1

    @property
    def pixels(self) -> int:
        return self.height * self.width


def describe(image: np.ndarray, bits_stored: int | None = None,
             photometric: str = "MONOCHROME2") -> ImageSpec:
    """Validate ``image`` and return its :class:`ImageSpec`.

    ``bits_stored`` may be left out for 8-bit images only (it is then 8). A 16-bit array does
    not say how many of its bits are significant (12-bit CR/DX data arrive as ``uint16``), and a
    wrong guess costs a codec dearly (16 assumed for 12-bit data: 11 dB at the same rate for a
    learned codec, a third more bytes for JPEG 2000), so it must be given; the readers of
    :mod:`codeczoo.io` return it (``read_image(path).bits_stored``). Raises
    :class:`ImageFormatError` with one line for anything a codec cannot give back exactly.
    """
    if not isinstance(image, np.ndarray):
        raise ImageFormatError(f"expected a NumPy array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[-1] == 1:
        raise ImageFormatError("image has a trailing channel axis of 1: pass a 2-D (H, W) array")
    if image.ndim != 2:
        raise ImageFormatError(f"expected a 2-D grayscale image (H, W), got shape {image.shape}")
    height, width = image.shape
    if height < 1 or width < 1:
        raise ImageFormatError(f"image is empty ({height}x{width})")
    dtype = image.dtype.name
    if dtype not in DTYPES:
        raise ImageFormatError(
            f"unsupported dtype {dtype}: codeczoo codes integer X-rays (uint8, uint16, int8, int16)")
    width_bits = image.dtype.itemsize * 8
    if bits_stored is None:
        if width_bits > 8:
            raise ImageFormatError(
                f"a {dtype} image needs bits_stored (how many of its 16 bits are significant, "
                "e.g. 12 for most CR/DX; codeczoo does not guess it): pass bits_stored=..., or "
                "read the file with codeczoo.io.read_image, which returns it")
        bits_stored = width_bits
    if isinstance(bits_stored, bool) or not isinstance(bits_stored, (int, np.integer)) \
            or not (MIN_BITS <= bits_stored <= width_bits):
        raise ImageFormatError(f"bits_stored={bits_stored} does not fit dtype {dtype}")
    if photometric not in PHOTOMETRICS:
        raise ImageFormatError(f"unsupported photometric interpretation {photometric!r}")
    spec = ImageSpec(int(height), int(width), dtype, int(bits_stored), photometric)
    lo, hi = value_range(spec)
    vmin, vmax = int(image.min()), int(image.max())
    if vmin < lo or vmax > hi:
        raise ImageFormatError(
            f"values {vmin}..{vmax} do not fit {bits_stored} bits stored "
            f"({'signed' if spec.signed else 'unsigned'} range {lo}..{hi})")
    return spec


def value_range(spec: ImageSpec) -> tuple[int, int]:
    """Inclusive range of the stored values described by ``spec``."""
    if spec.signed:
        half = 1 << (spec.bits_stored - 1)
        return -half, half - 1
    return 0, spec.max_value


def to_unsigned(image: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """Stored values -> unsigned working range ``[0, 2**bits - 1]`` as ``uint16``."""
    if spec.signed:
        return (image.astype(np.int32) + (1 << (spec.bits_stored - 1))).astype(np.uint16)
    return image.astype(np.uint16, copy=False)


def from_unsigned(values: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """Inverse of :func:`to_unsigned`: clip to the range and cast back to ``spec.dtype``."""
    values = np.clip(np.asarray(values).astype(np.int32), 0, spec.max_value)
    if spec.signed:
        values = values - (1 << (spec.bits_stored - 1))
    return values.astype(spec.dtype)


def to_unit(values: np.ndarray, bits_stored: int) -> torch.Tensor:
    """Unsigned integers -> float32 tensor in [0, 1] of shape (1, 1, H, W)."""
    scale = float((1 << bits_stored) - 1)
    return torch.from_numpy(values.astype(np.float32) / scale)[None, None]


def from_unit(x: torch.Tensor, bits_stored: int) -> np.ndarray:
    """Float tensor in [0, 1] of shape (H, W) or (1, 1, H, W) -> unsigned integers (uint16, H x W)."""
    scale = (1 << bits_stored) - 1
    x = x.detach().float().clamp(0.0, 1.0).cpu().reshape(x.shape[-2:]).numpy()
    return np.rint(x * scale).astype(np.uint16)
