"""Finding the files to work on: the one folder walker and the one list of image suffixes.

Every tool that takes "files or folders" (``compress``, ``decompress``, ``eval``, ``bench``,
training data folders) expands them here, so they agree on what counts as an image:

* a **file** named explicitly is always taken, whatever its suffix (DICOM files often have none;
  :func:`codeczoo.io.read_image` recognises formats by content and refuses what it cannot read);
* a **folder** contributes the files whose suffix (case-insensitive) is one of ``suffixes``,
  recursively unless ``recursive=False``; hidden files and folders (names starting with ``.``,
  e.g. an interrupted write's ``.name.<pid>-<random>.partial``, macOS ``._name.png``) are
  skipped; symbolic links to folders are not followed (no loops, no surprises);
* results are sorted by their path relative to the folder, so runs are reproducible.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import CodeczooError

#: image file suffixes and the format each names (the fallback when content does not tell).
FORMAT_BY_SUFFIX = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".npy": "npy",
                    ".dcm": "dicom", ".dicom": "dicom"}
#: suffixes of the image files codeczoo reads; it writes all but JPEG.
IMAGE_SUFFIXES = tuple(FORMAT_BY_SUFFIX)


@dataclass(frozen=True)
class Found:
    """One file to work on, and its path relative to the folder it was found in (for a file
    given directly: its name)."""

    path: Path
    relative: Path


def _walk(folder: Path, suffixes: tuple[str, ...], recursive: bool) -> list[Found]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")] if recursive else []
        for name in files:
            if name.startswith(".") or Path(name).suffix.lower() not in suffixes:
                continue
            path = Path(root) / name
            if path.is_file():
                found.append(Found(path, path.relative_to(folder)))
    return sorted(found, key=lambda f: f.relative.as_posix())


def find_files(inputs: str | os.PathLike | Sequence[str | os.PathLike],
               suffixes: Sequence[str] = IMAGE_SUFFIXES, *, recursive: bool = True,
               what: str = "image") -> list[Found]:
    """Expand files and folders into the files to work on (see the module docstring).

    Raises :class:`CodeczooError` for a path that does not exist and for a folder holding no
    file with one of ``suffixes``.
    """
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if not items:
        raise CodeczooError(f"no {what} files or folders given")
    suffixes = tuple(s.lower() for s in suffixes)
    found: list[Found] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            files = _walk(path, suffixes, recursive)
            if not files:
                raise CodeczooError(
                    f"no {what}s ({', '.join(suffixes)}) in folder {path}"
                    + ("" if recursive else " (not searched recursively)"))
            found += files
        elif path.is_file():
            found.append(Found(path, Path(path.name)))
        else:
            raise CodeczooError(f"{what} not found: {path}")
    return found
