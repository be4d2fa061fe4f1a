"""Intensity handling, the container, the gzip stage and the registry (no learned codec needed)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import codeczoo
from codeczoo import bitstream, intensity
from codeczoo.codec import Codec
from codeczoo.entropy import GzipStage, pack_bits, unpack_bits
from codeczoo.errors import BitstreamError, CodecMismatchError, CodeczooError, ImageFormatError
from codeczoo.registry import _ZOO, register_codec


@pytest.mark.parametrize("dtype,bits", [("uint8", 8), ("uint16", 12), ("uint16", 16), ("int16", 12)])
def test_unsigned_round_trip(dtype, bits):
    rng = np.random.default_rng(0)
    spec_lo, spec_hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if dtype == "int16" else (0, (1 << bits) - 1)
    image = rng.integers(spec_lo, spec_hi + 1, size=(7, 9)).astype(dtype)
    spec = intensity.describe(image, bits)
    values = intensity.to_unsigned(image, spec)
    assert values.min() >= 0 and values.max() <= spec.max_value
    assert np.array_equal(intensity.from_unsigned(values, spec), image)
    unit = intensity.to_unit(values, bits)
    assert unit.shape == (1, 1, 7, 9) and 0 <= unit.min() and unit.max() <= 1
    assert np.array_equal(intensity.from_unit(unit, bits), values)


@pytest.mark.parametrize("bad,match", [
    (np.zeros((0, 5), np.uint8), "empty"),
    (np.zeros((4, 4), np.float32), "unsupported dtype"),
    (np.zeros((4, 4, 3), np.uint8), "2-D"),
    (np.full((4, 4), 5000, np.uint16), "do not fit"),
    ([[1, 2]], "NumPy array"),
])
def test_describe_rejects(bad, match):
    bits = 12 if isinstance(bad, np.ndarray) and bad.dtype == np.uint16 else None
    with pytest.raises(ImageFormatError, match=match):
        intensity.describe(bad, bits)


def _header(**changes):
    spec = intensity.ImageSpec(5, 7, "uint16", 12, "MONOCHROME1")
    fields = dict(codec="test", codec_version="1", weights_hash=bytes(range(8)), quality=3,
                  spec=spec, pad_bottom=3, pad_right=1)
    fields.update(changes)
    return bitstream.Header(**fields)


def test_container_round_trip_and_checks():
    data = bitstream.pack(_header(metadata_kind="dicom", metadata=b"DICM..."), b"payload")
    header, payload = bitstream.unpack(data)
    assert payload == b"payload"
    assert header.spec.photometric == "MONOCHROME1" and header.spec.bits_stored == 12
    assert (header.pad_bottom, header.pad_right, header.metadata) == (3, 1, b"DICM...")
    with pytest.raises(BitstreamError, match="magic"):
        bitstream.unpack(b"XXXX" + data[4:])
    with pytest.raises(BitstreamError, match="CRC"):
        bitstream.unpack(data[:-5] + bytes([data[-5] ^ 1]) + data[-4:])
    with pytest.raises(BitstreamError):
        bitstream.unpack(data[:-1])
    with pytest.raises(BitstreamError, match="too short"):
        bitstream.unpack(b"CZ")


def test_gzip_stage_on_packed_bits():
    rng = np.random.default_rng(1)
    bits = np.where(rng.random(8001) < 0.98, 1.0, -1.0).astype(np.float32)
    stage = GzipStage()
    packed = pack_bits(bits)
    data = stage.compress(packed)
    assert len(data) < 0.6 * 8001 / 8  # skewed bits compress below one bit per code
    raw = stage.decompress(data, max_length=len(packed))
    assert np.array_equal(unpack_bits(raw, bits.size), bits)
    with pytest.raises(BitstreamError, match="truncated"):
        stage.decompress(data[:-3], max_length=len(packed))
    with pytest.raises(BitstreamError, match="beyond its declared size"):
        stage.decompress(data, max_length=len(packed) - 1)


class _RawDeflate(Codec):
    """A user's lossless codec: DEFLATE over the raw integers (tests the one-decorator path)."""

    qualities = (1,)
    default_quality = 1

    def is_lossless(self, quality):
        return True

    def encode_values(self, values, spec, quality):
        return zlib.compress(np.ascontiguousarray(values, "<u2").tobytes()), (0, 0)

    def decode_values(self, payload, header):
        count = header.spec.height * header.spec.width
        values = np.frombuffer(zlib.decompress(payload, bufsize=2 * count), "<u2")
        return values.reshape(header.spec.height, header.spec.width)


@pytest.fixture()
def user_codec():
    cls = register_codec("test-user-deflate")(_RawDeflate)
    yield cls
    _ZOO.pop("test-user-deflate", None)


def test_user_codec_registers_with_one_decorator(user_codec):
    assert "test-user-deflate" in codeczoo.list_codecs("test-*")
    card = codeczoo.get_card("test-user-deflate")
    assert card.name == "test-user-deflate" and "DEFLATE" in card.description
    assert card.weights is None
    image = np.random.default_rng(2).integers(0, 4096, size=(37, 101)).astype(np.uint16)
    data = codeczoo.load("test-user-deflate").encode(image, bits_stored=12)
    restored = codeczoo.decode(data)
    assert restored.dtype == image.dtype and np.array_equal(restored, image)


def test_register_codec_refuses_what_is_not_a_codec():
    class NotACodec:
        pass

    with pytest.raises(CodeczooError, match="not a codec"):
        register_codec("test-not-a-codec")(NotACodec)
    with pytest.raises(CodeczooError, match="not a codec"):
        register_codec("test-not-a-codec")(lambda: None)
    assert "test-not-a-codec" not in codeczoo.list_codecs()


def test_wrong_codec_and_version_are_refused(user_codec):
    image = np.zeros((4, 4), np.uint8)
    data = codeczoo.load("test-user-deflate").encode(image)
    header, payload = bitstream.unpack(data)
    other = bitstream.pack(bitstream.Header(**{**header.__dict__, "codec": "no-such-codec"}), payload)
    with pytest.raises(CodeczooError, match="unknown codec"):
        codeczoo.decode(other)
    newer = bitstream.pack(bitstream.Header(**{**header.__dict__, "codec_version": "99"}), payload)
    with pytest.raises(CodecMismatchError, match="version"):
        codeczoo.decode(newer)


def test_quality_is_checked(user_codec):
    with pytest.raises(CodeczooError, match="quality"):
        codeczoo.load("test-user-deflate").encode(np.zeros((2, 2), np.uint8), quality=7)
