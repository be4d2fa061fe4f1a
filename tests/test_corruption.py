"""Damaged bitstreams of real X-rays: every truncation and byte flip gives a CodeczooError.

The container's CRC-32 (zlib polynomial) detects every error burst of up to 32 bits, so single
byte flips, short bursts and truncations are guaranteed to be caught; scattered multi-byte damage
slips through with probability 2**-32 and is counted and reported if it ever does. Nothing may
escape as another exception type.
"""

from __future__ import annotations

import collections
import dataclasses
import io

import numpy as np
import pydicom
import pytest

import codeczoo
from codeczoo import bitstream
from codeczoo.errors import BitstreamError, CodeczooError
from codeczoo.io import read_image

CASES = 1200
SEED = 20190430


@pytest.fixture(scope="module")
def streams(cxr_val_images, dicom_dir):
    """Small real crops, lossless and lossy, 8/10/15 bit, one with a DICOM metadata block."""
    codec = codeczoo.load("jpeg2000")
    png = read_image(cxr_val_images[5]).pixels[300:364, 250:330]
    cr10 = read_image(dicom_dir / "RG3_UNCR.dcm")  # 10 bits, MONOCHROME1
    cr15 = read_image(dicom_dir / "RG1_UNCR.dcm").pixels[900:948, 800:872]
    meta = io.BytesIO()
    pydicom.dcmwrite(meta, cr10.dataset, enforce_file_format=False)
    crop10 = cr10.pixels[800:856, 700:760]
    out = {
        "png-lossless": (png, codec.encode(png, 1)),
        "png-r10": (png, codec.encode(png, 10)),
        "cr10-lossless+dicom": (crop10, codec.encode(crop10, 1, bits_stored=10,
                                                     photometric="MONOCHROME1",
                                                     metadata=meta.getvalue(), metadata_kind="dicom")),
        "cr15-r8": (cr15, codec.encode(cr15, 8, bits_stored=15)),
    }
    for name, (image, data) in out.items():  # the intact streams decode
        back = codeczoo.decode(data)
        assert back.shape == image.shape, name
        if "lossless" in name:
            np.testing.assert_array_equal(back, image)
    return out


def _mutate(data: bytes, kind: str, rng: np.random.Generator) -> bytes:
    buf = bytearray(data)
    if kind == "truncate":
        return bytes(buf[:rng.integers(0, len(buf))])
    if kind == "append":
        return bytes(buf) + rng.integers(0, 256, rng.integers(1, 17), dtype=np.uint8).tobytes()
    if kind == "flip":
        buf[rng.integers(len(buf))] ^= int(rng.integers(1, 256))
    elif kind == "burst":  # 2 to 4 adjacent bytes: a burst of at most 32 bits
        start = int(rng.integers(0, len(buf) - 4))
        for pos in range(start, start + int(rng.integers(2, 5))):
            buf[pos] ^= int(rng.integers(1, 256))
    elif kind == "scatter":
        for pos in rng.choice(len(buf), size=int(rng.integers(2, 7)), replace=False):
            buf[pos] ^= int(rng.integers(1, 256))
    return bytes(buf)


KINDS = ("truncate", "flip", "burst", "scatter", "append")


def test_random_truncations_and_flips(streams):
    rng = np.random.default_rng(SEED)
    names = list(streams)
    raised = collections.Counter()
    undetected = collections.Counter()
    uncaught = []
    for case in range(CASES):
        name = names[case % len(names)]
        kind = KINDS[(case // len(names)) % len(KINDS)]
        image, data = streams[name]
        damaged = _mutate(data, kind, rng)
        assert damaged != data
        try:
            result = codeczoo.decode(damaged)
        except CodeczooError as exc:
            raised[type(exc).__name__] += 1
            assert "\n" not in str(exc)
        except Exception as exc:  # noqa: BLE001 - the point of the test
            uncaught.append(f"{name}/{kind}: {type(exc).__name__}: {exc}")
        else:
            undetected[kind] += 1
            assert result.shape == image.shape and result.dtype == image.dtype
    print(f"\n{CASES} damaged bitstreams: errors by type {dict(raised)}, "
          f"undetected by kind {dict(undetected)}, uncaught {len(uncaught)}")
    assert not uncaught, uncaught[:5]
    for kind in ("truncate", "flip", "burst", "append"):  # guaranteed by CRC-32 and the lengths
        assert undetected[kind] == 0, f"{undetected[kind]} undetected {kind} cases"
    assert sum(raised.values()) + sum(undetected.values()) == CASES
    assert sum(undetected.values()) <= 1, undetected  # 2**-32 each: more means a broken check


def test_payload_damage_behind_a_valid_crc(streams):
    """Beyond the CRC: a damaged codestream re-packed with a fresh CRC never crashes the decoder.

    Truncated codestreams are refused (OpenJPEG's errors and warnings become BitstreamError).
    JPEG 2000 has no checksum of its own, so a flipped byte inside the coded data can decode to a
    different image: that is exactly why the container carries a CRC. Counted and reported.
    """
    rng = np.random.default_rng(SEED + 1)
    outcomes = collections.Counter()
    for case in range(60):
        name = list(streams)[case % len(streams)]
        header, payload = bitstream.unpack(streams[name][1])
        kind = "truncate" if case % 2 else "flip"
        damaged = _mutate(payload, kind, rng)
        repacked = bitstream.pack(dataclasses.replace(header, payload_length=len(damaged)), damaged)
        try:
            result = codeczoo.decode(repacked)
        except CodeczooError:
            outcomes[f"{kind}: refused"] += 1
        else:
            outcomes[f"{kind}: decoded"] += 1
            assert result.shape == streams[name][0].shape
    print(f"\npayload damage with a valid CRC: {dict(outcomes)}")
    assert outcomes["truncate: decoded"] == 0
    assert outcomes["truncate: refused"] == 30


def test_empty_and_non_bytes_inputs():
    for bad in (b"", b"CZOO", b"\x00" * 64):
        with pytest.raises(BitstreamError):
            codeczoo.decode(bad)
    with pytest.raises(BitstreamError, match="expected bytes"):
        codeczoo.decode(None)  # type: ignore[arg-type]
