"""I/O and round trips on the committed synthetic X-rays (tests/fixtures): they run everywhere,
with or without the real data set (the real-data versions of these tests are in test_io.py and
test_jpeg2000.py)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pydicom
import pytest

import codeczoo
from codeczoo.cli import main
from codeczoo.io import read_image, write_image


def test_fixtures_cover_what_they_promise(fixture_dicoms, fixture_dir):
    seen = set()
    for path in fixture_dicoms:
        image = read_image(path)
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert image.pixels.shape == (ds.Rows, ds.Columns)
        assert (image.bits_stored, image.photometric) == (ds.BitsStored, ds.PhotometricInterpretation)
        assert image.pixels.dtype.kind == ("i" if ds.PixelRepresentation else "u")
        assert image.pixels.dtype.itemsize * 8 == ds.BitsAllocated
        assert "PixelData" not in image.dataset and image.dataset.PatientID == ds.PatientID
        seen |= {("bits", image.bits_stored), ("photometric", image.photometric),
                 ("syntax", ds.file_meta.TransferSyntaxUID.name),
                 ("signed", bool(ds.PixelRepresentation))}
    assert {("bits", b) for b in (8, 10, 12, 16)} <= seen
    assert {("photometric", "MONOCHROME1"), ("photometric", "MONOCHROME2"), ("signed", True)} <= seen
    syntaxes = {value for kind, value in seen if kind == "syntax"}
    assert {"Explicit VR Little Endian", "RLE Lossless"} <= syntaxes
    assert any("JPEG 2000" in s for s in syntaxes)
    assert sum(p.stat().st_size for p in fixture_dir.iterdir()) < 200_000


def test_fixtures_regenerate_identically(fixture_dir, tmp_path, monkeypatch):
    """make_fixtures.py reproduces the committed files byte for byte."""
    spec = importlib.util.spec_from_file_location("make_fixtures", fixture_dir / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "HERE", tmp_path)
    for path in module.main():
        assert path.read_bytes() == (fixture_dir / path.name).read_bytes(), path.name


def test_stored_values_are_masked_not_rescaled(fixture_dir):
    ds = pydicom.dcmread(fixture_dir / "cr_10bit_mono2.dcm")
    raw = np.frombuffer(ds.PixelData, "<u2").reshape(ds.Rows, ds.Columns)
    assert (raw >> 10).any(), "the fixture carries junk above BitsStored"
    np.testing.assert_array_equal(read_image(fixture_dir / "cr_10bit_mono2.dcm").pixels,
                                  raw & 0x3FF)
    signed = read_image(fixture_dir / "signed_12bit.dcm")
    assert signed.pixels.dtype == np.int16 and signed.pixels.min() < 0 <= signed.pixels.max() < 2048


def test_every_fixture_round_trips_losslessly_through_jpeg2000(fixture_dir):
    codec = codeczoo.load("jpeg2000")
    for path in sorted(fixture_dir.glob("*.[dp][cn][mg]")):
        image = read_image(path)
        data = codec.encode(image.pixels, 1, bits_stored=image.bits_stored,
                            photometric=image.photometric)
        header = codeczoo.read_header(data)
        assert (header.spec.bits_stored, header.spec.photometric) == (image.bits_stored,
                                                                      image.photometric)
        restored = codeczoo.decode(data)
        assert restored.dtype == image.pixels.dtype, path.name
        np.testing.assert_array_equal(restored, image.pixels, err_msg=path.name)


def test_dicom_folder_comes_back_as_dicom(fixture_dir, tmp_path, capsys):
    """compress | decompress of DICOMs: DICOM out, same stored values and description,
    original metadata, a new SOP Instance UID."""
    assert main(["compress", str(fixture_dir), "-o", str(tmp_path / "packed"), "--quality", "1"]) == 0
    assert main(["decompress", str(tmp_path / "packed"), "-o", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    for source in sorted(fixture_dir.glob("*.dcm")):
        restored_path = tmp_path / "out" / source.name
        original, restored = read_image(source), read_image(restored_path)
        np.testing.assert_array_equal(restored.pixels, original.pixels, err_msg=source.name)
        assert (restored.bits_stored, restored.photometric) == (original.bits_stored,
                                                                original.photometric)
        written = pydicom.dcmread(restored_path)
        assert written.PatientID == original.dataset.PatientID
        assert written.StudyInstanceUID == original.dataset.StudyInstanceUID
        assert written.SOPInstanceUID != original.dataset.SOPInstanceUID
        assert "LossyImageCompression" not in written
    for png in ("xray_8bit.png", "xray_16bit.png"):
        np.testing.assert_array_equal(read_image(tmp_path / "out" / png).pixels,
                                      read_image(fixture_dir / png).pixels)


def test_learned_codec_keeps_shape_dtype_and_bit_depth(fixture_dir):
    codec = codeczoo.load("toderici2017-lstm-oneshot-small", pretrained=True)
    for name in ("dx_12bit_mono1.dcm", "signed_12bit.dcm", "xray_8bit.png"):
        image = read_image(fixture_dir / name)
        data = codec.encode(image.pixels, 2, bits_stored=image.bits_stored,
                            photometric=image.photometric)
        restored = codeczoo.decode(data)
        assert restored.shape == image.pixels.shape and restored.dtype == image.pixels.dtype
        error = np.abs(restored.astype(np.int64) - image.pixels.astype(np.int64)).mean()
        assert error < 0.1 * (1 << image.bits_stored), (name, error)  # a picture, not noise


def test_png_writers_keep_values(fixture_dir, tmp_path):
    for name in ("xray_8bit.png", "xray_16bit.png", "dx_12bit_mono1.dcm"):
        image = read_image(fixture_dir / name)
        out = write_image(tmp_path / f"{name}.png", image.pixels, bits_stored=image.bits_stored)
        np.testing.assert_array_equal(read_image(out).pixels, image.pixels)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "dx_12bit_mono1.dcm.png", "xray_16bit.png.png", "xray_8bit.png.png"]


@pytest.mark.parametrize("name", ["xray_8bit.png", "dx_16bit_j2k.dcm"])
def test_lossy_rate_is_measured_from_bytes(fixture_dir, name):
    image = read_image(fixture_dir / name)
    data = codeczoo.load("jpeg2000").encode(image.pixels, 8, bits_stored=image.bits_stored)
    from codeczoo.metrics import bpp, stored_bits_ratio

    header = codeczoo.read_header(data)
    assert bpp(len(data), image.pixels.size) == len(data) * 8 / image.pixels.size
    # OpenJPEG aims at ratio 8 relative to the bits stored; its payload lands near it
    assert 6 < stored_bits_ratio(header.payload_length, image.pixels.size, image.bits_stored) < 10
