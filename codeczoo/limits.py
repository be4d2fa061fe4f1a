"""The pixel limit: the largest image codeczoo decodes, a guard against decompression bombs.

A bitstream of a few kilobytes can declare an image of billions of pixels; decoding it would
exhaust memory or run for hours. Every decode (``codeczoo.decode``, ``Codec.decode``,
``codeczoo decompress``) therefore checks the size the container header declares, **including
the rows and columns a codec padded** (what its decoder would allocate), against a limit before
any codec code runs; each codec then checks that the size declared inside its payload agrees
with the header (see ``docs/bitstream.md``).

The default, ``2**26`` = 67,108,864 pixels, is generous for radiographs: the largest images in
clinical use are full-field digital mammograms, and the finest detectors (50 µm pixels over
24 x 30 cm) give about 4,800 x 6,000 = 28.8 M pixels; the limit is more than twice that.
A chest radiograph is 4 to 9 M pixels. Raise it per call (``max_pixels=``), per command
(``codeczoo decompress --max-pixels N``) or per environment (``CODECZOO_MAX_PIXELS=N``), in that
order of precedence. The image readers (:mod:`codeczoo.io`) apply the same limit to the size a
PNG, JPEG or DICOM header declares before decoding its pixels.
"""

from __future__ import annotations

import os

from .errors import CodeczooError, PixelLimitError

#: default pixel limit (see the module docstring for why).
DEFAULT_MAX_PIXELS = 2 ** 26
ENV_VAR = "CODECZOO_MAX_PIXELS"


def _parse(value, where: str) -> int:
    """A positive whole number from an int or a string such as ``"67108864"`` / ``"2_000_000"``."""
    if isinstance(value, bool):
        raise CodeczooError(f"{where} must be a whole number of pixels, got {value!r}")
    try:
        limit = int(value) if isinstance(value, int) else int(str(value).strip().replace("_", ""))
    except (TypeError, ValueError):
        raise CodeczooError(f"{where} must be a whole number of pixels, got {value!r}") from None
    if limit < 1:
        raise CodeczooError(f"{where} must be a positive number of pixels, got {value!r}")
    return limit


def max_pixels(override: int | None = None) -> int:
    """The pixel limit in force: ``override`` if given, else ``$CODECZOO_MAX_PIXELS``, else
    :data:`DEFAULT_MAX_PIXELS`."""
    if override is not None:
        return _parse(override, "max_pixels")
    env = os.environ.get(ENV_VAR)
    if env is not None and env.strip():
        return _parse(env.strip(), ENV_VAR)
    return DEFAULT_MAX_PIXELS


def check_pixels(height: int, width: int, limit: int | None = None,
                 what: str = "bitstream declares", how: str = f"--max-pixels or {ENV_VAR}") -> None:
    """Raise :class:`PixelLimitError` if a ``height`` x ``width`` image exceeds the limit.

    ``what`` starts the message, ``how`` names the ways to raise the limit.
    """
    allowed = max_pixels(limit)
    pixels = int(height) * int(width)
    if pixels > allowed:
        raise PixelLimitError(
            f"{what} a {height}x{width} image ({pixels:,} pixels), above the limit of "
            f"{allowed:,} pixels: if you trust this file, raise the limit with {how}")
