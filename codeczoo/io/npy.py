"""NumPy ``.npy`` arrays: 2-D integer images (``uint8``, ``uint16``, ``int8``, ``int16``).

Read without pickle (``allow_pickle=False``): a ``.npy`` file cannot run code. Bits stored is the
dtype's width; signed arrays keep their sign.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..atomic import write_atomically
from ..errors import ImageFormatError
from ..intensity import DTYPES
from .image import XrayImage


def _check(pixels: np.ndarray, where: str) -> np.ndarray:
    if pixels.ndim != 2:
        raise ImageFormatError(f"{where}: expected a 2-D (H, W) array, got shape {pixels.shape}")
    if pixels.dtype.name not in DTYPES:
        raise ImageFormatError(
            f"{where}: dtype {pixels.dtype} is not supported (use one of {', '.join(DTYPES)})")
    return pixels


def read_npy(path: str | os.PathLike) -> XrayImage:
    """Read a 2-D integer ``.npy`` array."""
    path = Path(path)
    try:
        pixels = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ImageFormatError(f"{path}: not a readable .npy array ({exc})") from None
    if not isinstance(pixels, np.ndarray):
        raise ImageFormatError(f"{path}: holds several arrays (.npz), expected one 2-D array")
    pixels = _check(pixels, str(path))
    pixels = pixels.astype(pixels.dtype.newbyteorder("="), copy=False)
    return XrayImage(pixels, pixels.dtype.itemsize * 8, "MONOCHROME2", "npy", None, path)


def write_npy(path: str | os.PathLike, pixels: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write a 2-D integer array as ``.npy``."""
    pixels = _check(np.asarray(pixels), str(path))

    def writer(tmp: str) -> None:
        with open(tmp, "wb") as handle:  # a file object: np.save would append ".npy" to a name
            np.save(handle, pixels, allow_pickle=False)

    return write_atomically(path, writer, overwrite=overwrite)
