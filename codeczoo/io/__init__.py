"""X-ray image files: PNG (8/16 bit), JPEG (8-bit, read only), ``.npy`` and DICOM.

``read_image(path)`` returns an :class:`XrayImage` (stored integers + bit depth + photometric +
the DICOM metadata); ``write_image(path, array, ...)`` writes PNG, ``.npy`` or DICOM (the latter
with the metadata of the DICOM the image came from, see :mod:`codeczoo.io.dicom`). The format is
chosen from the file's first bytes (PNG and JPEG signatures, ``\\x93NUMPY``, ``DICM`` at offset 128)
and, failing those, from its extension. Every failure to read is an :class:`ImageFormatError`,
except an image larger than the pixel limit (:mod:`codeczoo.limits`), which is refused from its
header with a :class:`~codeczoo.errors.PixelLimitError` before any pixel is decoded.
Writers never replace an existing file unless ``overwrite=True`` and never leave a partial file
behind (:mod:`codeczoo.atomic`; failures to write are :class:`~codeczoo.errors.OutputError`).
:func:`find_files` (:mod:`codeczoo.io.walk`) expands files and folders into image files.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import intensity
from ..bitstream import MAGIC as CODECZOO_MAGIC
from ..errors import ImageFormatError
from .dicom import PRIVATE_METHOD, lossy_method_for, read_dicom, write_dicom
from .image import XrayImage
from .npy import read_npy, write_npy
from .png import read_png, write_png
from .walk import FORMAT_BY_SUFFIX, IMAGE_SUFFIXES, Found, find_files

#: the suffixes :func:`write_image` writes (every image suffix but JPEG's).
WRITABLE = tuple(s for s, kind in FORMAT_BY_SUFFIX.items() if kind != "jpeg")


def sniff(path: str | os.PathLike) -> str:
    """The format of ``path``: ``png``, ``jpeg``, ``npy`` or ``dicom`` (content first, then name)."""
    path = Path(path)
    if not path.is_file():
        raise ImageFormatError(f"{path}: no such file")
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError as exc:
        raise ImageFormatError(f"{path}: cannot read ({exc.strerror})") from None
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(CODECZOO_MAGIC):
        raise ImageFormatError(f"{path}: is a codeczoo bitstream, not an image (decompress it)")
    kind = FORMAT_BY_SUFFIX.get(path.suffix.lower())
    if kind == "dicom":
        return kind  # a DICOM without preamble: pydicom may still read it
    # a .png/.jpg/.npy without its signature is damaged; anything else is unknown
    what = f"not a valid {kind.upper()} file" if kind else "unknown image format"
    raise ImageFormatError(f"{path}: {what} (supported: PNG, JPEG, .npy, DICOM)")


def read_image(path: str | os.PathLike) -> XrayImage:
    """Read an X-ray file as its stored integers (see the module docstring)."""
    kind = sniff(path)
    if kind in ("png", "jpeg"):
        return read_png(path)
    if kind == "npy":
        return read_npy(path)
    return read_dicom(path, force=not _has_preamble(path))


def _has_preamble(path: str | os.PathLike) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(132)
    return head[128:132] == b"DICM"


def write_image(path: str | os.PathLike, image_array, *, source=None, lossy: bool | None = None,
                ratio: float | None = None, method: str | None = None, dataset=None,
                bits_stored: int | None = None, photometric: str | None = None,
                derivation: str | None = None, overwrite: bool = False) -> Path:
    """Write ``image_array`` (a 2-D integer array or an :class:`XrayImage`) to ``path``.

    The extension picks the format: ``.png`` (uint8 -> 8 bit, uint16 -> 16 bit), ``.npy``, or
    ``.dcm``/``.dicom``, which needs the DICOM the image came from: ``source`` (the
    :class:`XrayImage` read from it) or ``dataset`` (its pydicom data set, e.g. restored from a
    bitstream's metadata). ``lossy=True`` with ``ratio`` and ``method`` (and optionally
    ``derivation``) records the lossy compression (see :mod:`codeczoo.io.dicom`).
    ``bits_stored`` is checked against the values when given. Refuses to replace an existing
    file unless ``overwrite``; writes atomically (:mod:`codeczoo.atomic`).
    """
    if isinstance(image_array, XrayImage):
        source = image_array if source is None else source
        image_array = image_array.pixels
    if isinstance(source, XrayImage):
        dataset = source.dataset if dataset is None else dataset
        bits_stored = source.bits_stored if bits_stored is None else bits_stored
        photometric = source.photometric if photometric is None else photometric
    elif source is not None:
        dataset = source if dataset is None else dataset  # a pydicom Dataset
    if not isinstance(image_array, np.ndarray):
        raise ImageFormatError(f"expected a NumPy array, got {type(image_array).__name__}")
    if image_array.ndim != 2 or image_array.size == 0:
        raise ImageFormatError(f"expected a non-empty 2-D image, got shape {image_array.shape}")
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".png", ".npy") and bits_stored is not None:
        intensity.describe(image_array, bits_stored)
    if suffix == ".png":
        return write_png(path, image_array, overwrite=overwrite)
    if suffix == ".npy":
        return write_npy(path, image_array, overwrite=overwrite)
    if suffix in (".dcm", ".dicom"):
        return write_dicom(path, image_array, dataset, bits_stored=bits_stored,
                           photometric=photometric, lossy=bool(lossy), ratio=ratio, method=method,
                           derivation=derivation, overwrite=overwrite)
    raise ImageFormatError(
        f"{path}: cannot write {suffix or 'files without extension'} (use {', '.join(WRITABLE)})")


__all__ = ["FORMAT_BY_SUFFIX", "Found", "IMAGE_SUFFIXES", "PRIVATE_METHOD", "WRITABLE",
           "XrayImage", "find_files", "lossy_method_for", "read_image", "sniff", "write_image"]
