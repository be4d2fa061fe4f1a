"""``codeczoo compress --format dicom``: compressed DICOM that real DICOM tools read (issue 15).

Real DICOMs of the shared set are cut to small crops (their real attributes kept, stored
uncompressed) so that coding is fast; the outputs are checked by pydicom with the pylibjpeg
plugins (every transfer syntax, bit-exact when lossless), dcmtk's ``dcmdjpls`` (JPEG-LS,
bit-exact), ``dcmftest`` and dicom3tools' ``dciodvfy`` (no error the input did not have).
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from codeczoo.cli import main
from codeczoo.io import read_image
from dicom_tools import crop_dicom, dciodvfy_errors, run_tool

SOURCES = {  # file -> bits stored
    "966_fixed.dcm": 12, "RG1_UNCR.dcm": 15, "RG3_UNCR.dcm": 10,
    "JPEG2KLossless_1s_1f_u_16_16.dcm": 16, "txv_rsna_cxr_8bit.dcm": 8,
}
SYNTAX = {("jpeg2000", 1): "1.2.840.10008.1.2.4.90", ("jpeg2000", 10): "1.2.840.10008.1.2.4.91",
          ("jpegls", 1): "1.2.840.10008.1.2.4.80", ("jpegls", 5): "1.2.840.10008.1.2.4.81",
          ("htj2k", 1): "1.2.840.10008.1.2.4.201", ("htj2k", 10): "1.2.840.10008.1.2.4.203"}
METHOD = {"jpeg2000": "ISO_15444_1", "jpegls": "ISO_14495_1", "htj2k": "ISO_15444_15"}
#: attributes a compression may change; every other one must come back unchanged
CHANGED = {"PixelData", "SOPInstanceUID", "LossyImageCompression", "LossyImageCompressionRatio",
           "LossyImageCompressionMethod", "DerivationDescription"}


@pytest.fixture(scope="module")
def study(dicom_dir, tmp_path_factory):
    """A folder of small real DICOMs (one per source, 8 to 16 bits stored)."""
    folder = tmp_path_factory.mktemp("study")
    for name in SOURCES:
        crop_dicom(dicom_dir / name, folder / name)
    return folder


def _compress(inputs, out, codec, quality, *extra):
    return main(["compress", *map(str, inputs), "-o", str(out), "--codec", codec,
                 "--quality", str(quality), "--format", "dicom", *extra])


def _kept(ds):
    return {e.keyword: e.value for e in ds if e.keyword and e.keyword not in CHANGED}


@pytest.mark.parametrize("codec,quality", sorted(SYNTAX))
def test_pydicom_decodes_every_syntax(codec, quality, study, tmp_path):
    names = [n for n, bits in SOURCES.items() if codec != "htj2k" or bits in (8, 16)]
    out = tmp_path / "out"
    assert _compress([study / n for n in names], out, codec, quality) == 0
    for name in names:
        source, written = pydicom.dcmread(study / name), pydicom.dcmread(out / name)
        assert written.file_meta.TransferSyntaxUID == SYNTAX[codec, quality]
        assert _kept(written) == _kept(source), name
        if quality != 1:  # lossy: the step is described after earlier ones
            assert f"lossy compression by codeczoo {codec}" in written.DerivationDescription
        original = read_image(study / name).pixels
        decoded = written.pixel_array  # pydicom + pylibjpeg plugins, not codeczoo
        error = np.abs(decoded.astype(int) - original).max()
        if quality == 1:
            assert error == 0, name
            assert written.SOPInstanceUID == source.SOPInstanceUID  # same instance
            assert written.get("LossyImageCompression", "00") == source.get("LossyImageCompression", "00")
        else:
            assert 0 < error and (codec != "jpegls" or error <= quality - 1), name
            assert written.SOPInstanceUID != source.SOPInstanceUID
            assert written.file_meta.MediaStorageSOPInstanceUID == written.SOPInstanceUID
            assert written.LossyImageCompression == "01"
            methods = written.LossyImageCompressionMethod
            assert (methods if isinstance(methods, str) else methods[-1]) == METHOD[codec]
            ratios = written.LossyImageCompressionRatio
            ratio = float(ratios if not isinstance(ratios, pydicom.multival.MultiValue) else ratios[-1])
            frame = len(pydicom.encaps.generate_frames(written.PixelData, number_of_frames=1)
                        .__next__())
            # the fragment may carry one byte of padding to even length
            assert ratio == pytest.approx(original.size * original.itemsize / frame, rel=1e-3)


def test_dcmtk_decodes_jpegls_bit_exactly(study, tmp_path):
    out = tmp_path / "out"
    assert _compress([study], out, "jpegls", 1) == 0
    for name in SOURCES:
        raw = tmp_path / f"raw_{name}"
        done = run_tool("dcmdjpls", str(out / name), str(raw))
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        decoded = pydicom.dcmread(raw)
        assert decoded.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert np.array_equal(decoded.pixel_array, read_image(study / name).pixels), name


def test_dcmtk_decodes_near_lossless_within_near(study, tmp_path):
    out = tmp_path / "near.dcm"
    assert _compress([study / "966_fixed.dcm"], out, "jpegls", 4) == 0
    raw = tmp_path / "raw.dcm"
    assert run_tool("dcmdjpls", str(out), str(raw)).returncode == 0
    error = np.abs(pydicom.dcmread(raw).pixel_array.astype(int)
                   - read_image(study / "966_fixed.dcm").pixels).max()
    assert 0 < error <= 3


@pytest.mark.parametrize("codec,quality", [("jpeg2000", 1), ("jpeg2000", 10), ("jpegls", 1),
                                           ("jpegls", 5), ("htj2k", 1), ("htj2k", 10)])
def test_dciodvfy_reports_no_new_errors(codec, quality, study, tmp_path):
    names = [n for n, bits in SOURCES.items() if codec != "htj2k" or bits in (8, 16)]
    out = tmp_path / "out"
    assert _compress([study / n for n in names], out, codec, quality) == 0
    for name in names:
        checked = out / name
        if codec == "htj2k":
            checked = _as_jpeg2000(checked, tmp_path / f"as_j2k_{name}", lossless=quality == 1)
        new = dciodvfy_errors(checked) - dciodvfy_errors(study / name)
        assert not new, f"{codec} q{quality} {name}: {new}"
        assert run_tool("dcmftest", str(out / name)).returncode == 0


def _as_jpeg2000(path, target, lossless):
    """dicom3tools 2022 (Debian 12) predates the HTJ2K transfer syntaxes (DICOM 2023) and reads
    them as native, failing on the encapsulated pixel data; the same file relabelled with the
    JPEG 2000 transfer syntax (same encapsulation, an HTJ2K codestream is a JPEG 2000 Part 15
    one) lets it check every attribute."""
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEG2000Lossless if lossless else pydicom.uid.JPEG2000
    ds.save_as(target, enforce_file_format=True)
    return target


@pytest.mark.slow
def test_real_compressed_sources_keep_their_instance(dicom_dir, tmp_path):
    """A whole real JPEG 2000 DICOM re-coded losslessly as JPEG-LS: same instance, same pixels."""
    out = tmp_path / "jls.dcm"
    source = dicom_dir / "JPEG2KLossless_1s_1f_u_16_16.dcm"
    assert _compress([source], out, "jpegls", 1) == 0
    written = pydicom.dcmread(out)
    assert np.array_equal(written.pixel_array, read_image(source).pixels)
    assert written.SOPInstanceUID == pydicom.dcmread(source, stop_before_pixels=True).SOPInstanceUID


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_codecs_without_a_transfer_syntax_are_refused(study, tmp_path, capsys):
    for codec, words in (("sushmit2019-rnnconv", "learned codec"), ("jpegxl", "no transfer syntax"),
                         ("avif", "no transfer syntax")):
        out = tmp_path / codec
        assert main(["compress", str(study), "-o", str(out), "--codec", codec,
                     "--format", "dicom"]) == 1
        line = _one_line_error(capsys)
        assert words in line and "jpeg2000, jpegls, htj2k" in line and "decompress" in line
        assert not out.exists()


def test_png_inputs_are_refused(cxr_val_images, tmp_path, capsys):
    target = tmp_path / "x.dcm"
    assert main(["compress", str(cxr_val_images[0]), "-o", str(target), "--format", "dicom"]) == 1
    assert "DICOM inputs only" in _one_line_error(capsys) and not target.exists()


def test_htj2k_refuses_precision_that_is_not_bits_stored(study, tmp_path, capsys):
    target = tmp_path / "x.dcm"
    assert _compress([study / "966_fixed.dcm"], target, "htj2k", 1) == 1
    line = _one_line_error(capsys)
    assert "16-bit samples for this 12-bit image" in line and not target.exists()


def _variant(source, target, **changes):
    ds = pydicom.dcmread(source)
    for key, value in changes.items():
        setattr(ds, key, value)
    ds.save_as(target)
    return target


def test_bad_dicoms_get_one_line_and_nothing_written(study, dicom_dir, tmp_path, capsys):
    base = study / "RG3_UNCR.dcm"
    ds = pydicom.dcmread(base)
    bad = tmp_path / "bad"
    bad.mkdir()
    compressed = pydicom.dcmread(dicom_dir / "966_fixed.dcm")
    fragments = pydicom.encaps.encapsulate([b"\xff\x4f\xff\x51" + bytes(200)])
    cases = {
        _variant(base, bad / "rows.dcm", Rows=ds.Rows + 7): "pixel data",
        _variant(base, bad / "frames.dcm", NumberOfFrames=2, PixelData=ds.PixelData * 2): "multi-frame",
        _variant(base, bad / "rgb.dcm", SamplesPerPixel=3, PhotometricInterpretation="RGB"): "colour",
        _variant(base, bad / "signed.dcm", PixelRepresentation=1): "signed",
        _variant(dicom_dir / "966_fixed.dcm", bad / "undecodable.dcm", PixelData=fragments):
            "cannot decode",
        _variant(dicom_dir / "966_fixed.dcm", bad / "bits.dcm", BitsStored=8, HighBit=7,
                 BitsAllocated=compressed.BitsAllocated): "",
    }
    for path, words in cases.items():
        target = tmp_path / f"out_{path.name}"
        code = _compress([path], target, "jpegls", 1)
        if code == 0:  # BitsStored smaller than the codestream: values masked by the standard
            written = pydicom.dcmread(target)
            assert written.BitsStored == 8 and int(written.pixel_array.max()) < 256
            continue
        line = _one_line_error(capsys)
        assert words in line, (path.name, line)
        assert not target.exists() and not list(tmp_path.glob("out_*.partial"))


def test_writer_refuses_inconsistent_requests(study, tmp_path):
    from codeczoo.errors import ImageFormatError
    from codeczoo.io.dicom_encapsulated import write_encapsulated

    image = read_image(study / "RG3_UNCR.dcm")
    rows, columns = image.pixels.shape
    frame = b"\xff\x4f\xff\x51" + bytes(60)
    common = dict(rows=rows, columns=columns, bits_stored=10)
    cases = [
        (dict(transfer_syntax="1.2.840.10008.1.2.4.90", lossy=True, ratio=5, method="X"), "lossy"),
        (dict(transfer_syntax="1.2.840.10008.1.2.1", lossy=False), "not one codeczoo writes"),
        (dict(transfer_syntax="1.2.840.10008.1.2.4.91", lossy=True), "ratio and method"),
    ]
    for options, words in cases:
        syntax = options.pop("transfer_syntax")
        with pytest.raises(ImageFormatError, match=words):
            write_encapsulated(tmp_path / "x.dcm", image.dataset, frame, syntax, **common, **options)
    with pytest.raises(ImageFormatError, match="source DICOM"):
        write_encapsulated(tmp_path / "x.dcm", image.dataset, frame, "1.2.840.10008.1.2.4.90",
                           rows=rows + 1, columns=columns, bits_stored=10, lossy=False)
    assert not list(tmp_path.iterdir())
