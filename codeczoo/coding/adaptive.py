"""Spatially adaptive iterations: how many iterations each tile of an image gets.

Johnston et al. 2018 ("Improved Lossy Image Compression with Priming and Spatially Adaptive Bit
Rates for Recurrent Networks", CVPR) stop coding a region of a recurrent codec once it meets a
quality target.  Here the regions are the payload's tiles, which the network codes
independently: a tile coded with ``n`` iterations decodes exactly as the first ``n`` iterations
of the same network (the iterations are progressive), so the decoder needs only the per-tile
iteration map the payload carries, and no region's reconstruction depends on another's count.

The user states a PSNR target for the whole image.  The encoder codes every tile at
``max_iterations``, measures each tile's squared error after every iteration, and spends bits
where they buy the most error: starting from one iteration everywhere, it repeatedly gives the
tile with the steepest error decrease per bit its next useful iterations (the lower convex hull
of that tile's error-rate points), until the image's squared error meets the target or every
tile is at ``max_iterations`` (then :class:`UnreachableTargetWarning` says what the image
reaches).  Flat background, collimator borders and burned-in labels stop
early; lungs and bone edges get the iterations.
"""

from __future__ import annotations

import heapq
from typing import Sequence

import numpy as np

from ..intensity import ImageSpec


class UnreachableTargetWarning(UserWarning):
    """The image cannot reach the PSNR target even at ``max_iterations`` in every tile: it is
    coded at ``max_iterations`` everywhere and the warning says what it reaches."""


def psnr_of(squared_error: float, spec: ImageSpec) -> float:
    """PSNR (dB) of an image of ``spec`` with this sum of squared errors."""
    peak = float((1 << spec.bits_stored) - 1)
    mse = squared_error / (spec.height * spec.width)
    return float("inf") if mse == 0 else 10.0 * np.log10(peak ** 2 / mse)


def target_squared_error(psnr_db: float, spec: ImageSpec) -> float:
    """Sum of squared errors (stored integers) an image may have to reach ``psnr_db``, with
    PSNR's peak the image's full range ``2**bits_stored - 1``."""
    peak = float((1 << spec.bits_stored) - 1)
    return spec.height * spec.width * peak ** 2 / 10.0 ** (psnr_db / 10.0)


def _best_step(errors: np.ndarray, cumulative: np.ndarray, count: int):
    """Steepest (error decrease per bit, new count) from ``count`` iterations, or None."""
    best = None
    for nxt in range(count + 1, len(errors) + 1):
        gain = errors[count - 1] - errors[nxt - 1]
        extra = cumulative[nxt] - cumulative[count]
        if gain > 0 and extra > 0 and (best is None or gain / extra > best[0]):
            best = (gain / extra, nxt)
    return best


def choose_iterations(errors: Sequence[np.ndarray], costs: Sequence[np.ndarray],
                      target: float) -> list[int]:
    """Iterations per tile (each in 1..T) meeting ``target`` total squared error at least cost.

    ``errors[k][t]``: tile ``k``'s squared error after ``t + 1`` iterations; ``costs[k][t]``:
    bits iteration ``t`` of tile ``k`` costs.
    """
    errors = [np.asarray(e, dtype=np.float64) for e in errors]
    cumulative = [np.concatenate([[0.0], np.cumsum(np.asarray(c, dtype=np.float64))]) for c in costs]
    counts = [1] * len(errors)
    total = float(sum(e[0] for e in errors))
    heap = []
    for k, e in enumerate(errors):
        step = _best_step(e, cumulative[k], 1)
        if step is not None:
            heap.append((-step[0], k, step[1]))
    heapq.heapify(heap)
    while total > target and heap:
        _, k, nxt = heapq.heappop(heap)
        total -= errors[k][counts[k] - 1] - errors[k][nxt - 1]
        counts[k] = nxt
        step = _best_step(errors[k], cumulative[k], nxt)
        if step is not None:
            heapq.heappush(heap, (-step[0], k, step[1]))
    return counts
