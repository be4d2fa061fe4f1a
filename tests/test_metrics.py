"""codeczoo.metrics against independent NumPy computations, on real radiographs."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from codeczoo import metrics
from codeczoo.errors import ImageFormatError
from codeczoo.io import read_image

SAMPLES = Path(__file__).resolve().parent.parent / "codeczoo" / "samples"


def numpy_psnr(a: np.ndarray, b: np.ndarray, bits: int) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10.0 * math.log10(((1 << bits) - 1) ** 2 / mse)


def noisy(image: np.ndarray, bits: int, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = image.astype(np.float64) + rng.normal(0, sigma, image.shape)
    return np.clip(np.rint(out), 0, (1 << bits) - 1).astype(image.dtype)


@pytest.fixture(scope="module")
def chest8():
    return read_image(SAMPLES / "chest_1_8bit.png")


@pytest.fixture(scope="module")
def chest16():
    return read_image(SAMPLES / "chest_dx_16bit.png")


def test_psnr_8bit_matches_numpy(chest8):
    a = chest8.pixels
    assert a.dtype == np.uint8 and chest8.bits_stored == 8
    b = noisy(a, 8, 3.0)
    assert metrics.psnr(a, b, 8) == pytest.approx(numpy_psnr(a, b, 8), abs=1e-4)


def test_psnr_16bit_matches_numpy(chest16):
    a = chest16.pixels
    assert a.dtype == np.uint16
    b = noisy(a, 16, 40.0)
    assert metrics.psnr(a, b, 16) == pytest.approx(numpy_psnr(a, b, 16), abs=1e-4)


def test_psnr_uses_stored_bits_not_dtype(chest16):
    a = (chest16.pixels >> 4).astype(np.uint16)  # a real 12-bit image in a uint16 container
    b = noisy(a, 12, 5.0)
    p12 = metrics.psnr(a, b, 12)
    assert p12 == pytest.approx(numpy_psnr(a, b, 12), abs=1e-4)
    # the 16-bit peak would overstate quality by 20 log10(65535 / 4095) = 24.08 dB
    assert metrics.psnr(a, b, 16) - p12 == pytest.approx(20 * math.log10(65535 / 4095), abs=1e-3)


def test_signed_images_are_offset(chest16):
    a = (chest16.pixels >> 4).astype(np.int32)
    b = noisy(a.astype(np.uint16), 12, 5.0).astype(np.int32)
    sa, sb = (a - 2048).astype(np.int16), (b - 2048).astype(np.int16)
    assert metrics.psnr(sa, sb, 12) == pytest.approx(numpy_psnr(a, b, 12), abs=1e-4)
    assert metrics.ssim(sa, sb, 12) == pytest.approx(
        metrics.ssim(a.astype(np.uint16), b.astype(np.uint16), 12), abs=1e-6)


def test_identical_images(chest8):
    a = chest8.pixels
    assert metrics.psnr(a, a.copy(), 8) == math.inf
    assert metrics.ssim(a, a.copy(), 8) == pytest.approx(1.0, abs=1e-6)
    assert metrics.ms_ssim(a, a.copy(), 8) == pytest.approx(1.0, abs=1e-6)
    assert metrics.json_safe({"psnr": [math.inf, 30.0]}) == {"psnr": [None, 30.0]}


def test_ssim_orders_distortions(chest8):
    a = chest8.pixels
    light, heavy = noisy(a, 8, 2.0), noisy(a, 8, 12.0)
    assert 1.0 > metrics.ssim(a, light, 8) > metrics.ssim(a, heavy, 8) > 0.0
    assert 1.0 > metrics.ms_ssim(a, light, 8) > metrics.ms_ssim(a, heavy, 8) > 0.0


def test_ms_ssim_size_rule(chest8):
    a = chest8.pixels
    assert not metrics.ms_ssim_supported(175, 256) and metrics.ms_ssim_supported(176, 176)
    small = a[:160, :160]
    assert metrics.ms_ssim(small, noisy(small, 8, 3.0), 8) is None
    big = a[:176, :176]
    assert isinstance(metrics.ms_ssim(big, noisy(big, 8, 3.0), 8), float)


def test_bad_inputs(chest8):
    a = chest8.pixels
    with pytest.raises(ImageFormatError, match="differs"):
        metrics.psnr(a, a[:-1], 8)
    with pytest.raises(ImageFormatError, match="integers"):
        metrics.psnr(a.astype(np.float32), a.astype(np.float32), 8)
    with pytest.raises(ImageFormatError, match="bits_stored"):
        metrics.psnr(a, a, 17)


def test_bpp_equals_file_size_on_disk(chest8, tmp_path):
    import codeczoo

    data = codeczoo.load("jpeg2000").encode(chest8.pixels, 16)
    path = tmp_path / "x.czoo"
    path.write_bytes(data)
    expected = os.path.getsize(path) * 8 / chest8.pixels.size
    assert metrics.bpp(len(data), chest8.pixels) == expected
    assert metrics.bpp(len(data), chest8.pixels.shape) == expected
    assert metrics.bpp(len(data), chest8.pixels.size) == expected


def test_training_metrics_average_per_image_psnr(chest8):
    a = chest8.pixels[:64, :64]
    crops = [a, noisy(a, 8, 4.0, 1), noisy(a, 8, 8.0, 2)]
    target = torch.from_numpy(np.stack([a] * 3).astype(np.float32) / 255)[:, None]
    preds = torch.from_numpy(np.stack(crops).astype(np.float32) / 255)[:, None]
    collection = metrics.training_metrics(prefix="val/")
    collection.update(preds[1:], target[1:])
    values = collection.compute()
    expected = np.mean([numpy_psnr(a, c, 8) for c in crops[1:]])
    assert set(values) == {"val/psnr", "val/ssim"}
    assert float(values["val/psnr"]) == pytest.approx(expected, abs=1e-3)
    assert "ms_ssim" in metrics.training_metrics("val/", include_ms_ssim=True).keys(keep_base=True)
