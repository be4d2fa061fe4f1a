"""Visual comparison: an X-ray region, each codec's reconstruction at a matched bit rate, error maps.

Each codec codes the region itself (a crop of the image, so rates are those of the region) at the
quality whose real bpp, from the bytes, is closest to the target (:func:`closest_quality`).
Lossless settings are skipped: the figure compares lossy reconstructions. The top row shows the
original and the reconstructions with one grey-level window (the original's range; MONOCHROME1
shown inverted so bone is bright), the bottom row the absolute error in stored units with one
shared colour scale (square-root, up to the 99.5th percentile of all errors), so panels compare
honestly and small errors stay visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import PowerNorm  # noqa: E402
import numpy as np  # noqa: E402

from .. import metrics  # noqa: E402
from ..atomic import write_atomically  # noqa: E402
from ..errors import CodeczooError  # noqa: E402
from .data import Sample, as_sample  # noqa: E402
from .evaluate import load_codec  # noqa: E402


@dataclass
class Panel:
    """One codec's reconstruction of the region."""

    codec: str
    quality: int
    bpp: float
    psnr: float
    ssim: float | None
    image: np.ndarray


def crop_region(sample: Sample, region: Sequence[int] | None, size: int = 256) -> Sample:
    """``region = (top, left, height, width)``; default: a centred ``size`` square (or all)."""
    height, width = sample.pixels.shape
    if region is None:
        h, w = min(size, height), min(size, width)
        top, left = (height - h) // 2, (width - w) // 2
    else:
        if len(region) != 4:
            raise CodeczooError(f"region must be top,left,height,width; got {list(region)}")
        top, left, h, w = (int(v) for v in region)
        if top < 0 or left < 0 or h < 16 or w < 16 or top + h > height or left + w > width:
            raise CodeczooError(
                f"region {top},{left},{h},{w} does not fit the {height}x{width} image "
                "(or is smaller than 16 px)")
    pixels = np.ascontiguousarray(sample.pixels[top:top + h, left:left + w])
    return Sample(f"{sample.name}[{top}:{top + h},{left}:{left + w}]", pixels,
                  sample.bits_stored, sample.photometric)


def _code(codec, sample: Sample, quality: int) -> tuple[float, np.ndarray]:
    data = codec.encode(sample.pixels, quality, bits_stored=sample.bits_stored,
                        photometric=sample.photometric)
    return metrics.bpp(len(data), sample.pixels), codec.decode(data)


def closest_quality(codec, sample: Sample, target_bpp: float) -> tuple[int, float, np.ndarray]:
    """The lossy quality whose real bpp on ``sample`` is closest to ``target_bpp``.

    Every quality is tried when a codec has at most 4; otherwise a bisection assumes the rate is
    monotone in the quality (rising for iteration counts, falling for JPEG 2000's ratios) and
    the two qualities around the crossing are compared: about log2(n) + 2 encodes.
    """
    if target_bpp <= 0:
        raise CodeczooError(f"target bpp must be positive, got {target_bpp}")
    qualities = [int(q) for q in sorted(codec.qualities) if not codec.is_lossless(int(q))]
    if not qualities:
        raise CodeczooError(f"{codec.codec_name} has no lossy quality to match a bpp with")
    cache: dict[int, tuple[float, np.ndarray]] = {}

    def at(i: int) -> float:
        q = qualities[i]
        if q not in cache:
            cache[q] = _code(codec, sample, q)
        return cache[q][0]

    if len(qualities) <= 4:
        candidates = range(len(qualities))
    else:
        lo, hi = 0, len(qualities) - 1
        rising = at(hi) >= at(lo)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if (at(mid) < target_bpp) == rising:
                lo = mid
            else:
                hi = mid
        candidates = (lo, hi)
    best = min(candidates, key=lambda i: (abs(at(i) - target_bpp), i))
    q = qualities[best]
    return q, cache[q][0], cache[q][1]


def comparison_figure(image, output: str | Path, codecs: Sequence[str] | None = None,
                      target_bpp: float = 0.5, region: Sequence[int] | None = None,
                      pretrained: bool | None = None, include_untrained: bool = False,
                      device: str | None = None, dpi: int = 150) -> tuple[Path, list[Panel]]:
    """Write the comparison PNG for ``image`` (path, array or image object); returns the panels.

    ``codecs`` defaults to the benchmark's set (pretrained learned codecs and JPEG 2000).
    """
    from .bench import bench_codecs

    sample = crop_region(as_sample(image), region)
    names = bench_codecs(codecs, include_untrained)
    bits = sample.bits_stored
    panels = []
    for name in names:
        codec = load_codec(name, pretrained, device)
        quality, rate, restored = closest_quality(codec, sample, target_bpp)
        label = name if not (pretrained is False and name != "jpeg2000") else f"{name} (untrained)"
        panels.append(Panel(label, quality, rate, metrics.psnr(sample.pixels, restored, bits),
                            metrics.ssim(sample.pixels, restored, bits)
                            if min(restored.shape) >= metrics.SSIM_KERNEL else None, restored))

    original = sample.pixels.astype(np.float64)
    vmin, vmax = float(original.min()), float(original.max())
    cmap = "gray_r" if sample.photometric == "MONOCHROME1" else "gray"
    errors = [np.abs(p.image.astype(np.float64) - original) for p in panels]
    emax = max(float(np.percentile(np.concatenate([e.ravel() for e in errors]), 99.5)), 1.0)

    cols = len(panels) + 1
    fig, axes = plt.subplots(2, cols, figsize=(3.2 * cols, 6.8), squeeze=False, layout="constrained")
    try:
        axes[0][0].imshow(original, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        axes[0][0].set_title(f"original\n{sample.pixels.shape[0]}x{sample.pixels.shape[1]}, "
                             f"{bits} bit", fontsize=9)
        axes[1][0].axis("off")
        axes[1][0].text(0.5, 0.5, f"target {target_bpp:g} bpp\n|error| in stored units\n"
                        f"(scale 0–{emax:.0f})", ha="center", va="center", fontsize=9)
        image_obj = None
        for col, (panel, error) in enumerate(zip(panels, errors), start=1):
            axes[0][col].imshow(panel.image.astype(np.float64), cmap=cmap, vmin=vmin, vmax=vmax,
                                interpolation="nearest")
            ssim_text = "" if panel.ssim is None else f", SSIM {panel.ssim:.3f}"
            psnr_text = "lossless" if panel.psnr == float("inf") else f"{panel.psnr:.2f} dB"
            axes[0][col].set_title(f"{panel.codec} (q={panel.quality})\n{panel.bpp:.3f} bpp, "
                                   f"{psnr_text}{ssim_text}", fontsize=8)
            image_obj = axes[1][col].imshow(error, cmap="inferno", interpolation="nearest",
                                            norm=PowerNorm(0.5, vmin=0, vmax=emax))
        for ax in axes.ravel():
            ax.set_xticks([])
            ax.set_yticks([])
        if image_obj is not None:
            fig.colorbar(image_obj, ax=list(axes[1]), shrink=0.8, label="|error| (square-root scale)")
        fig.suptitle(f"{sample.name} at ~{target_bpp:g} bpp (rates from bitstream bytes)", fontsize=10)
        output = write_atomically(output, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"),
                                  overwrite=True)
    finally:
        plt.close(fig)
    return output, panels
