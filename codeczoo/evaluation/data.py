"""Images to evaluate on: a folder or list of files, the bundled samples, or arrays in memory.

Everything the evaluation tools accept is turned into :class:`Sample` (a name, the stored
integers, their bit depth and photometric interpretation), read lazily one at a time through
:func:`codeczoo.io.read_image`, so a large folder never sits in memory at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from ..errors import CodeczooError, ImageFormatError
from ..io.image import XrayImage

#: file types the evaluation reads (those of :mod:`codeczoo.io`).
EVAL_SUFFIXES = (".png", ".dcm", ".dicom", ".npy", ".jpg", ".jpeg")


@dataclass(frozen=True)
class Sample:
    """One image to evaluate on: the stored integers exactly as the file holds them."""

    name: str
    pixels: np.ndarray
    bits_stored: int
    photometric: str = "MONOCHROME2"

    @property
    def pixel_count(self) -> int:
        return int(self.pixels.size)


def samples_dir() -> Path:
    """The radiographs bundled with codeczoo (``codeczoo/samples``; see its README for credits)."""
    return Path(str(resources.files("codeczoo") / "samples"))


def find_images(data: str | Path | Sequence[str | Path] | None, recursive: bool = True,
                limit: int | None = None) -> list[Path]:
    """Image files of ``data``: a folder, one file, or a list of both; ``None`` = bundled samples.

    Folders are searched recursively unless ``recursive=False``; files are sorted so runs are
    reproducible; ``limit`` keeps the first ``limit``. Raises :class:`CodeczooError` for a missing
    path, a folder without images or an unsupported file type.
    """
    if data is None:
        data = samples_dir()
    items = [data] if isinstance(data, (str, Path)) else list(data)
    if not items:
        raise CodeczooError("no data given")
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            pattern = path.rglob("*") if recursive else path.glob("*")
            files = sorted(p for p in pattern if p.is_file() and p.suffix.lower() in EVAL_SUFFIXES)
            if not files:
                raise CodeczooError(
                    f"no images ({', '.join(EVAL_SUFFIXES)}) in folder {path}"
                    + ("" if recursive else " (not searched recursively)"))
            found += files
        elif path.is_file():
            if path.suffix.lower() not in EVAL_SUFFIXES:
                raise CodeczooError(f"{path}: not an image file this tool reads ({path.suffix or 'no suffix'})")
            found.append(path)
        else:
            raise CodeczooError(f"data not found: {path}")
    if limit is not None:
        if limit < 1:
            raise CodeczooError(f"--limit must be at least 1, got {limit}")
        found = found[:limit]
    return found


def read_sample(path: str | Path) -> Sample:
    """Read one image file with :func:`codeczoo.io.read_image`."""
    from ..io import read_image

    image = read_image(path)
    return Sample(Path(path).name, image.pixels, int(image.bits_stored), image.photometric)


def as_sample(item, index: int = 0) -> Sample:
    """A path, a :class:`Sample`, an image object with ``.pixels`` / ``.bits_stored`` (as
    :func:`codeczoo.io.read_image` returns) or a bare 2-D integer array (bit depth of its dtype)."""
    if isinstance(item, Sample):
        return item
    if isinstance(item, (str, Path)):
        return read_sample(item)
    if isinstance(item, np.ndarray):
        if item.dtype.kind not in "ui":
            raise ImageFormatError(f"image {index}: expected integers, got dtype {item.dtype}")
        return Sample(f"image-{index}", item, item.dtype.itemsize * 8)
    if isinstance(item, XrayImage):
        name = item.path.name if item.path else f"image-{index}"
        return Sample(name, item.pixels, int(item.bits_stored), item.photometric)
    raise ImageFormatError(f"image {index}: cannot evaluate a {type(item).__name__}")


def iter_samples(images: Iterable) -> Iterator[Sample]:
    """Samples one at a time (files are read only when reached)."""
    for index, item in enumerate(images):
        yield as_sample(item, index)


def describe_source(data) -> str:
    """A short human description of where images came from (for results files)."""
    if data is None:
        return f"codeczoo bundled samples ({samples_dir()})"
    if isinstance(data, (str, Path)):
        return str(data)
    items = list(data)
    if items and all(isinstance(i, (str, Path)) for i in items):
        parents = sorted({str(Path(i).parent) for i in items})
        return f"{len(items)} file(s) in {', '.join(parents[:3])}" + (" ..." if len(parents) > 3 else "")
    return "images in memory"
