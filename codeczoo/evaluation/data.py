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

    Expanded by :func:`codeczoo.io.find_files` (folders recursively unless ``recursive=False``,
    sorted, hidden files skipped); ``limit`` keeps the first ``limit``. Raises
    :class:`CodeczooError` for a missing path or a folder without images.
    """
    from ..io import find_files

    if data is None:
        data = samples_dir()
    if limit is not None and limit < 1:
        raise CodeczooError(f"--limit must be at least 1, got {limit}")
    found = [f.path for f in find_files(data, recursive=recursive)]
    return found if limit is None else found[:limit]


def read_sample(path: str | Path) -> Sample:
    """Read one image file with :func:`codeczoo.io.read_image`."""
    from ..io import read_image

    image = read_image(path)
    return Sample(Path(path).name, image.pixels, int(image.bits_stored), image.photometric)


def as_sample(item, index: int = 0) -> Sample:
    """A path, a :class:`Sample`, an image object with ``.pixels`` / ``.bits_stored`` (as
    :func:`codeczoo.io.read_image` returns) or a bare 8-bit 2-D array (16-bit arrays must say
    their bits stored: a :class:`Sample`)."""
    if isinstance(item, Sample):
        return item
    if isinstance(item, (str, Path)):
        return read_sample(item)
    if isinstance(item, np.ndarray):
        if item.dtype.kind not in "ui":
            raise ImageFormatError(f"image {index}: expected integers, got dtype {item.dtype}")
        if item.dtype.itemsize > 1:
            raise ImageFormatError(
                f"image {index}: a bare {item.dtype} array does not say how many bits are "
                "significant: pass Sample(name, pixels, bits_stored) or "
                "codeczoo.io.read_image(path)")
        return Sample(f"image-{index}", item, 8)
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
