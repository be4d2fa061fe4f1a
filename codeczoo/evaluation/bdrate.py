"""Bjøntegaard delta rate (BD-rate) and delta PSNR between two rate–distortion curves.

Method (G. Bjøntegaard, "Calculation of average PSNR differences between RD-curves",
ITU-T SG16 VCEG-M33, 2001; VCEG-AL22 2009 for the piecewise-cubic variant): express each curve
as log-rate as a function of quality, interpolate, integrate both over the quality interval the
two curves share, and turn the mean log-rate difference into a percentage::

    BD-rate = (exp(mean(log R_test - log R_anchor)) - 1) * 100   [%]

Negative means the test codec needs less rate than the anchor for the same quality.

Two interpolations (``method``):

* ``"pchip"`` (default): piecewise cubic Hermite interpolation (``scipy.interpolate.
  PchipInterpolator``), monotone and exact through every point; what JVET's common-test-conditions
  spreadsheets and the ``bjontegaard`` package use today. Needs at least 2 points per curve.
* ``"cubic"``: the original VCEG-M33 fit: a least-squares cubic polynomial through the points
  (exact for 4 points), integrated analytically. Needs at least 4 points.

Both give exactly +100 % for a curve that needs twice the rate at every quality and -50 % for
half the rate (a constant log-rate shift), and 0 for identical curves. Points with a non-finite
or missing quality (lossless PSNR = inf, MS-SSIM of small images = null) are dropped first.
MS-SSIM is compared in dB (``-10 log10(1 - MS-SSIM)``, :func:`ms_ssim_db`), as CompressAI plots it.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..errors import CodeczooError

METHODS = ("pchip", "cubic")


class BDRateError(CodeczooError):
    """The two curves cannot be compared (too few points, no overlap in quality)."""


def ms_ssim_db(values: Sequence[float | None]) -> list[float | None]:
    """MS-SSIM in [0, 1) -> dB, ``-10 log10(1 - v)`` (``None`` stays ``None``; 1 -> inf)."""
    out = []
    for v in values:
        if v is None:
            out.append(None)
        elif v >= 1.0:
            out.append(math.inf)
        else:
            out.append(-10.0 * math.log10(1.0 - v))
    return out


def _clean(rate: Sequence[float], quality: Sequence[float | None], label: str
           ) -> tuple[np.ndarray, np.ndarray]:
    if len(rate) != len(quality):
        raise BDRateError(f"{label}: {len(rate)} rates but {len(quality)} quality values")
    pairs = [(float(r), float(q)) for r, q in zip(rate, quality)
             if r is not None and q is not None and math.isfinite(float(q))
             and math.isfinite(float(r)) and float(r) > 0]
    # one rate per quality value: a plateau (same quality at several rates) keeps the lowest rate
    best: dict[float, float] = {}
    for r, q in pairs:
        best[q] = min(r, best.get(q, math.inf))
    qs = np.array(sorted(best))
    rs = np.array([best[q] for q in qs])
    return np.log(rs), qs


def _by_rate(log_rate: np.ndarray, quality: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points sorted by rate, one quality per rate (the first), for quality-over-rate curves."""
    order = np.argsort(log_rate, kind="stable")
    log_rate, quality = log_rate[order], quality[order]
    keep = np.concatenate([[True], np.diff(log_rate) > 0])
    return log_rate[keep], quality[keep]


def _integral(log_rate: np.ndarray, quality: np.ndarray, lo: float, hi: float, method: str) -> float:
    if method == "pchip":
        from scipy.interpolate import PchipInterpolator

        return float(PchipInterpolator(quality, log_rate).integrate(lo, hi))
    poly = np.polynomial.Polynomial.fit(quality, log_rate, 3)
    antiderivative = poly.integ()
    return float(antiderivative(hi) - antiderivative(lo))


def bd_rate(anchor_rate: Sequence[float], anchor_quality: Sequence[float | None],
            test_rate: Sequence[float], test_quality: Sequence[float | None],
            method: str = "pchip") -> float:
    """BD-rate of the test curve against the anchor, in percent (negative = test is better).

    Rates are bits per pixel (any positive unit works: only ratios matter); quality is PSNR in dB
    or MS-SSIM in dB. Raises :class:`BDRateError` when a curve has too few usable points or the
    curves share no quality interval.
    """
    if method not in METHODS:
        raise BDRateError(f"unknown BD-rate method {method!r} (choose from {', '.join(METHODS)})")
    need = 2 if method == "pchip" else 4
    la, qa = _clean(anchor_rate, anchor_quality, "anchor")
    lt, qt = _clean(test_rate, test_quality, "test")
    for label, q in (("anchor", qa), ("test", qt)):
        if len(q) < need:
            raise BDRateError(
                f"{label} curve has {len(q)} usable point(s); BD-rate ({method}) needs {need}")
    lo, hi = max(qa.min(), qt.min()), min(qa.max(), qt.max())
    if not hi > lo:
        raise BDRateError(
            f"the curves share no quality interval (anchor {qa.min():.3g}..{qa.max():.3g}, "
            f"test {qt.min():.3g}..{qt.max():.3g})")
    mean_diff = (_integral(lt, qt, lo, hi, method) - _integral(la, qa, lo, hi, method)) / (hi - lo)
    return float((math.exp(mean_diff) - 1.0) * 100.0)


def bd_psnr(anchor_rate: Sequence[float], anchor_quality: Sequence[float | None],
            test_rate: Sequence[float], test_quality: Sequence[float | None],
            method: str = "pchip") -> float:
    """BD-PSNR: mean quality difference (test - anchor, in the quality's unit) over the shared
    log-rate interval; positive = test is better."""
    if method not in METHODS:
        raise BDRateError(f"unknown BD-rate method {method!r} (choose from {', '.join(METHODS)})")
    need = 2 if method == "pchip" else 4
    la, qa = _clean(anchor_rate, anchor_quality, "anchor")
    lt, qt = _clean(test_rate, test_quality, "test")
    # swap roles: quality as a function of log-rate (sorted by rate, one quality per rate)
    curves = []
    for label, lr, q in (("anchor", la, qa), ("test", lt, qt)):
        lr, q = _by_rate(lr, q)
        if len(lr) < need:
            raise BDRateError(f"{label} curve has {len(lr)} usable point(s); BD-PSNR needs {need}")
        curves.append((q, lr))
    (qa, la), (qt, lt) = curves
    lo, hi = max(la.min(), lt.min()), min(la.max(), lt.max())
    if not hi > lo:
        raise BDRateError("the curves share no rate interval")
    return float((_integral(qt, lt, lo, hi, method) - _integral(qa, la, lo, hi, method)) / (hi - lo))


def quality_at_rates(rate: Sequence[float], quality: Sequence[float | None],
                     targets: Sequence[float]) -> list[float | None]:
    """A curve's quality at each target rate: piecewise cubic Hermite (pchip) interpolation of
    quality over log-rate through the measured points, as BD-PSNR integrates it.

    ``None`` where a target lies outside the measured rates (never extrapolated) or the curve has
    fewer than 2 usable points.
    """
    from scipy.interpolate import PchipInterpolator

    log_rate, q = _by_rate(*_clean(rate, quality, "curve"))
    if len(log_rate) < 2:
        return [None] * len(targets)
    curve = PchipInterpolator(log_rate, q)
    out: list[float | None] = []
    for target in targets:
        x = math.log(target) if target > 0 else -math.inf
        out.append(float(curve(x)) if log_rate[0] <= x <= log_rate[-1] else None)
    return out
