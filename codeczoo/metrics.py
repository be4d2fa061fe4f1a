"""Image-quality and rate metrics for X-rays of any bit depth, on top of torchmetrics.

Distortion metrics take the original and the reconstructed image as NumPy integer arrays (2-D,
stored values, any bit depth from 1 to 16, signed or unsigned) and return a Python float:

* :func:`psnr`: peak signal-to-noise ratio with ``data_range = 2**bits_stored - 1`` (the peak of
  the stored bit depth, not of the container dtype: a 12-bit image in ``uint16`` peaks at 4095).
  Identical images give ``float('inf')``; :func:`json_safe` turns it into ``None`` for JSON.
* :func:`ssim`: structural similarity (Wang et al. 2004), 11-px Gaussian window, sigma 1.5.
* :func:`ms_ssim`: multi-scale SSIM (Wang et al. 2003), 5 scales, same window. It needs each side
  ``s`` to satisfy ``s // 16 > 10`` (i.e. ``s >= 176``) so the coarsest scale still holds a
  window; for smaller images it returns ``None`` (see :func:`ms_ssim_supported`) instead of
  padding or changing the method, so numbers stay comparable with other papers.

The rate metric :func:`bpp` is ``bytes * 8 / pixels of the original image``: always from real
bytes (a whole bitstream), never from likelihoods. "Compression ratio" has two meanings here,
each with its own function and name: :func:`stored_bits_ratio` (stored bits over coded bits) and
:func:`dicom_lossy_ratio` (DICOM's (0028,2112), allocated bits over coded bits); the paper's ratio
of Sushmit et al. counts latent elements and lives with the paper table
(:func:`codeczoo.evaluation.paper_table.paper_ratio`).

Signed images are offset to the unsigned working range ``[0, 2**bits - 1]`` first (as
:mod:`codeczoo.intensity` does for codecs), which leaves PSNR unchanged and gives SSIM the
luminance values it is defined on. Everything is computed by ``torchmetrics.functional``; PSNR in
float64 (an exact MSE even for 16-bit data), SSIM / MS-SSIM on the unit range in float32.

:func:`training_metrics` builds the :class:`torchmetrics.MetricCollection` a Lightning module logs
during training and validation, on unit-range tensors.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torchmetrics import MetricCollection
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure as _tm_ms_ssim,
    peak_signal_noise_ratio as _tm_psnr,
    structural_similarity_index_measure as _tm_ssim,
)
from torchmetrics.image import (
    MultiScaleStructuralSimilarityIndexMeasure,
    PeakSignalNoiseRatio,
    StructuralSimilarityIndexMeasure,
)

from .errors import ImageFormatError

#: SSIM window (pixels) and the number of MS-SSIM scales, the standard settings.
SSIM_KERNEL = 11
MS_SSIM_SCALES = 5
#: MS-SSIM weights of Wang et al. 2003 (torchmetrics' and pytorch_msssim's default).
MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _unsigned(image: np.ndarray, bits_stored: int) -> np.ndarray:
    """Stored values -> float64 values in ``[0, 2**bits - 1]`` (signed data offset by half)."""
    values = image.astype(np.float64)
    if image.dtype.kind == "i":
        values += float(1 << (bits_stored - 1))
    return values


def _check_pair(original: np.ndarray, reconstructed: np.ndarray, bits_stored: int) -> None:
    for name, arr in (("original", original), ("reconstructed", reconstructed)):
        if not isinstance(arr, np.ndarray):
            raise ImageFormatError(f"{name} image must be a NumPy array, got {type(arr).__name__}")
        if arr.ndim != 2:
            raise ImageFormatError(f"{name} image must be 2-D (H, W), got shape {arr.shape}")
        if arr.dtype.kind not in "ui":
            raise ImageFormatError(f"{name} image must hold integers, got dtype {arr.dtype}")
    if original.shape != reconstructed.shape:
        raise ImageFormatError(
            f"reconstructed shape {reconstructed.shape} differs from the original {original.shape}")
    if isinstance(bits_stored, bool) or not isinstance(bits_stored, (int, np.integer)) \
            or not 1 <= int(bits_stored) <= 16:
        raise ImageFormatError(f"bits_stored must be an integer from 1 to 16, got {bits_stored!r}")


def _pair_tensors(original, reconstructed, bits_stored, dtype=torch.float32, unit=True):
    """Both images as (1, 1, H, W) tensors, unit range (``unit``) or stored range."""
    _check_pair(original, reconstructed, bits_stored)
    peak = float((1 << int(bits_stored)) - 1)
    scale = peak if unit else 1.0
    a = torch.from_numpy(_unsigned(original, bits_stored) / scale).to(dtype)[None, None]
    b = torch.from_numpy(_unsigned(reconstructed, bits_stored) / scale).to(dtype)[None, None]
    return a, b, peak


def psnr(original: np.ndarray, reconstructed: np.ndarray, bits_stored: int) -> float:
    """PSNR in dB with peak ``2**bits_stored - 1``; ``float('inf')`` for identical images."""
    a, b, peak = _pair_tensors(original, reconstructed, bits_stored, torch.float64, unit=False)
    if torch.equal(a, b):
        return math.inf
    return float(_tm_psnr(b, a, data_range=peak))


def ssim(original: np.ndarray, reconstructed: np.ndarray, bits_stored: int) -> float:
    """SSIM (11-px Gaussian window, sigma 1.5, K1 0.01, K2 0.03) with data range ``2**bits - 1``.

    Images need at least 11 pixels a side (one window); smaller ones raise ImageFormatError.
    """
    a, b, _ = _pair_tensors(original, reconstructed, bits_stored)
    if min(a.shape[-2:]) < SSIM_KERNEL:
        raise ImageFormatError(
            f"SSIM needs at least {SSIM_KERNEL} pixels a side, image is {tuple(a.shape[-2:])}")
    return float(_tm_ssim(b, a, data_range=1.0, kernel_size=SSIM_KERNEL))


def ms_ssim_supported(height: int, width: int) -> bool:
    """Whether an image is large enough for 5-scale MS-SSIM with the 11-px window.

    torchmetrics' condition: each side ``s`` must satisfy ``s // 16 > 10``, i.e. ``s >= 176``.
    """
    div = max(1, MS_SSIM_SCALES - 1) ** 2
    return min(height, width) // div > SSIM_KERNEL - 1


def ms_ssim(original: np.ndarray, reconstructed: np.ndarray, bits_stored: int) -> float | None:
    """MS-SSIM (5 scales, Wang et al. 2003 weights); ``None`` where the image is too small.

    See :func:`ms_ssim_supported` for the size rule. Callers averaging over images skip ``None``.
    """
    a, b, _ = _pair_tensors(original, reconstructed, bits_stored)
    if not ms_ssim_supported(*a.shape[-2:]):
        return None
    return float(_tm_ms_ssim(b, a, data_range=1.0, kernel_size=SSIM_KERNEL, betas=MS_SSIM_BETAS))


def bpp(num_bytes: int, pixels: int | np.ndarray | tuple[int, ...]) -> float:
    """Bits per pixel: ``num_bytes * 8 / pixels`` of the original image.

    ``pixels`` is a pixel count, the original image (its ``.size`` is used) or its shape.
    """
    if isinstance(pixels, np.ndarray):
        count = int(pixels.size)
    elif isinstance(pixels, tuple):
        count = int(np.prod(pixels))
    else:
        count = int(pixels)
    if count <= 0:
        raise ImageFormatError(f"bpp needs a positive pixel count, got {count}")
    if int(num_bytes) < 0:
        raise ImageFormatError(f"bpp needs a non-negative byte count, got {num_bytes}")
    return int(num_bytes) * 8.0 / count


def stored_bits_ratio(num_bytes: int, pixels: int, bits_stored: float) -> float:
    """Compression ratio in stored bits: ``pixels * bits_stored / (8 * num_bytes)``.

    The ratio of the information the image holds (``bits_stored`` significant bits a pixel, e.g.
    12 for most CR/DX) to the bytes coded. It is what JPEG 2000's rate setting targets
    (:mod:`codeczoo.classic.jpeg2000`), what ``codeczoo info`` prints and the paper table's "real
    ratio" (over crops of several bit depths, ``bits_stored`` is their pixel-weighted mean).
    Not the paper's ratio (latent elements,
    :func:`codeczoo.evaluation.paper_table.paper_ratio`) nor DICOM's (:func:`dicom_lossy_ratio`).
    """
    _check_counts(num_bytes, pixels)
    return int(pixels) * float(bits_stored) / (8.0 * max(1, int(num_bytes)))


def dicom_lossy_ratio(num_bytes: int, pixels: int, bits_allocated: int) -> float:
    """DICOM's Lossy Image Compression Ratio (0028,2112): uncompressed pixel data over compressed.

    The uncompressed size counts ``bits_allocated`` a pixel (16 for 12-bit data), as the Pixel
    Data element would hold it, so for 12-bit images it is 16/12 of :func:`stored_bits_ratio`.
    """
    _check_counts(num_bytes, pixels)
    return int(pixels) * int(bits_allocated) / (8.0 * max(1, int(num_bytes)))


def _check_counts(num_bytes: int, pixels: int) -> None:
    if int(pixels) <= 0:
        raise ImageFormatError(f"a compression ratio needs a positive pixel count, got {pixels}")
    if int(num_bytes) < 0:
        raise ImageFormatError(
            f"a compression ratio needs a non-negative byte count, got {num_bytes}")


def json_safe(value: Any) -> Any:
    """Replace non-finite floats (PSNR of a lossless result is ``inf``) by ``None``, recursively.

    Strict JSON has no ``Infinity``; ``None`` becomes ``null``, which readers skip.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value


def training_metrics(prefix: str = "", include_ms_ssim: bool = False) -> MetricCollection:
    """PSNR and SSIM (and MS-SSIM with ``include_ms_ssim``) for unit-range tensors ``(N, 1, H, W)`` in [0, 1].

    PSNR is computed per image (``dim=(1, 2, 3)``) and averaged, like :func:`psnr` averaged over
    a data set. MS-SSIM needs crops of at least 176 px a side (:func:`ms_ssim_supported`); leave
    it off for the small crops recurrent codecs train on.

    Usage in a LightningModule::

        self.val_metrics = training_metrics(prefix="val/")
        ...
        self.val_metrics.update(x_hat.clamp(0, 1), x)
        self.log_dict(self.val_metrics, on_epoch=True)
    """
    metrics = {
        "psnr": PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3)),
        "ssim": StructuralSimilarityIndexMeasure(data_range=1.0, kernel_size=SSIM_KERNEL),
    }
    if include_ms_ssim:
        metrics["ms_ssim"] = MultiScaleStructuralSimilarityIndexMeasure(
            data_range=1.0, kernel_size=SSIM_KERNEL, betas=MS_SSIM_BETAS)
    return MetricCollection(metrics, prefix=prefix or None)


__all__ = ["bpp", "dicom_lossy_ratio", "json_safe", "ms_ssim", "ms_ssim_supported", "psnr", "ssim",
           "stored_bits_ratio", "training_metrics"]
