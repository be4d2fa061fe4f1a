"""The in-memory X-ray (:class:`XrayImage`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import intensity
from ..errors import ImageFormatError
from ..intensity import ImageSpec

SOURCE_FORMATS = ("png", "jpeg", "npy", "dicom")


@dataclass
class XrayImage:
    """A radiograph as read from a file: the stored integers and what they mean.

    Attributes:
        pixels: 2-D array of the stored values (``uint8``, ``uint16``, ``int8`` or ``int16``).
        bits_stored: significant bits (PNG: 8 or 16; DICOM: ``BitsStored``).
        photometric: ``MONOCHROME2`` (high = bright) or ``MONOCHROME1`` (high = dark), recorded,
            never applied.
        source_format: ``"png"``, ``"jpeg"``, ``"npy"`` or ``"dicom"``.
        dataset: for DICOM, the pydicom ``Dataset`` without its pixel data (the metadata written
            back by :func:`codeczoo.io.write_image`); ``None`` otherwise.
        path: the file it came from, if any.

    Construction validates the pixels (``ImageFormatError`` otherwise).
    """

    pixels: np.ndarray
    bits_stored: int
    photometric: str = "MONOCHROME2"
    source_format: str = "npy"
    dataset: Any = None
    path: Path | None = None
    _spec: ImageSpec = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.source_format not in SOURCE_FORMATS:
            raise ImageFormatError(f"unknown source format {self.source_format!r}")
        self._spec = intensity.describe(self.pixels, self.bits_stored, self.photometric)

    @property
    def spec(self) -> ImageSpec:
        """The :class:`~codeczoo.intensity.ImageSpec` a codec needs (size, dtype, bits, photometric)."""
        return self._spec

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixels.shape

    def __repr__(self) -> str:  # the pixels and the dataset would flood a terminal
        where = f", path={str(self.path)!r}" if self.path else ""
        return (f"XrayImage({self.spec.height}x{self.spec.width} {self.spec.dtype}, "
                f"{self.bits_stored} bits, {self.photometric}, {self.source_format}{where})")
