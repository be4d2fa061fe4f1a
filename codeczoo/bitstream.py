"""The codeczoo container: a small self-describing header, the codec's payload and a CRC-32.

Layout (all integers big-endian; specified in ``docs/bitstream.md``)::

    offset size  field
    0      4     magic  b"CZOO"
    4      1     format version (currently 1)
    5      2     header length H (bytes from offset 7 up to the payload)
    7      1+n   codec name (length-prefixed UTF-8)
    .      1+n   codec version (length-prefixed UTF-8)
    .      8     weights hash: first 8 bytes of the sha256 of the codec's weights (zeros if none)
    .      2     rate setting (the codec's ``quality``)
    .      4     height of the original image
    .      4     width of the original image
    .      1     dtype code (0 uint8, 1 uint16, 2 int8, 3 int16)
    .      1     bits stored
    .      1     photometric (0 MONOCHROME2, 1 MONOCHROME1)
    .      2     padding added at the bottom (rows)
    .      2     padding added at the right (columns)
    .      4     payload length P
    .      1     metadata kind (0 none, 1 DICOM data set without pixel data, Part 10 bytes)
    .      4     metadata length M
    7+H    P     payload (codec specific)
    7+H+P  M     metadata (lets a DICOM decompress back to DICOM with its original attributes)
    7+H+P+M 4    CRC-32 (zlib) of every byte before it

A reader checks magic, version, lengths and CRC before it trusts a single field, so a truncated
or corrupted file is reported instead of decoded into a wrong image.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from .errors import BitstreamError
from .intensity import DTYPES, PHOTOMETRICS, ImageSpec

MAGIC = b"CZOO"
FORMAT_VERSION = 1
_PREFIX = struct.Struct(">4sBH")
_FIXED = struct.Struct(">8sHIIBBBHHIBI")
METADATA_KINDS = ("none", "dicom")
_CRC = struct.Struct(">I")
NO_WEIGHTS = bytes(8)


@dataclass(frozen=True)
class Header:
    """Everything the container records about one coded image."""

    codec: str
    codec_version: str
    weights_hash: bytes
    quality: int
    spec: ImageSpec
    pad_bottom: int = 0
    pad_right: int = 0
    payload_length: int = 0
    metadata_kind: str = "none"
    metadata: bytes = b""

    @property
    def weights_hex(self) -> str:
        return self.weights_hash.hex()


def _pack_str(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 255:
        raise BitstreamError(f"string too long for the container: {text[:40]}...")
    return bytes([len(raw)]) + raw


def pack(header: Header, payload: bytes) -> bytes:
    """Serialise ``header`` (with its metadata) and ``payload`` into one container."""
    if len(header.weights_hash) != 8:
        raise BitstreamError("weights hash must be 8 bytes")
    if header.metadata_kind not in METADATA_KINDS:
        raise BitstreamError(f"unknown metadata kind {header.metadata_kind!r}")
    spec = header.spec
    body = (
        _pack_str(header.codec)
        + _pack_str(header.codec_version)
        + _FIXED.pack(header.weights_hash, header.quality, spec.height, spec.width,
                      DTYPES.index(spec.dtype), spec.bits_stored,
                      PHOTOMETRICS.index(spec.photometric), header.pad_bottom, header.pad_right,
                      len(payload), METADATA_KINDS.index(header.metadata_kind),
                      len(header.metadata))
    )
    data = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(body)) + body + payload + header.metadata
    return data + _CRC.pack(zlib.crc32(data))


def _read_str(buf: bytes, pos: int) -> tuple[str, int]:
    if pos >= len(buf):
        raise BitstreamError("header is truncated")
    n = buf[pos]
    end = pos + 1 + n
    if end > len(buf):
        raise BitstreamError("header is truncated")
    try:
        return buf[pos + 1:end].decode("utf-8"), end
    except UnicodeDecodeError as exc:
        raise BitstreamError("header holds an invalid codec name") from exc


def unpack(data: bytes) -> tuple[Header, bytes]:
    """Parse and verify a container; return its header and payload.

    Raises :class:`BitstreamError` for a wrong magic, an unknown format version, a truncated or
    over-long stream, a CRC mismatch or out-of-range header fields.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BitstreamError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _PREFIX.size + _CRC.size:
        raise BitstreamError(f"too short to be a codeczoo bitstream ({len(data)} bytes)")
    magic, version, header_len = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise BitstreamError("not a codeczoo bitstream (wrong magic bytes)")
    if version != FORMAT_VERSION:
        raise BitstreamError(
            f"bitstream format version {version} is not supported (this codeczoo reads {FORMAT_VERSION})")
    start = _PREFIX.size
    if start + header_len + _CRC.size > len(data):
        raise BitstreamError("bitstream is truncated (header)")
    (stored_crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
    if zlib.crc32(data[:-_CRC.size]) != stored_crc:
        raise BitstreamError("bitstream is corrupted or truncated (CRC-32 mismatch)")
    body = data[start:start + header_len]
    codec, pos = _read_str(body, 0)
    codec_version, pos = _read_str(body, pos)
    if pos + _FIXED.size != len(body):
        raise BitstreamError("header length does not match its fields")
    (weights_hash, quality, height, width, dtype_code, bits, photometric_code, pad_bottom,
     pad_right, payload_length, metadata_code, metadata_length) = _FIXED.unpack_from(body, pos)
    if start + header_len + payload_length + metadata_length + _CRC.size != len(data):
        raise BitstreamError("bitstream is truncated or has trailing bytes (length mismatch)")
    if (dtype_code >= len(DTYPES) or photometric_code >= len(PHOTOMETRICS)
            or metadata_code >= len(METADATA_KINDS)):
        raise BitstreamError("header holds an unknown dtype, photometric or metadata code")
    dtype = DTYPES[dtype_code]
    if not (1 <= bits <= (8 if dtype.endswith("8") else 16)) or height < 1 or width < 1:
        raise BitstreamError("header holds an invalid image description")
    spec = ImageSpec(height, width, dtype, bits, PHOTOMETRICS[photometric_code])
    payload_start = start + header_len
    metadata_start = payload_start + payload_length
    header = Header(codec, codec_version, weights_hash, quality, spec, pad_bottom, pad_right,
                    payload_length, METADATA_KINDS[metadata_code],
                    data[metadata_start:metadata_start + metadata_length])
    return header, data[payload_start:metadata_start]


def read_header(data: bytes) -> Header:
    """Verify ``data`` and return only its header (``codeczoo info``)."""
    return unpack(data)[0]
