"""DICOM radiographs through pydicom: the stored integers in, the original metadata back out.

Reading (:func:`read_dicom`) returns the stored pixel values exactly: no Modality LUT (rescale),
no VOI LUT or windowing, no MONOCHROME1 inversion; values outside ``BitsStored`` are masked by
pydicom as the standard requires. ``BitsStored``, ``PixelRepresentation`` (signed data stays
``int16``/``int8``) and ``PhotometricInterpretation`` are kept. Compressed transfer syntaxes
(JPEG 2000, JPEG-LS, JPEG) are decoded by pydicom's pixel handlers (the pylibjpeg plugins).
Refused with one line: colour, multi-frame, more than 16 bits stored, no pixel data.

Writing (:func:`write_dicom`) needs the dataset the image was read from: its metadata is copied,
the pixels are stored uncompressed (Explicit VR Little Endian), the SOP Instance UID (and the
file meta's Media Storage SOP Instance UID) is new, because these are new pixel data, and a
lossy codec is recorded as PS3.3 C.7.6.1.1.5 asks: Lossy Image Compression (0028,2110) = "01",
the ratio appended to (0028,2112) and the method to (0028,2114), after any earlier ones.
"""

from __future__ import annotations

import copy
import math
import os
import re
import warnings
from pathlib import Path

import numpy as np

from .. import intensity
from ..errors import ImageFormatError
from .image import XrayImage, write_atomically

MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
#: DICOM's defined term for JPEG 2000 lossy compression (PS3.3 C.7.6.1.1.5.1).
JPEG2000_METHOD = "ISO_15444_1"


def _attr(ds, keyword: str, path: Path):
    value = ds.get(keyword)
    if value is None or value == "":
        raise ImageFormatError(f"{path}: DICOM lacks {keyword}, cannot interpret its pixels")
    return value


def read_dicom(path: str | os.PathLike, *, force: bool = False) -> XrayImage:
    """Read one grayscale single-frame DICOM image as its stored integers.

    ``force`` reads a file without the 128-byte preamble and ``DICM`` marker.
    """
    import pydicom
    from pydicom.pixels import pixel_array

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom's notes on non-conformant elements
            ds = pydicom.dcmread(path, force=force)
    except Exception as exc:  # pydicom raises many types for a malformed file
        raise ImageFormatError(f"{path}: not a readable DICOM file ({type(exc).__name__}: {exc})") from None
    if "PixelData" not in ds:
        raise ImageFormatError(
            f"{path}: DICOM has no (complete) pixel data: not an image, or the file is truncated")
    samples = int(ds.get("SamplesPerPixel", 1))
    photometric = str(_attr(ds, "PhotometricInterpretation", path)).strip()
    if samples != 1 or photometric not in MONOCHROME:
        raise ImageFormatError(
            f"{path}: colour DICOM ({photometric}, {samples} samples per pixel) is not supported; "
            "codeczoo codes grayscale radiographs")
    frames = ds.get("NumberOfFrames")
    try:
        frames = int(frames) if frames not in (None, "") else 1
    except (TypeError, ValueError):
        raise ImageFormatError(f"{path}: invalid NumberOfFrames {frames!r}") from None
    if frames != 1:
        raise ImageFormatError(f"{path}: multi-frame DICOM ({frames} frames) is not supported")
    allocated = int(_attr(ds, "BitsAllocated", path))
    stored = int(_attr(ds, "BitsStored", path))
    representation = int(_attr(ds, "PixelRepresentation", path))
    if allocated not in (8, 16) or not 1 <= stored <= allocated:
        raise ImageFormatError(
            f"{path}: {stored} bits stored in {allocated} allocated is not supported (8 or 16 allocated)")
    high_bit = int(ds.get("HighBit", stored - 1))
    if high_bit != stored - 1:
        raise ImageFormatError(f"{path}: HighBit {high_bit} != BitsStored - 1 is not supported")
    if representation not in (0, 1):
        raise ImageFormatError(f"{path}: invalid PixelRepresentation {representation}")
    syntax = getattr(ds.file_meta, "TransferSyntaxUID", None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pixels = pixel_array(ds)
    except Exception as exc:
        name = getattr(syntax, "name", syntax) or "unknown transfer syntax"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImageFormatError(f"{path}: cannot decode the DICOM pixel data ({name}): {first}") from None
    if pixels.ndim != 2:
        raise ImageFormatError(f"{path}: DICOM pixel data has shape {pixels.shape}, expected 2-D")
    expected = np.dtype(f"{'i' if representation else 'u'}{allocated // 8}")
    if pixels.dtype != expected:
        pixels = pixels.astype(expected)
    # Keep the metadata, drop the (possibly encapsulated) pixel data and what describes its frames.
    for keyword in ("PixelData", "ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        if keyword in ds:
            delattr(ds, keyword)
    return XrayImage(np.ascontiguousarray(pixels), stored, photometric, "dicom", ds, path)


def compression_ratio(image: XrayImage, n_bytes: int) -> float:
    """DICOM's lossy compression ratio: uncompressed pixel data size (bits allocated) / ``n_bytes``."""
    allocated = 8 * image.pixels.dtype.itemsize
    return image.spec.pixels * allocated / 8 / max(1, int(n_bytes))


def lossy_method_for(codec_name: str) -> str:
    """A valid (0028,2114) value for a codec: ``ISO_15444_1`` for JPEG 2000, else its name in CS form."""
    if codec_name == "jpeg2000":
        return JPEG2000_METHOD
    return as_code_string(codec_name)


def as_code_string(text: str) -> str:
    """``text`` as a DICOM code string (CS): upper case, ``A-Z 0-9 _ space``, at most 16 characters."""
    return re.sub(r"[^A-Z0-9_ ]", "_", str(text).strip().upper())[:16].strip() or "UNKNOWN"


def _format_ratio(ratio: float) -> str:
    if not (isinstance(ratio, (int, float, np.floating)) and math.isfinite(ratio) and ratio > 0):
        raise ImageFormatError(f"lossy compression ratio must be a positive number, got {ratio!r}")
    return f"{float(ratio):.6g}"[:16]


def _values(ds, keyword: str) -> list[str]:
    value = ds.get(keyword)
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [str(v) for v in value]
    return [str(value)]


def write_dicom(path: str | os.PathLike, pixels: np.ndarray, dataset, *,
                bits_stored: int | None = None, photometric: str | None = None,
                lossy: bool = False, ratio: float | None = None, method: str | None = None,
                derivation: str | None = None, overwrite: bool = False) -> Path:
    """Write ``pixels`` as a DICOM carrying ``dataset``'s metadata (see the module docstring).

    ``dataset`` is the pydicom data set the image was read with (pixel data removed);
    ``bits_stored`` and ``photometric`` default to its own. ``method`` is made a valid code string
    (see :func:`as_code_string`; :func:`lossy_method_for` gives DICOM's defined terms).
    ``derivation`` is appended to Derivation Description (0008,2111), e.g. the residual layer's
    error bound ("max abs error K").
    """
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    if dataset is None:
        raise ImageFormatError(
            "writing DICOM needs the DICOM image it was read from (source=...) for its metadata; "
            "write .png or .npy instead")
    ds = copy.deepcopy(dataset)
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        allocated, representation = int(ds.BitsAllocated), int(ds.PixelRepresentation)
        bits_stored = int(ds.BitsStored) if bits_stored is None else int(bits_stored)
        photometric = str(ds.PhotometricInterpretation) if photometric is None else photometric
    except (AttributeError, TypeError, ValueError) as exc:
        raise ImageFormatError(f"source DICOM lacks its pixel description ({exc})") from None
    if pixels.shape != (rows, columns):
        raise ImageFormatError(f"image is {pixels.shape}, the source DICOM is {rows}x{columns}")
    expected = np.dtype(f"{'i' if representation else 'u'}{allocated // 8}")
    if pixels.dtype != expected:
        raise ImageFormatError(f"image dtype {pixels.dtype} differs from the source DICOM's {expected}")
    if bits_stored != int(ds.BitsStored) or photometric != str(ds.PhotometricInterpretation):
        raise ImageFormatError(
            f"image ({bits_stored} bits, {photometric}) does not match its source DICOM "
            f"({ds.BitsStored} bits, {ds.PhotometricInterpretation})")
    intensity.describe(pixels, bits_stored, photometric)
    if lossy:
        if ratio is None or not method:
            raise ImageFormatError("a lossy DICOM needs its compression ratio and method")
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionRatio = _values(ds, "LossyImageCompressionRatio") + [_format_ratio(ratio)]
        ds.LossyImageCompressionMethod = (_values(ds, "LossyImageCompressionMethod")
                                          + [as_code_string(method)])
    if derivation:
        earlier = str(ds.get("DerivationDescription", "") or "").strip()
        ds.DerivationDescription = (f"{earlier}; {derivation}" if earlier else derivation)[:1024]
    data = np.ascontiguousarray(pixels, dtype=pixels.dtype.newbyteorder("<")).tobytes()
    if len(data) % 2:
        data += b"\0"  # DICOM values have even length
    ds.PixelData = data
    ds["PixelData"].VR = "OW" if pixels.dtype.itemsize == 2 else "OB"
    if getattr(ds, "file_meta", None) is None:
        ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if "SOPClassUID" in ds:
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    uid = generate_uid()
    ds.SOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPInstanceUID = uid

    def writer(tmp: str) -> None:
        try:
            ds.save_as(tmp, enforce_file_format=True, implicit_vr=False, little_endian=True)
        except (ValueError, AttributeError) as exc:
            raise ImageFormatError(f"cannot write DICOM {path}: {exc}") from None

    return write_atomically(path, writer, overwrite=overwrite)
