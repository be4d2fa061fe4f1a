"""DICOM in, DICOM out: ``codeczoo compress --format dicom`` writes files any PACS reads.

For a DICOM input and a codec whose payload is a codestream of a DICOM transfer syntax
(:meth:`codeczoo.codec.Codec.dicom_transfer_syntax`), :func:`compress_to_dicom` codes the stored
integers and writes a DICOM whose pixel data is that codestream, encapsulated
(:mod:`codeczoo.io.dicom_encapsulated`: attributes kept, UID and lossy attribute rules there):

============ ================================== ================================== ===============
codec        lossless                           lossy                              (0028,2114)
============ ================================== ================================== ===============
jpeg2000     JPEG 2000 Lossless .4.90           JPEG 2000 .4.91                    ISO_15444_1
jpegls       JPEG-LS Lossless .4.80             JPEG-LS Near-Lossless .4.81        ISO_14495_1
htj2k        HTJ2K Lossless .4.201              HTJ2K .4.203                       ISO_15444_15
============ ================================== ================================== ===============

What it refuses, in one line, before writing anything:

* a codec without a transfer syntax: learned codecs (their bitstreams are codeczoo's own; write
  ``.czoo`` and ``codeczoo decompress`` to a DICOM of the decoded pixels, which records the lossy
  compression), JPEG XL and AVIF (see their cards);
* an input that is not DICOM (a PNG has none of the patient, study and equipment attributes a
  DICOM must carry; inventing them would be worse than refusing);
* signed pixel data (PixelRepresentation 1): the codecs code the stored integers offset to
  unsigned, which a DICOM decoder would not undo;
* a codestream whose sample precision is not Bits Stored (PS3.5 8.2.3/8.2.4: the pixel
  attributes shall be consistent with the compressed data; HTJ2K's binding writes 8 or 16 bits);
* a DICOM whose attributes disagree with its pixels (Rows/Columns, BitsStored; colour,
  multi-frame and undecodable pixel data are refused when it is read).

A lossless result is decoded again before it is written and must equal the input exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CodeczooError, ImageFormatError

DICOM_CODECS = ("jpeg2000", "jpegls", "htj2k")


@dataclass(frozen=True)
class Written:
    """One DICOM written: the file's size, its frame's size and the pixels it holds."""

    path: Path
    file_bytes: int
    frame_bytes: int
    pixels: int
    transfer_syntax: str


def transfer_syntax_for(codec, quality: int | None) -> str:
    """The transfer syntax ``codec`` writes at ``quality``, or a one-line error naming the
    alternatives."""
    quality = codec.check_quality(quality)
    syntax = codec.dicom_transfer_syntax(quality)
    if syntax is None:
        why = ("a learned codec's bitstream is codeczoo's own" if codec.learned
               else "DICOM has no transfer syntax the DICOM tools here read for it")
        raise CodeczooError(
            f"{codec.codec_name} cannot write compressed DICOM ({why}): use --codec "
            f"{', '.join(DICOM_CODECS)} with --format dicom, or write .czoo and `codeczoo "
            "decompress` it to a DICOM of the decoded pixels (lossy attributes recorded)")
    return syntax


def declared_precision(frame: bytes, transfer_syntax: str) -> int:
    """The sample precision a frame's codestream declares (JPEG-LS P, JPEG 2000 Ssiz + 1)."""
    from .classic.declared import j2k_size, jpegls_size

    parse = jpegls_size if transfer_syntax.startswith("1.2.840.10008.1.2.4.8") else j2k_size
    return parse(frame).precision


def _check_attributes(path: Path, image) -> None:
    """The pixel attributes a compressed DICOM will declare must describe these pixels."""
    ds = image.dataset
    rows, columns = int(ds.Rows), int(ds.Columns)
    if image.pixels.shape != (rows, columns):
        raise ImageFormatError(
            f"{path}: Rows/Columns say {rows}x{columns}, the pixel data holds "
            f"{image.pixels.shape[0]}x{image.pixels.shape[1]}")
    if int(ds.PixelRepresentation) != 0:
        raise ImageFormatError(
            f"{path}: signed pixel data (PixelRepresentation 1) cannot be written as compressed "
            "DICOM by codeczoo; write .czoo instead")


def compress_to_dicom(source: Path, target: Path, codec, quality: int | None) -> Written:
    """Code one DICOM file with ``codec`` into ``target`` as an encapsulated DICOM (see the
    module docstring); the planner has already checked the overwrite rules."""
    from . import intensity
    from .bitstream import unpack
    from .io import lossy_method_for, read_image
    from .metrics import dicom_lossy_ratio
    from .io.dicom_encapsulated import write_encapsulated

    quality = codec.check_quality(quality)
    syntax = transfer_syntax_for(codec, quality)
    image = read_image(source)
    if image.source_format != "dicom" or image.dataset is None:
        raise ImageFormatError(
            f"{source}: --format dicom writes DICOM from DICOM inputs only (their patient, study "
            f"and equipment attributes); this is a {image.source_format.upper()} file: compress "
            "it to .czoo (the default --format)")
    _check_attributes(source, image)
    intensity.describe(image.pixels, image.bits_stored, image.photometric)  # values fit BitsStored
    data = codec.encode(image.pixels, quality, bits_stored=image.bits_stored,
                        photometric=image.photometric)
    header, frame = unpack(data)
    precision = declared_precision(frame, syntax)
    if precision != image.bits_stored:
        raise CodeczooError(
            f"{source}: {codec.codec_name} writes {precision}-bit samples for this "
            f"{image.bits_stored}-bit image, and a DICOM frame must declare Bits Stored "
            f"(PS3.5 8.2.4); use --codec {' or '.join(c for c in DICOM_CODECS if c != codec.codec_name)}")
    lossless = codec.is_lossless(quality)
    decoded = codec.decode_payload(header, frame)
    if lossless and not np.array_equal(decoded, image.pixels):
        raise CodeczooError(f"{source}: {codec.codec_name} lossless round trip changed pixels; "
                            "nothing written")
    target.parent.mkdir(parents=True, exist_ok=True)
    write_encapsulated(target, image.dataset, frame, syntax, rows=header.spec.height,
                       columns=header.spec.width, bits_stored=image.bits_stored,
                       lossy=not lossless,
                       ratio=dicom_lossy_ratio(len(frame), header.spec.pixels,
                                               image.pixels.dtype.itemsize * 8),
                       method=lossy_method_for(codec.codec_name),
                       derivation=codec.derivation_description(header, frame),
                       overwrite=True)
    return Written(target, target.stat().st_size, len(frame), header.spec.pixels, syntax)


def encapsulated_output_problem(job, syntax: str) -> str | None:
    """``None`` if ``job.target`` is a finished encapsulated DICOM of ``job.source`` in
    ``syntax`` (same image size, newer than its input), else why not (as
    :func:`codeczoo.files.compressed_output_problem` for bitstreams)."""
    import pydicom

    from .files import output_age_problem

    age = output_age_problem(job)
    if age:
        return age
    try:
        out = pydicom.dcmread(job.target, stop_before_pixels=True)
        source = pydicom.dcmread(job.source, stop_before_pixels=True)
        same = ((int(out.Rows), int(out.Columns)) == (int(source.Rows), int(source.Columns))
                and out.file_meta.TransferSyntaxUID == syntax)
    except Exception:  # noqa: BLE001 - any unreadable file is simply not a finished output
        return "is not a readable DICOM"
    return None if same else "was written with other settings or from another image"
