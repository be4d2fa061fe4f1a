"""Image files <-> codeczoo bitstreams: what ``codeczoo compress`` and ``decompress`` do per file.

This is the file-level glue between :mod:`codeczoo.io` (read and write PNG, JPEG, NPY, DICOM) and
the byte layer of a codec. A DICOM's data set (without its pixel data) travels in the container's
metadata block, so a DICOM comes back as a DICOM with its original attributes; the lossy
attributes (0028,2110/2112/2114) are set by the writer when the codec was lossy.

Safety rules, enforced here for every caller: an input is never modified, an existing output is
never replaced unless ``force=True``, and an output may never be one of the inputs.
"""

from __future__ import annotations

import io as _io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import CodeczooError, ImageFormatError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".npy", ".dcm", ".dicom")
BITSTREAM_SUFFIX = ".czoo"


@dataclass(frozen=True)
class Job:
    """One input file and the output it goes to."""

    source: Path
    target: Path


def collect(inputs: list[str], suffixes: tuple[str, ...]) -> list[tuple[Path, Path]]:
    """Expand files and folders (recursively) into ``(file, path relative to its root)``."""
    found: list[tuple[Path, Path]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not files:
                raise CodeczooError(f"no {'/'.join(suffixes)} files in folder {path}")
            found += [(f, f.relative_to(path)) for f in files]
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            raise CodeczooError(f"input not found: {path}")
    return found


def plan(inputs: list[str], output: str, suffixes: tuple[str, ...],
         new_suffix: str | Callable[[Path], str], force: bool = False) -> list[Job]:
    """Decide every output path before anything is written, and check the safety rules.

    ``output`` is a file path when there is exactly one input file and it does not name an
    existing folder (nor ends with a path separator); otherwise a folder that mirrors the inputs.
    ``new_suffix`` is the outputs' suffix, or a function of the input path that returns it.
    """
    sources = collect(inputs, suffixes)
    single = len(sources) == 1 and Path(inputs[0]).is_file()
    out = Path(output)
    as_folder = not single or out.is_dir() or output.endswith(os.sep)
    jobs = []
    for source, relative in sources:
        suffix = new_suffix(source) if callable(new_suffix) else new_suffix
        target = out / relative.with_suffix(suffix) if as_folder else out
        jobs.append(Job(source, target))
    resolved_inputs = {job.source.resolve() for job in jobs}
    targets = set()
    for job in jobs:
        resolved = job.target.resolve()
        if resolved in resolved_inputs:
            raise CodeczooError(f"output {job.target} would overwrite an input file")
        if resolved in targets:
            raise CodeczooError(f"two inputs map to the same output {job.target}")
        targets.add(resolved)
        if job.target.exists() and not force:
            raise CodeczooError(f"output {job.target} exists (use --force to replace it)")
    return jobs


def write_bytes(path: Path, data: bytes) -> None:
    """Write a bitstream atomically (a crash leaves no half file); the plan already checked
    the overwrite rule, so an existing file here is one the user allowed us to replace."""
    from .io.image import write_atomically

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda tmp: Path(tmp).write_bytes(data), overwrite=True)


def dataset_to_bytes(dataset) -> bytes:
    """A pydicom data set (pixel data removed) as DICOM Part 10 bytes."""
    import pydicom

    ds = dataset.copy()
    for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if tag in ds:
            del ds[tag]
    buffer = _io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=False)
    return buffer.getvalue()


def dataset_from_bytes(data: bytes):
    import pydicom

    try:
        return pydicom.dcmread(_io.BytesIO(data), force=True)
    except Exception as exc:  # pydicom raises many types for damaged data
        raise ImageFormatError(f"DICOM metadata in the bitstream is unreadable ({exc})") from exc


def compress_file(source: Path, codec, quality: int | None) -> bytes:
    """Read one image file and return its codeczoo bitstream."""
    from .io import read_image

    image = read_image(source)
    metadata, kind = b"", "none"
    if image.dataset is not None:
        metadata, kind = dataset_to_bytes(image.dataset), "dicom"
    return codec.encode(image.pixels, quality, bits_stored=image.bits_stored,
                        photometric=image.photometric, metadata=metadata, metadata_kind=kind)


def read_bitstream(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CodeczooError(f"cannot read {path}: {exc.strerror}") from exc


def output_suffix(data: bytes, requested: str = "auto") -> str:
    """The file type a bitstream decompresses to: DICOM when it came from one, else PNG."""
    from .bitstream import read_header

    if requested != "auto":
        return "." + requested.lstrip(".")
    return ".dcm" if read_header(data).metadata_kind == "dicom" else ".png"


def decompress_file(data: bytes, target: Path, codec=None) -> None:
    """Decode a bitstream and write the image to ``target`` (format from its suffix)."""
    import numpy as np

    from . import decoder_for
    from .io import lossy_method_for, write_image

    from .bitstream import unpack

    codec = codec or decoder_for(data)
    pixels, header = codec.decode_with_header(data)
    # a codec may describe how it derived the pixels (the residual layer: its error bound)
    describe = getattr(codec, "derivation_description", None)
    derivation = describe(header, unpack(data)[1]) if describe is not None else None
    source = None
    if header.metadata_kind == "dicom" and target.suffix.lower() in (".dcm", ".dicom"):
        source = dataset_from_bytes(header.metadata)
    elif target.suffix.lower() in (".dcm", ".dicom"):
        raise CodeczooError(f"{target}: this bitstream has no DICOM metadata; write .png or .npy")
    target.parent.mkdir(parents=True, exist_ok=True)
    write_image(target, pixels, bits_stored=header.spec.bits_stored,
                photometric=header.spec.photometric, dataset=source,
                lossy=not codec.is_lossless(header.quality),
                ratio=header.spec.pixels * np.dtype(header.spec.dtype).itemsize / max(1, len(data)),
                method=lossy_method_for(header.codec), derivation=derivation, overwrite=True)
