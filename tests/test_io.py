"""X-ray I/O on real files: PNG (8/16 bit), JPEG, .npy and every DICOM of the shared data set."""

from __future__ import annotations

import os

import numpy as np
import pydicom
import pytest
from PIL import Image

from codeczoo.errors import CodeczooError, ImageFormatError, OutputError
from codeczoo.io import XrayImage, lossy_method_for, read_image, write_image
from codeczoo.metrics import dicom_lossy_ratio, stored_bits_ratio


# -- DICOM: every real file loads, as its stored integers ----------------------------------------

def test_every_dicom_loads_with_its_header_kept(dicom_files):
    assert len(dicom_files) >= 6, "the shared data set holds six DICOMs"
    syntaxes = set()
    for path in dicom_files:
        image = read_image(path)
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        syntaxes.add(ds.file_meta.TransferSyntaxUID.name)
        assert image.source_format == "dicom"
        assert image.pixels.shape == (ds.Rows, ds.Columns)
        assert image.bits_stored == ds.BitsStored
        assert image.photometric == ds.PhotometricInterpretation
        assert image.pixels.dtype.kind == ("i" if ds.PixelRepresentation else "u")
        assert image.pixels.dtype.itemsize * 8 == ds.BitsAllocated
        assert int(image.pixels.max()) < (1 << image.bits_stored)
        assert "PixelData" not in image.dataset and image.dataset.PatientID == ds.PatientID
        spec = image.spec
        assert (spec.height, spec.width, spec.bits_stored, spec.photometric) == (
            ds.Rows, ds.Columns, ds.BitsStored, ds.PhotometricInterpretation)
    # the set covers uncompressed, JPEG 2000, JPEG-LS and JPEG baseline
    assert len(syntaxes) >= 4, syntaxes


def test_uncompressed_dicom_gives_the_raw_stored_values(dicom_dir):
    """No rescale, no windowing, no MONOCHROME1 inversion: the bytes of Pixel Data, masked."""
    for name in ("RG1_UNCR.dcm", "RG3_UNCR.dcm"):
        ds = pydicom.dcmread(dicom_dir / name)
        raw = np.frombuffer(ds.PixelData, dtype="<u2").reshape(ds.Rows, ds.Columns)
        expected = raw & ((1 << ds.BitsStored) - 1)
        image = read_image(dicom_dir / name)
        np.testing.assert_array_equal(image.pixels, expected)
        assert image.photometric == "MONOCHROME1"  # as the files say: kept, not applied


def test_compressed_dicom_matches_pydicom_stored_values(dicom_dir):
    # JPEG 2000 lossless file with the full 16 bits: values near 65535 must not be rescaled
    image = read_image(dicom_dir / "JPEG2KLossless_1s_1f_u_16_16.dcm")
    assert image.bits_stored == 16 and image.pixels.dtype == np.uint16
    assert int(image.pixels.max()) == 65535
    jls = read_image(dicom_dir / "RG2_JLSL.dcm")  # JPEG-LS lossless
    assert jls.bits_stored == 10 and int(jls.pixels.max()) <= 1023


def _metadata(ds):
    return {elem.tag: elem.value for elem in ds if elem.tag != 0x7FE00010}


def test_dicom_written_back_lossless_keeps_metadata_and_gets_new_uid(dicom_dir, tmp_path):
    source = read_image(dicom_dir / "RG3_UNCR.dcm")  # MONOCHROME1, 10 of 16 bits
    out = write_image(tmp_path / "out.dcm", source.pixels, source=source)
    written = pydicom.dcmread(out)
    assert written.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert written.SOPInstanceUID != source.dataset.SOPInstanceUID
    assert written.file_meta.MediaStorageSOPInstanceUID == written.SOPInstanceUID
    assert "LossyImageCompression" not in written
    before, after = _metadata(source.dataset), _metadata(written)
    before.pop(pydicom.tag.Tag("SOPInstanceUID")), after.pop(pydicom.tag.Tag("SOPInstanceUID"))
    assert before == after
    back = read_image(out)
    np.testing.assert_array_equal(back.pixels, source.pixels)
    assert back.photometric == "MONOCHROME1" and back.bits_stored == 10


def test_dicom_written_back_lossy_records_ratio_and_method(dicom_dir, tmp_path):
    source = read_image(dicom_dir / "966_fixed.dcm")  # JPEG 2000 lossless source, 12 bits
    assert lossy_method_for("jpeg2000") == "ISO_15444_1"
    ratio = dicom_lossy_ratio(425_600, source.pixels.size, 16)  # 12 bits stored in 16 allocated
    assert ratio == pytest.approx(source.pixels.size * 2 / 425_600)
    assert ratio == pytest.approx(stored_bits_ratio(425_600, source.pixels.size, 12) * 16 / 12)
    out = write_image(tmp_path / "lossy.dcm", source.pixels, source=source, lossy=True,
                      ratio=ratio, method="ISO_15444_1")
    written = pydicom.dcmread(out)
    assert written.LossyImageCompression == "01"
    assert float(written.LossyImageCompressionRatio) == pytest.approx(ratio, rel=1e-5)
    assert written.LossyImageCompressionMethod == "ISO_15444_1"
    assert written.SOPInstanceUID != source.dataset.SOPInstanceUID
    assert written.PatientID == source.dataset.PatientID
    assert written.StudyInstanceUID == source.dataset.StudyInstanceUID
    assert written.PhotometricInterpretation == "MONOCHROME1"
    np.testing.assert_array_equal(read_image(out).pixels, source.pixels)


def test_lossy_history_is_appended_not_replaced(dicom_dir, tmp_path):
    source = read_image(dicom_dir / "txv_rsna_cxr_8bit.dcm")  # already JPEG-baseline lossy
    assert source.dataset.LossyImageCompression == "01"
    out = write_image(tmp_path / "again.dcm", source, lossy=True, ratio=8,
                      method=lossy_method_for("sushmit2019-rnnconv"), derivation="step two")
    written = pydicom.dcmread(out)
    methods = list(written.LossyImageCompressionMethod)
    assert methods[0] == "ISO_10918_1" and methods[-1] == "CODECZOO"
    assert written.DerivationDescription.endswith("step two")
    # and a lossless write of an already lossy image still says "01"
    out2 = write_image(tmp_path / "lossless.dcm", source)
    assert pydicom.dcmread(out2).LossyImageCompression == "01"


def test_dataset_restored_from_bytes_and_method_checked(dicom_dir, tmp_path):
    """The path ``codeczoo decompress`` takes: a data set from the container's metadata bytes.

    A method that is not a DICOM code string is refused, never cut to 16 characters."""
    import io

    source = read_image(dicom_dir / "RG2_JLSL.dcm")
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, source.dataset, enforce_file_format=False)
    restored = pydicom.dcmread(io.BytesIO(buffer.getvalue()), force=True)
    for bad in ("codeczoo jpeg-2000 x", "TODERICI2017_LSTM_ONESHOT", ""):
        with pytest.raises(ImageFormatError, match="code string|ratio and method"):
            write_image(tmp_path / "r.dcm", source.pixels, dataset=restored, lossy=True,
                        ratio=12.5, method=bad)
    assert not any(tmp_path.iterdir())
    out = write_image(tmp_path / "r.dcm", source.pixels, dataset=restored, lossy=True, ratio=12.5,
                      method="ISO_15444_1")
    written = pydicom.dcmread(out)
    assert written.LossyImageCompressionMethod == "ISO_15444_1"
    assert written.LossyImageCompressionRatio == 12.5
    assert written.file_meta.MediaStorageSOPClassUID == source.dataset.SOPClassUID
    assert written.SeriesInstanceUID == source.dataset.SeriesInstanceUID
    np.testing.assert_array_equal(read_image(out).pixels, source.pixels)


def test_dicom_write_refusals(dicom_dir, tmp_path):
    source = read_image(dicom_dir / "RG3_UNCR.dcm")
    with pytest.raises(ImageFormatError, match="source"):
        write_image(tmp_path / "a.dcm", source.pixels)
    with pytest.raises(ImageFormatError, match="ratio and method"):
        write_image(tmp_path / "a.dcm", source.pixels, source=source, lossy=True)
    with pytest.raises(ImageFormatError, match="positive number"):
        write_image(tmp_path / "a.dcm", source.pixels, source=source, lossy=True, ratio=-1,
                    method="ISO_15444_1")
    with pytest.raises(ImageFormatError, match="does not match its source"):
        write_image(tmp_path / "a.dcm", source.pixels, dataset=source.dataset, bits_stored=12)
    with pytest.raises(ImageFormatError, match="source DICOM is"):
        write_image(tmp_path / "a.dcm", source.pixels[:10], source=source)
    with pytest.raises(ImageFormatError, match="do not fit"):
        write_image(tmp_path / "a.dcm", source.pixels | 0x8000, source=source)
    assert not any(tmp_path.iterdir()), "a refused write left a file behind"


# -- PNG, JPEG, npy ------------------------------------------------------------------------------

def _bit_depth(png_path):
    data = png_path.read_bytes()
    return data[24], data[25]  # IHDR bit depth and colour type


def test_png_16_bit_round_trip_exact(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 65536, (37, 101)).astype(np.uint16)
    out = write_image(tmp_path / "x16.png", pixels)
    assert _bit_depth(out) == (16, 0)
    back = read_image(out)
    assert back.pixels.dtype == np.uint16 and back.bits_stored == 16
    np.testing.assert_array_equal(back.pixels, pixels)


def test_png_8_bit_real_image_round_trip(cxr_val_images, tmp_path):
    source = read_image(cxr_val_images[0])
    assert source.pixels.dtype == np.uint8 and source.bits_stored == 8
    assert source.source_format == "png" and source.dataset is None
    out = write_image(tmp_path / "x8.png", source.pixels)
    assert _bit_depth(out) == (8, 0)
    np.testing.assert_array_equal(read_image(out).pixels, source.pixels)


def test_12_bit_dicom_to_png_keeps_values(dicom_dir, tmp_path):
    source = read_image(dicom_dir / "966_fixed.dcm")
    out = write_image(tmp_path / "dx.png", source.pixels[:300, :200])
    np.testing.assert_array_equal(read_image(out).pixels, source.pixels[:300, :200])


def test_gray_jpeg_is_read(cxr_val_images, tmp_path):
    crop = np.asarray(Image.open(cxr_val_images[1]))[:64, :96]
    Image.fromarray(crop).save(tmp_path / "x.jpg", quality=95)
    image = read_image(tmp_path / "x.jpg")
    assert image.source_format == "jpeg" and image.pixels.shape == (64, 96)
    assert image.pixels.dtype == np.uint8 and image.bits_stored == 8
    with pytest.raises(ImageFormatError, match="cannot write"):
        write_image(tmp_path / "y.jpg", image.pixels)


def test_npy_round_trip_signed(tmp_path):
    pixels = np.random.default_rng(2).integers(-2048, 2048, (5, 9)).astype(np.int16)
    out = write_image(tmp_path / "s.npy", pixels)
    back = read_image(out)
    assert back.pixels.dtype == np.int16 and back.source_format == "npy"
    np.testing.assert_array_equal(back.pixels, pixels)
    with pytest.raises(ImageFormatError, match="PNG holds unsigned"):
        write_image(tmp_path / "s.png", pixels)


def test_la_png_accepted_only_when_opaque(cxr_val_images, tmp_path):
    gray = np.asarray(Image.open(cxr_val_images[0]))[:32, :32]
    alpha = np.full_like(gray, 255)
    Image.fromarray(np.dstack([gray, alpha]), mode="LA").save(tmp_path / "opaque.png")
    np.testing.assert_array_equal(read_image(tmp_path / "opaque.png").pixels, gray)
    alpha[0, 0] = 0
    Image.fromarray(np.dstack([gray, alpha]), mode="LA").save(tmp_path / "holes.png")
    with pytest.raises(ImageFormatError, match="alpha"):
        read_image(tmp_path / "holes.png")


def test_never_overwrites(tmp_path):
    target = tmp_path / "keep.png"
    target.write_bytes(b"precious")
    with pytest.raises(OutputError, match="already exists"):
        write_image(target, np.zeros((4, 4), np.uint8))
    assert target.read_bytes() == b"precious"
    write_image(target, np.zeros((4, 4), np.uint8), overwrite=True)
    assert read_image(target).pixels.shape == (4, 4)
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask, "not the permissions open() would give"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"], "temporary file left behind"


# -- bad inputs: one clear ImageFormatError each -------------------------------------------------

def test_bad_files_raise_image_format_error(cxr_val_images, dicom_dir, tmp_path):
    real_png = cxr_val_images[0].read_bytes()
    (tmp_path / "truncated.png").write_bytes(real_png[: len(real_png) // 2])
    (tmp_path / "garbage.png").write_bytes(b"not an image at all" * 50)
    (tmp_path / "garbage.dcm").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "garbage.xyz").write_bytes(b"\x00" * 300)
    (tmp_path / "empty.npy").write_bytes(b"")
    np.save(tmp_path / "float.npy", np.zeros((4, 4), np.float32))
    np.save(tmp_path / "cube.npy", np.zeros((2, 4, 4), np.uint8))
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "rgb.png")
    Image.fromarray(np.zeros((8, 8, 4), np.uint8)).save(tmp_path / "rgba.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "color.jpg")
    dicom = (dicom_dir / "RG3_UNCR.dcm").read_bytes()
    (tmp_path / "truncated.dcm").write_bytes(dicom[: len(dicom) // 3])
    (tmp_path / "x.czoo").write_bytes(b"CZOO\x01" + bytes(40))
    expected = {
        "truncated.png": "truncated or corrupt", "garbage.png": "not a valid PNG",
        "garbage.dcm": "DICOM", "garbage.xyz": "unknown image format", "empty.npy": "npy",
        "float.npy": "float32", "cube.npy": "2-D", "rgb.png": "not grayscale",
        "rgba.png": "not grayscale", "color.jpg": "not grayscale",
        "truncated.dcm": "pixel data", "x.czoo": "codeczoo bitstream",
        "missing.png": "no such file",
    }
    for name, words in expected.items():
        with pytest.raises(ImageFormatError, match=words) as info:
            read_image(tmp_path / name)
        assert "\n" not in str(info.value), f"{name}: error is not one line"


def _dicom_variant(dicom_dir, tmp_path, name, **changes):
    ds = pydicom.dcmread(dicom_dir / "RG3_UNCR.dcm")
    for key, value in changes.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    ds.save_as(tmp_path / name)
    return tmp_path / name


def test_unsupported_dicoms_are_refused(dicom_dir, tmp_path):
    ds = pydicom.dcmread(dicom_dir / "RG3_UNCR.dcm")
    double = ds.PixelData * 2
    cases = {
        _dicom_variant(dicom_dir, tmp_path, "frames.dcm", NumberOfFrames=2, PixelData=double):
            "multi-frame",
        _dicom_variant(dicom_dir, tmp_path, "rgb.dcm", PhotometricInterpretation="RGB",
                       SamplesPerPixel=3): "colour",
        _dicom_variant(dicom_dir, tmp_path, "nopix.dcm", PixelData=None): "no \\(complete\\) pixel",
        _dicom_variant(dicom_dir, tmp_path, "deep.dcm", BitsAllocated=32, BitsStored=20,
                       HighBit=19): "allocated",
    }
    for path, words in cases.items():
        with pytest.raises(ImageFormatError, match=words):
            read_image(path)


def test_bad_arrays_are_refused(tmp_path):
    with pytest.raises(ImageFormatError, match="empty"):
        XrayImage(np.zeros((0, 0), np.uint8), 8)
    with pytest.raises(ImageFormatError, match="dtype"):
        XrayImage(np.zeros((4, 4), np.float64), 8)
    with pytest.raises(ImageFormatError, match="do not fit"):
        XrayImage(np.full((4, 4), 5000, np.uint16), 12)
    with pytest.raises(ImageFormatError, match="non-empty 2-D"):
        write_image(tmp_path / "e.png", np.zeros((0, 0), np.uint8))
    with pytest.raises(ImageFormatError, match="float"):
        write_image(tmp_path / "f.npy", np.zeros((3, 3), np.float32))
    with pytest.raises(CodeczooError):
        write_image(tmp_path / "f.png", np.zeros((3, 3), np.float32))
    assert not any(tmp_path.iterdir())
