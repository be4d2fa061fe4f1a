"""Rate–distortion plots of results dicts (CompressAI schema) as PNG, with matplotlib's Agg backend.

Learned codecs are drawn as solid lines, classical ones (JPEG 2000) dashed, as CompressAI does.
One panel per metric (PSNR in dB, MS-SSIM in dB, SSIM); points without a value (lossless PSNR,
MS-SSIM on small images) are left out; a panel no curve has values for is dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402

from ..atomic import write_atomically  # noqa: E402
from ..errors import CodeczooError  # noqa: E402
from .bdrate import ms_ssim_db  # noqa: E402

LABELS = {"psnr": "PSNR [dB]", "ms-ssim": "MS-SSIM [dB]", "ssim": "SSIM"}
CLASSICAL = ("jpeg2000", "JPEG", "HM", "VTM", "BPG", "WebP")


def curve(result: dict[str, Any], metric: str) -> tuple[list[float], list[float]]:
    """``(bpp, values)`` of one result for ``metric``, sorted by rate, without missing points."""
    results = result["results"]
    ys = results.get(metric)
    if ys is None:
        return [], []
    if metric == "ms-ssim":
        ys = ms_ssim_db(ys)
    points = sorted((x, y) for x, y in zip(results["bpp"], ys)
                    if x is not None and y is not None and y != float("inf"))
    return [p[0] for p in points], [p[1] for p in points]


def rd_plot(results: Sequence[dict[str, Any]], output: str | Path,
            metrics: Sequence[str] = ("psnr", "ms-ssim"), title: str | None = None,
            dpi: int = 150) -> Path:
    """Draw the rate–distortion curves of ``results`` (one panel per metric) into a PNG file."""
    if not results:
        raise CodeczooError("nothing to plot: no results")
    panels = [m for m in metrics if any(curve(r, m)[0] for r in results)]
    if not panels:
        raise CodeczooError(f"no result has values for {', '.join(metrics)}")
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    try:
        for ax, metric in zip(axes[0], panels):
            for result in results:
                xs, ys = curve(result, metric)
                if not xs:
                    continue
                name = result.get("name", "?")
                style = "--" if any(c in name for c in CLASSICAL) else "-"
                ax.plot(xs, ys, style, marker="o", markersize=3, linewidth=1.2, label=name)
            ax.set_xlabel("bits per pixel (from bitstream bytes)")
            ax.set_ylabel(LABELS.get(metric, metric))
            ax.grid(True, alpha=0.4)
            ax.legend(loc="lower right", fontsize=8)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        output = write_atomically(output, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"),
                                  overwrite=True)
    finally:
        plt.close(fig)
    return output
