"""JPEG 2000 (glymur/OpenJPEG) on every real image of the shared data set, and on synthetic edge cases.

Round trips go through the codeczoo container written to disk and read back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import codeczoo
from codeczoo.classic.jpeg2000 import Jpeg2000, number_of_resolutions
from codeczoo.errors import CodeczooError, ImageFormatError
from codeczoo.io import read_image

LOSSY_RATIO = 10
PSNR_FLOOR_DB = 28.0  # sanity floor; the measured values are printed (pytest -s) and recorded


@pytest.fixture(scope="module")
def codec():
    return codeczoo.load("jpeg2000")


def psnr(reference: np.ndarray, test: np.ndarray, bits: int) -> float:
    mse = np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(((1 << bits) - 1) ** 2 / mse)


def _round_trip(codec, image, tmp_path, record):
    """Lossless and ratio-10 coding of one real image through files on disk."""
    pixels, bits = image.pixels, image.bits_stored
    lossless = tmp_path / f"{image.path.stem}.lossless.czoo"
    lossless.write_bytes(codec.encode(pixels, 1, bits_stored=bits, photometric=image.photometric))
    back = codeczoo.decode(lossless.read_bytes())
    assert back.dtype == pixels.dtype and back.shape == pixels.shape
    assert np.array_equal(back, pixels), f"{image.path.name}: lossless JPEG 2000 is not exact"
    header = codeczoo.read_header(lossless.read_bytes())
    assert header.spec.photometric == image.photometric and header.spec.bits_stored == bits

    lossy = tmp_path / f"{image.path.stem}.r{LOSSY_RATIO}.czoo"
    lossy.write_bytes(codec.encode(pixels, LOSSY_RATIO, bits_stored=bits,
                                   photometric=image.photometric))
    approx = codeczoo.decode(lossy.read_bytes())
    assert approx.dtype == pixels.dtype and approx.shape == pixels.shape
    n_bytes = lossy.stat().st_size
    bpp = n_bytes * 8 / pixels.size
    ratio = bits / bpp
    value = psnr(pixels, approx, bits)
    record(image.path.name, bits, lossless.stat().st_size * 8 / pixels.size, bpp, ratio, value)
    assert not np.array_equal(approx, pixels)
    # OpenJPEG's rate control aims at the ratio relative to the stored bits (container included)
    assert 0.85 * LOSSY_RATIO < ratio < 1.15 * LOSSY_RATIO, f"{image.path.name}: ratio {ratio:.2f}"
    assert value > PSNR_FLOOR_DB, f"{image.path.name}: PSNR {value:.2f} dB"


@pytest.fixture
def report(record_property):
    rows = []

    def record(name, bits, lossless_bpp, bpp, ratio, value):
        rows.append((name, bits, lossless_bpp, bpp, ratio, value))
        record_property(name, {"bits": bits, "lossless_bpp": lossless_bpp, "lossy_bpp": bpp,
                               "ratio": ratio, "psnr_db": value})

    yield record
    print("\nimage                              bits  lossless bpp  r10 bpp   ratio   PSNR dB")
    for name, bits, lbpp, bpp, ratio, value in rows:
        print(f"{name:34s} {bits:4d} {lbpp:13.3f} {bpp:8.3f} {ratio:7.2f} {value:9.2f}")


@pytest.mark.slow
def test_every_val_png_round_trips(codec, cxr_val_images, tmp_path, report):
    assert len(cxr_val_images) >= 20
    for path in cxr_val_images:
        _round_trip(codec, read_image(path), tmp_path, report)


def test_some_train_pngs_round_trip(codec, cxr_train_images, tmp_path, report):
    for path in cxr_train_images[::40]:  # a handful, spread over the split
        _round_trip(codec, read_image(path), tmp_path, report)


@pytest.mark.slow
def test_every_dicom_round_trips(codec, dicom_files, tmp_path, report):
    assert len(dicom_files) >= 6
    for path in dicom_files:
        _round_trip(codec, read_image(path), tmp_path, report)


# -- synthetic bit depths and sizes --------------------------------------------------------------

def _smooth(shape, bits, dtype, seed=0):
    """A smooth gradient with noise spanning the range: a stand-in for anatomy at any depth."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    signed = np.dtype(dtype).kind == "i"
    lo = -(1 << (bits - 1)) if signed else 0
    top = (1 << bits) - 1
    base = (np.sin(x / 9.0) + np.cos(y / 7.0) + 2) / 4 * top + lo
    return np.clip(base + rng.normal(0, top / 200, shape), lo, lo + top).astype(dtype)


@pytest.mark.parametrize("bits,dtype", [(8, np.uint8), (10, np.uint16), (12, np.uint16),
                                        (16, np.uint16), (12, np.int16), (8, np.int8),
                                        (4, np.uint8)])
@pytest.mark.parametrize("shape", [(1, 1), (37, 1001), (64, 48), (1, 7)])
def test_synthetic_depths_and_sizes(codec, bits, dtype, shape):
    image = _smooth(shape, bits, dtype)
    data = codec.encode(image, 1, bits_stored=bits)
    back = codeczoo.decode(data)
    assert back.dtype == image.dtype and back.shape == image.shape
    np.testing.assert_array_equal(back, image)
    approx = codeczoo.decode(codec.encode(image, 8, bits_stored=bits))
    assert approx.dtype == image.dtype and approx.shape == image.shape
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if image.dtype.kind == "i" else (0, (1 << bits) - 1)
    assert approx.min() >= lo and approx.max() <= hi


def test_lossy_rate_is_relative_to_stored_bits(codec):
    """Ratio 8 means 1.5 bpp for 12-bit data and 2 bpp for 16-bit data, not 2 bpp for both."""
    for bits in (12, 16):
        image = _smooth((256, 256), bits, np.uint16, seed=bits)
        payload_bpp = len(codec.encode(image, 8, bits_stored=bits)) * 8 / image.size
        assert payload_bpp == pytest.approx(bits / 8, rel=0.1), (bits, payload_bpp)


def test_bpp_target(codec, cxr_val_images):
    image = read_image(cxr_val_images[2]).pixels[:256, :256]
    for bpp in (0.5, 1.0, 2.0):
        data = codec.encode(image, bpp=bpp)
        assert len(data) * 8 / image.size == pytest.approx(bpp, rel=0.1)
        header = codeczoo.read_header(data)
        assert header.quality == max(2, round(8 / bpp))
        assert codeczoo.decode(data).shape == image.shape
    fixed = Jpeg2000(bpp=1.0)
    assert len(fixed.encode(image)) * 8 / image.size == pytest.approx(1.0, rel=0.1)


def test_quality_and_bpp_validation(codec):
    image = np.zeros((8, 8), np.uint8)
    for bad in (0, 1001, 2.5, "10", True):
        with pytest.raises(CodeczooError, match="quality"):
            codec.encode(image, bad)
    for bad in (0, -1, 8, 9.5):
        with pytest.raises(CodeczooError, match="bpp"):
            codec.encode(image, bpp=bad)
    with pytest.raises(CodeczooError, match="not both"):
        codec.encode(image, 4, bpp=1.0)
    assert codec.is_lossless(1) and not codec.is_lossless(2)


def test_bad_arrays_raise(codec):
    for bad, words in [(np.zeros((0, 0), np.uint8), "empty"), (np.zeros((4, 4), np.float32), "dtype"),
                       (np.zeros((4, 4, 3), np.uint8), "2-D"), (np.zeros((4, 4), np.uint32), "dtype")]:
        with pytest.raises(ImageFormatError, match=words):
            codec.encode(bad, 1)
    with pytest.raises(ImageFormatError, match="do not fit"):
        codec.encode(np.full((4, 4), 4096, np.uint16), 1, bits_stored=12)


def test_number_of_resolutions_adapts_to_size():
    assert number_of_resolutions(1, 1) == 1
    assert number_of_resolutions(37, 1001) == 6
    assert number_of_resolutions(5, 100) == 3


# -- standalone .jp2 and the tensor layer --------------------------------------------------------

def test_write_jp2_file(codec, cxr_val_images, tmp_path):
    import glymur

    image = read_image(cxr_val_images[3]).pixels
    size = codec.write_jp2(tmp_path / "x.jp2", image, 1)
    data = (tmp_path / "x.jp2").read_bytes()
    assert size == len(data) and data[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n"
    np.testing.assert_array_equal(glymur.Jp2k(str(tmp_path / "x.jp2"))[:], image)
    # the box wrapper costs bytes the container does not: .j2c payload + header is smaller
    assert len(codec.encode(image, 1)) < size
    lossy = codec.write_jp2(tmp_path / "y.jp2", image, LOSSY_RATIO)
    assert 8 * image.size / 8 / lossy == pytest.approx(LOSSY_RATIO, rel=0.15)
    with pytest.raises(CodeczooError, match="exists"):
        codec.write_jp2(tmp_path / "x.jp2", image, 1)
    with pytest.raises(CodeczooError, match=".jp2"):
        codec.write_jp2(tmp_path / "x.j2k", image, 1)


def test_tensor_layer(cxr_val_images):
    pixels = read_image(cxr_val_images[4]).pixels[:64, :80]
    x = torch.from_numpy(np.stack([pixels, pixels[::-1]]).astype(np.float32) / 255)[:, None]
    lossless = codeczoo.load("jpeg2000", quality=1)
    out = lossless.compress(x)
    assert out["shape"] == (64, 80) and len(out["strings"]) == 1 and len(out["strings"][0]) == 2
    assert all(isinstance(s, bytes) for s in out["strings"][0])
    x_hat = lossless.decompress(out["strings"], out["shape"])["x_hat"]
    assert x_hat.shape == x.shape
    torch.testing.assert_close(x_hat, x, atol=1e-6, rtol=0)
    lossy = codeczoo.load("jpeg2000", quality=10)
    out = lossy.compress(x)
    bpp = sum(len(s) for s in out["strings"][0]) * 8 / x[0, 0].numel() / 2
    assert bpp == pytest.approx(0.8, rel=0.2)
    x_hat = lossy.decompress(out["strings"], out["shape"])["x_hat"]
    assert 0 <= float(x_hat.min()) and float(x_hat.max()) <= 1
    assert 0 < float((x_hat - x).abs().mean()) < 0.05


# -- the OpenJPEG library: found without writing anything ---------------------------------------

@pytest.mark.slow
def test_openjpeg_located_without_writing_to_home(tmp_path):
    """In a fresh process with an empty HOME: a bad explicit path gives the fix, then Pillow's copy
    (or a system library) is used, and neither HOME nor XDG_CONFIG_HOME is touched."""
    home = tmp_path / "home"
    home.mkdir()
    script = textwrap.dedent("""
        import os, numpy as np
        from codeczoo.errors import CodeczooError
        from codeczoo.classic import openjpeg
        os.environ["CODECZOO_OPENJP2"] = "/nonexistent/libopenjp2.so"
        try:
            openjpeg.ensure_openjpeg()
        except CodeczooError as exc:
            assert "pip install pillow" in str(exc), exc
            print("FIX-NAMED")
        del os.environ["CODECZOO_OPENJP2"]
        print(openjpeg.ensure_openjpeg())
        assert "XDG_CONFIG_HOME" not in os.environ
        import codeczoo
        image = (np.arange(48 * 40) % 4096).astype(np.uint16).reshape(48, 40)
        assert (codeczoo.decode(codeczoo.encode(image, "jpeg2000", 1, bits_stored=12)) == image).all()
        print("ROUND-TRIP")
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CONFIG_HOME", "CODECZOO_OPENJP2")}
    env["HOME"] = str(home)
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "FIX-NAMED" in result.stdout and "ROUND-TRIP" in result.stdout
    assert "OpenJPEG 2." in result.stdout
    assert list(home.rglob("*")) == [], "something was written into HOME"
    assert not (tmp_path / "glymurrc").exists()
