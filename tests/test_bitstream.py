"""The codeczoo container: documented layout, and clear errors for every wrong header."""

from __future__ import annotations

import dataclasses
import struct
import zlib

import numpy as np
import pytest

import codeczoo
from codeczoo import bitstream
from codeczoo.errors import BitstreamError, CodecMismatchError, UnknownCodecError
from codeczoo.io import read_image


@pytest.fixture(scope="module")
def stream(cxr_val_images):
    """A real lossy JPEG 2000 bitstream of a chest X-ray crop (MONOCHROME1 flag to see it kept)."""
    pixels = read_image(cxr_val_images[0]).pixels[100:164, 120:216]
    codec = codeczoo.load("jpeg2000")
    return pixels, codec.encode(pixels, 8, photometric="MONOCHROME1")


def test_layout_matches_docs(stream):
    """Parse the bytes by hand, offset by offset, as docs/bitstream.md specifies them."""
    pixels, data = stream
    assert data[0:4] == b"CZOO" and data[4] == 1
    (header_len,) = struct.unpack(">H", data[5:7])
    pos = 7
    name = data[pos + 1:pos + 1 + data[pos]].decode()
    pos += 1 + data[pos]
    version = data[pos + 1:pos + 1 + data[pos]].decode()
    pos += 1 + data[pos]
    assert (name, version) == ("jpeg2000", "1")
    (weights, quality, height, width, dtype_code, bits, photometric, pad_bottom, pad_right,
     payload_len, metadata_kind, metadata_len) = struct.unpack(">8sHIIBBBHHIBI", data[pos:pos + 34])
    assert pos + 34 == 7 + header_len
    assert weights == bytes(8) and quality == 8 and (height, width) == pixels.shape
    assert (dtype_code, bits, photometric, pad_bottom, pad_right) == (0, 8, 1, 0, 0)
    assert (metadata_kind, metadata_len) == (0, 0)
    payload = data[7 + header_len:7 + header_len + payload_len]
    assert payload[:4] == b"\xff\x4f\xff\x51"  # JPEG 2000 codestream: SOC then SIZ marker
    assert payload[-2:] == b"\xff\xd9"  # EOC
    assert len(data) == 7 + header_len + payload_len + metadata_len + 4
    assert struct.unpack(">I", data[-4:])[0] == zlib.crc32(data[:-4])


def test_dicom_metadata_block(dicom_dir):
    """A DICOM's data set travels after the payload, covered by the CRC."""
    import io

    import pydicom

    image = read_image(dicom_dir / "txv_rsna_cxr_8bit.dcm")
    crop = image.pixels[:64, :64]
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, image.dataset, enforce_file_format=False)
    data = codeczoo.load("jpeg2000").encode(crop, 1, metadata=buffer.getvalue(),
                                            metadata_kind="dicom")
    header, payload = bitstream.unpack(data)
    assert header.metadata_kind == "dicom" and header.metadata == buffer.getvalue()
    end = len(data) - 4
    assert data[end - len(header.metadata):end] == header.metadata
    assert data.index(payload) + len(payload) == end - len(header.metadata)
    assert pydicom.dcmread(io.BytesIO(header.metadata), force=True).PatientID == image.dataset.PatientID
    np.testing.assert_array_equal(codeczoo.decode(data), crop)
    flipped = bytearray(data)
    flipped[end - 10] ^= 0x20  # inside the metadata
    with pytest.raises(BitstreamError, match="CRC"):
        codeczoo.decode(bytes(flipped))


def test_header_round_trip_and_info(stream):
    pixels, data = stream
    header = codeczoo.read_header(data)
    assert header.codec == "jpeg2000" and header.quality == 8
    assert header.spec.photometric == "MONOCHROME1" and header.spec.dtype == "uint8"
    assert header.payload_length == len(bitstream.unpack(data)[1])
    again = bitstream.pack(header, bitstream.unpack(data)[1])
    assert again == data
    restored = codeczoo.decode(data)
    assert restored.shape == pixels.shape and restored.dtype == pixels.dtype


def _repack(data: bytes, **changes) -> bytes:
    header, payload = bitstream.unpack(data)
    return bitstream.pack(dataclasses.replace(header, **changes), payload)


def test_wrong_magic(stream):
    data = b"JUNK" + stream[1][4:]
    with pytest.raises(BitstreamError, match="wrong magic"):
        codeczoo.decode(data)


def test_wrong_format_version(stream):
    data = bytearray(stream[1])
    data[4] = 2
    data[-4:] = struct.pack(">I", zlib.crc32(bytes(data[:-4])))  # a valid CRC: still refused
    with pytest.raises(BitstreamError, match="format version 2 is not supported"):
        codeczoo.decode(bytes(data))


def test_unknown_codec_name(stream):
    with pytest.raises(UnknownCodecError, match="unknown codec 'nosuchcodec'"):
        codeczoo.decode(_repack(stream[1], codec="nosuchcodec"))


def test_wrong_codec_version(stream):
    with pytest.raises(CodecMismatchError, match="version 99"):
        codeczoo.decode(_repack(stream[1], codec_version="99"))


def test_wrong_weights_hash(stream):
    with pytest.raises(CodecMismatchError, match="0101010101010101"):
        codeczoo.decode(_repack(stream[1], weights_hash=b"\x01" * 8))


def test_invalid_quality_in_header(stream):
    with pytest.raises(BitstreamError, match="invalid quality"):
        codeczoo.decode(_repack(stream[1], quality=5000))


def test_header_shape_disagreeing_with_payload(stream):
    header = bitstream.unpack(stream[1])[0]
    spec = dataclasses.replace(header.spec, height=header.spec.height + 1)
    # refused from the codestream's SIZ marker, before OpenJPEG decodes anything
    with pytest.raises(BitstreamError, match="declares a 64x96 image, the header says 65x96"):
        codeczoo.decode(_repack(stream[1], spec=spec))


def test_length_and_type_errors(stream):
    data = stream[1]
    with pytest.raises(BitstreamError, match="too short"):
        codeczoo.decode(data[:8])
    with pytest.raises(BitstreamError):
        codeczoo.decode(data + b"\x00")
    with pytest.raises(BitstreamError, match="expected bytes"):
        bitstream.unpack("CZOO")  # type: ignore[arg-type]
    with pytest.raises(BitstreamError, match="string too long"):
        _repack(data, codec="x" * 300)


def test_empty_payload_with_valid_crc(stream):
    header = bitstream.unpack(stream[1])[0]
    empty = bitstream.pack(dataclasses.replace(header, payload_length=0), b"")
    with pytest.raises(BitstreamError, match="payload"):
        codeczoo.decode(empty)


def test_pack_is_deterministic():
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert codeczoo.encode(image, "jpeg2000", 1) == codeczoo.encode(image, "jpeg2000", 1)
