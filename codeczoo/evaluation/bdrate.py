"""Bjøntegaard delta rate (BD-rate) and delta PSNR between two rate–distortion curves.

Method (G. Bjøntegaard, "Calculation of average PSNR differences between RD-curves",
ITU-T SG16 VCEG-M33, 2001; VCEG-AL22 2009 for the piecewise-cubic variant): express each curve
as log-rate as a function of quality, interpolate, integrate both over the quality interval the
two curves share, and turn the mean log-rate difference into a percentage::

    BD-rate = (exp(mean(log R_test - log R_anchor)) - 1) * 100   [%]

Negative means the test codec needs less rate than the anchor for the same quality.

The interpolation and integration are the maintained ``bjontegaard`` package's (Herglotz et al.,
FAU Erlangen-Nürnberg); this module adds what X-ray curves need around it: points with a
non-finite quality are dropped, a curve is reduced to one rate per quality, too few points or
no shared interval is a :class:`BDRateError` with the reason (reported as "n/a (...)"), and
:func:`overlap` tells how much of the two curves' span is shared, so a BD-rate over a sliver
can be flagged. Two interpolations (``method``):

* ``"pchip"`` (default): piecewise cubic Hermite interpolation, monotone and exact through every
  point; what JVET's common-test-conditions spreadsheets use today. Needs 2 points per curve.
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


def _prepared(anchor_rate, anchor_quality, test_rate, test_quality, method: str, by_rate: bool):
    """Cleaned curves as (log-rate, quality) arrays sorted along the integration variable."""
    if method not in METHODS:
        raise BDRateError(f"unknown BD-rate method {method!r} (choose from {', '.join(METHODS)})")
    need = 2 if method == "pchip" else 4
    curves = []
    for label, rate, quality in (("anchor", anchor_rate, anchor_quality),
                                 ("test", test_rate, test_quality)):
        log_rate, q = _clean(rate, quality, label)
        if by_rate:
            log_rate, q = _by_rate(log_rate, q)
        if len(q) < need:
            what = "BD-PSNR" if by_rate else f"BD-rate ({method})"
            raise BDRateError(f"{label} curve has {len(q)} usable point(s); {what} needs {need}")
        curves.append((log_rate, q))
    (la, qa), (lt, qt) = curves
    xa, xt = (la, lt) if by_rate else (qa, qt)
    if not min(xa.max(), xt.max()) > max(xa.min(), xt.min()):
        if by_rate:
            raise BDRateError("the curves share no rate interval")
        raise BDRateError(
            f"the curves share no quality interval (anchor {qa.min():.3g}..{qa.max():.3g}, "
            f"test {qt.min():.3g}..{qt.max():.3g})")
    return (la, qa), (lt, qt)


def bd_rate(anchor_rate: Sequence[float], anchor_quality: Sequence[float | None],
            test_rate: Sequence[float], test_quality: Sequence[float | None],
            method: str = "pchip") -> float:
    """BD-rate of the test curve against the anchor, in percent (negative = test is better).

    Rates are bits per pixel (any positive unit works: only ratios matter); quality is PSNR in dB
    or MS-SSIM in dB. Raises :class:`BDRateError` when a curve has too few usable points or the
    curves share no quality interval.
    """
    import bjontegaard

    (la, qa), (lt, qt) = _prepared(anchor_rate, anchor_quality, test_rate, test_quality, method,
                                   by_rate=False)
    return float(bjontegaard.bd_rate(np.exp(la), qa, np.exp(lt), qt, method=method,
                                     require_matching_points=False, min_overlap=0))


def bd_psnr(anchor_rate: Sequence[float], anchor_quality: Sequence[float | None],
            test_rate: Sequence[float], test_quality: Sequence[float | None],
            method: str = "pchip") -> float:
    """BD-PSNR: mean quality difference (test - anchor, in the quality's unit) over the shared
    log-rate interval; positive = test is better."""
    import bjontegaard

    (la, qa), (lt, qt) = _prepared(anchor_rate, anchor_quality, test_rate, test_quality, method,
                                   by_rate=True)
    return float(bjontegaard.bd_psnr(np.exp(la), qa, np.exp(lt), qt, method=method,
                                     require_matching_points=False, min_overlap=0))


def overlap(anchor_quality: Sequence[float | None], test_quality: Sequence[float | None]) -> float:
    """Shared fraction of the two curves' joint quality span (0: disjoint, 1: identical spans),
    the measure the ``bjontegaard`` package warns on below 0.75."""
    qa = [float(q) for q in anchor_quality if q is not None and math.isfinite(float(q))]
    qt = [float(q) for q in test_quality if q is not None and math.isfinite(float(q))]
    if not qa or not qt:
        return 0.0
    total = max(max(qa), max(qt)) - min(min(qa), min(qt))
    shared = min(max(qa), max(qt)) - max(min(qa), min(qt))
    return max(0.0, shared) / total if total > 0 else 1.0


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
