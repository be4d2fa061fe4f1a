"""PNG (8 and 16 bit grayscale) and JPEG (8-bit grayscale, read only) through Pillow.

Reading keeps the stored integers: mode ``L`` -> ``uint8`` (8 bits), ``I;16``/``I`` -> ``uint16``
(16 bits). ``LA`` is accepted when its alpha channel is fully opaque (then it carries nothing).
Colour, palette and bilevel images are refused: converting them to gray would change the data.
Writing: ``uint8`` -> 8-bit PNG, ``uint16`` -> 16-bit PNG, values unchanged (a 12-bit image is
written as 16-bit samples holding 0..4095). PNG has no signed samples and no MONOCHROME1 flag.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..atomic import write_atomically
from ..errors import ImageFormatError, one_line
from ..limits import ENV_VAR, check_pixels
from .image import XrayImage

_GRAY16_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _load(path: Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            check_pixels(image.height, image.width, what=f"{path} declares", how=ENV_VAR)
            image.load()
    except (UnidentifiedImageError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise ImageFormatError(f"{path}: not a readable image ({one_line(str(exc))})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageFormatError(
            f"{path}: image file is truncated or corrupt ({one_line(str(exc))})") from None
    return image


def read_png(path: str | os.PathLike) -> XrayImage:
    """Read a grayscale PNG or JPEG (8 or 16 bit) as its stored integers."""
    path = Path(path)
    image = _load(path)
    fmt = (image.format or "").lower()
    source = "jpeg" if fmt in ("jpeg", "mpo") else "png"
    mode = image.mode
    if mode == "L":
        pixels, bits = np.asarray(image, dtype=np.uint8), 8
    elif mode in _GRAY16_MODES:
        wide = np.asarray(image)
        if wide.size and (int(wide.min()) < 0 or int(wide.max()) > 0xFFFF):
            raise ImageFormatError(f"{path}: {mode} image holds values outside 0..65535")
        pixels, bits = wide.astype(np.uint16), 16
    elif mode == "LA":
        both = np.asarray(image)
        if not np.all(both[..., 1] == 255):
            raise ImageFormatError(
                f"{path}: grayscale image with a transparent alpha channel is not supported")
        pixels, bits = np.ascontiguousarray(both[..., 0]), 8
    else:
        raise ImageFormatError(
            f"{path}: {mode} image is not grayscale; codeczoo codes one-channel X-rays "
            "(convert it to 8- or 16-bit grayscale first)")
    return XrayImage(pixels, bits, "MONOCHROME2", source, None, path)


def write_png(path: str | os.PathLike, pixels: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write ``uint8`` as 8-bit and ``uint16`` as 16-bit grayscale PNG, values unchanged."""
    if pixels.dtype == np.uint8:
        image = Image.fromarray(np.ascontiguousarray(pixels))
    elif pixels.dtype == np.uint16:
        image = Image.fromarray(np.ascontiguousarray(pixels, dtype="<u2"))
    else:
        raise ImageFormatError(
            f"PNG holds unsigned 8- or 16-bit samples, not {pixels.dtype}: write .npy or .dcm instead")
    return write_atomically(path, lambda tmp: image.save(tmp, format="PNG"), overwrite=overwrite)
