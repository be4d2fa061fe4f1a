"""DICOM files whose pixel data is a compressed codestream in a standard transfer syntax.

:func:`write_encapsulated` writes one frame (a JPEG 2000, HTJ2K or JPEG-LS codestream) into a
copy of the source DICOM's data set, encapsulated as PS3.5 A.4 asks (a Basic Offset Table item,
then the frame as one fragment, then the sequence delimiter; ``pydicom.encaps.encapsulate``
does the framing), with the Transfer Syntax UID of the codestream. Every other attribute of the
source is kept.

UIDs and the lossy attributes:

* **Lossless** (every stored integer kept): the SOP Instance UID is kept. A transfer syntax is an
  encoding of the data set, not new data (PS3.5 section 10); a lossless change of it leaves the
  same instance, which is what DICOM's own tools do (dcmtk's ``dcmcjpls``/``dcmcjp2k`` keep the
  UID by default for lossless compression). Earlier lossy attributes, if any, stay as they are.
* **Lossy**: new pixel values are a new instance, so a new SOP Instance UID (the file meta's
  Media Storage SOP Instance UID follows it); Lossy Image Compression (0028,2110) = ``01``, the
  ratio appended to (0028,2112) and the method's defined term to (0028,2114) after any earlier
  ones (PS3.3 C.7.6.1.1.5).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from ..atomic import write_atomically
from ..errors import ImageFormatError
from .dicom import mark_lossy, set_file_meta

#: the transfer syntaxes written here, with their names (PS3.6 Table A-1).
TRANSFER_SYNTAXES = {
    "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
    "1.2.840.10008.1.2.4.81": "JPEG-LS Near-Lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
    "1.2.840.10008.1.2.4.91": "JPEG 2000",
    "1.2.840.10008.1.2.4.201": "HTJ2K Lossless",
    "1.2.840.10008.1.2.4.202": "HTJ2K Lossless RPCL",
    "1.2.840.10008.1.2.4.203": "HTJ2K",
}
LOSSLESS_ONLY = ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.201",
                 "1.2.840.10008.1.2.4.202")


def write_encapsulated(path: str | os.PathLike, dataset, frame: bytes, transfer_syntax: str, *,
                       rows: int, columns: int, bits_stored: int, lossy: bool,
                       ratio: float | None = None, method: str | None = None,
                       derivation: str | None = None, overwrite: bool = False) -> Path:
    """Write ``frame`` as the single encapsulated frame of a copy of ``dataset``.

    ``dataset`` is the source's pydicom data set without pixel data (as
    :func:`codeczoo.io.read_dicom` returns it); ``rows``, ``columns`` and ``bits_stored``
    describe the coded image and must be the data set's own. ``lossy`` needs ``ratio`` and
    ``method`` (a DICOM defined term such as ``ISO_15444_1``) and takes an optional
    ``derivation`` for Derivation Description (as :func:`codeczoo.io.write_dicom`). Written atomically; refuses to
    replace an existing file unless ``overwrite``.
    """
    from pydicom.encaps import encapsulate
    from pydicom.uid import generate_uid

    if dataset is None:
        raise ImageFormatError("writing a compressed DICOM needs the DICOM the image was read from")
    if transfer_syntax not in TRANSFER_SYNTAXES:
        raise ImageFormatError(f"transfer syntax {transfer_syntax} is not one codeczoo writes")
    if lossy and transfer_syntax in LOSSLESS_ONLY:
        raise ImageFormatError(f"{TRANSFER_SYNTAXES[transfer_syntax]} cannot carry lossy data")
    ds = copy.deepcopy(dataset)
    try:
        own = (int(ds.Rows), int(ds.Columns), int(ds.BitsStored))
    except (AttributeError, TypeError, ValueError) as exc:
        raise ImageFormatError(f"source DICOM lacks its pixel description ({exc})") from None
    if own != (rows, columns, bits_stored):
        raise ImageFormatError(
            f"coded image is {rows}x{columns} with {bits_stored} bits stored, the source DICOM "
            f"{own[0]}x{own[1]} with {own[2]}")
    if not frame:
        raise ImageFormatError("empty codestream")
    for keyword in ("PixelData", "ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        if keyword in ds:
            delattr(ds, keyword)
    if lossy:
        mark_lossy(ds, ratio, method, derivation)
        ds.SOPInstanceUID = generate_uid()
    elif "SOPInstanceUID" not in ds:
        ds.SOPInstanceUID = generate_uid()
    ds.PixelData = encapsulate([bytes(frame)])
    element = ds["PixelData"]
    element.VR = "OB"
    element.is_undefined_length = True
    set_file_meta(ds, transfer_syntax)

    def writer(tmp: str) -> None:
        try:
            ds.save_as(tmp, enforce_file_format=True)
        except (ValueError, AttributeError, TypeError) as exc:
            raise ImageFormatError(f"cannot write DICOM {path}: {exc}") from None

    return write_atomically(path, writer, overwrite=overwrite)
