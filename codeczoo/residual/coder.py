"""Coding the residual of an image against a base reconstruction with a bound ``K``.

:func:`encode_residual` and :func:`decode_residual` are exact mirrors.  Per pass (see
:mod:`codeczoo.residual.model` for the order), for every pixel of the pass:

1. the network, run on the base reconstruction and on the residuals decoded so far, predicts
   ``a`` (mean in units of the scale) and ``log sigma``;
2. stable rounding (:mod:`codeczoo.residual.stable`) turns them into the indices
   ``o = round(8 a)`` and ``j = round(4 log2(sigma / D) + 20)``; flagged positions travel as
   side information;
3. integer arithmetic (:func:`codeczoo.residual.tables.centre_and_table`) turns ``(o, j, D)``
   into the centre ``c = c0 + m``, the CDF table and the number ``n`` of raw low bits;
4. the encoder quantizes ``d = x - c`` to ``q = sign(d) floor((|d| + K) / D)``, ``D = 2K + 1``,
   so ``|x - (c + qD)| <= K``; ``q`` is coded with CompressAI's rANS (high part, zigzag order)
   and ``n`` raw bits (low part);
5. both sides reconstruct ``x_rec = c + qD``, clamped into ``[0, 2**bits - 1]``.  A value outside
   ``[-K, 2**bits - 1 + K]`` cannot come from the encoder (its ``x`` is in range and within
   ``K``), so the decoder refuses it instead of clipping it; clamping the range ``K`` beyond the
   edges is part of the quantizer and keeps every pixel within ``K`` (``x`` lies inside).

Every integer the decoder computes (centre, table, split, reconstruction) is a function of the
decoded symbols, the stably rounded indices and the base reconstruction only.

With ``levels = 2`` the phase (0, 0) (every second row and column) is coded first, as a
half-size image, by the same passes (recursively), then passes 1-3 of the full image follow.
Payload: the passes in coding order, each: side information (flagged ``o, j``), the rANS
chunks, the raw low bits.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import BitstreamError
from . import stable, tables
from ..entropy import rans
from .model import (PASS_ORDER, PHASES, ResidualModel, known_mask, log_step_feature,
                    quantize_residual)

#: half-resolution rows per network call (bounds memory; identical on encoder and decoder)
STRIP_ROWS = 128
#: default margin of the stable rounding of table indices (index units; see docs/bitstream.md)
MARGIN = 2.0 ** -14


class _Grid:
    """The image's four 2x2 phases at half resolution, and which positions are real pixels."""

    def __init__(self, height: int, width: int):
        self.height, self.width = height, width
        self.h, self.w = (height + 1) // 2, (width + 1) // 2
        inside = np.zeros((2 * self.h, 2 * self.w), dtype=bool)
        inside[:height, :width] = True
        self.inside = self.split(inside)

    def split(self, image: np.ndarray) -> np.ndarray:
        """(2h, 2w) -> (4, h, w), phase = 2 * row parity + column parity."""
        return image.reshape(self.h, 2, self.w, 2).transpose(1, 3, 0, 2).reshape(PHASES, self.h, self.w)

    def pad(self, image: np.ndarray) -> np.ndarray:
        return np.pad(image, ((0, 2 * self.h - self.height), (0, 2 * self.w - self.width)), mode="edge")

    def merge(self, phases: np.ndarray) -> np.ndarray:
        full = phases.reshape(2, 2, self.h, self.w).transpose(2, 0, 3, 1).reshape(2 * self.h, 2 * self.w)
        return full[:self.height, :self.width]


class _Predictor:
    """Runs the network in horizontal strips (with halo rows) on one image."""

    def __init__(self, model: ResidualModel, c0_phases: np.ndarray, bits: int, step: int,
                 level: int):
        self.model = model
        self.level = torch.tensor([float(level)])
        self.scale = float((1 << bits) - 1)
        self.base = torch.from_numpy(c0_phases.astype(np.float32) / np.float32(self.scale))[None]
        self.log_step = torch.tensor([log_step_feature(step, bits)], dtype=torch.float32)
        self.log_norm = math.log(self.scale) - math.log(step)

    @torch.no_grad()
    def predict(self, context: np.ndarray, pass_index: int, phase: int) -> tuple[np.ndarray, np.ndarray]:
        """``(a, log_sigma)`` of ``phase`` over the half-resolution grid (float32 arrays)."""
        ctx = torch.from_numpy(context)[None]
        mask = torch.tensor([known_mask(pass_index)], dtype=torch.float32)
        _, _, h, w = self.base.shape
        halo = self.model.halo
        a_out = np.empty((h, w), dtype=np.float32)
        s_out = np.empty((h, w), dtype=np.float32)
        for top in range(0, h, STRIP_ROWS):
            bottom = min(h, top + STRIP_ROWS)
            lo, hi = max(0, top - halo), min(h, bottom + halo)
            planes, conditions = self.model.features(self.base[..., lo:hi, :], ctx[..., lo:hi, :],
                                                     mask, self.log_step, self.level)
            # channels-last lets oneDNN run these thin convolutions 1.5-3x faster on a CPU
            planes = planes.contiguous(memory_format=torch.channels_last)
            a, log_sigma = self.model(planes, conditions)
            a_out[top:bottom] = a[0, phase, top - lo:bottom - lo].numpy()
            s_out[top:bottom] = log_sigma[0, phase, top - lo:bottom - lo].numpy()
        return a_out, s_out

    def index_values(self, a: np.ndarray, log_sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The floats stable rounding turns into ``o`` and ``j`` (index units)."""
        u_o = tables.MEAN_STEPS * np.clip(a.astype(np.float64), -tables.MEAN_LIMIT, tables.MEAN_LIMIT)
        level = (log_sigma.astype(np.float64) + self.log_norm) / math.log(2.0)
        u_j = np.clip((level - tables.LOG2_SCALE_MIN) * tables.LEVELS_PER_OCTAVE,
                      0, tables.SCALE_LEVELS - 1)
        return u_o, u_j


def _split_symbols(q: np.ndarray, split: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    half = np.where(split > 0, np.left_shift(1, np.maximum(split - 1, 0)), 0)
    high = (q + half) >> split
    return high, q + half - (high << split)


def _join_symbols(high: np.ndarray, low: np.ndarray, split: np.ndarray) -> np.ndarray:
    half = np.where(split > 0, np.left_shift(1, np.maximum(split - 1, 0)), 0)
    return (high << split) + low - half


LEVELS = 2


def encode_residual(model: ResidualModel, x: np.ndarray, c0: np.ndarray, max_error: int,
                    bits: int, bank: rans.TableBank, margin: float = MARGIN, levels: int = LEVELS,
                    _level: int = 0) -> tuple[bytes, np.ndarray, dict]:
    """Code ``x`` against ``c0`` (unsigned ints, same shape) with ``|x - x_rec| <= max_error``.

    Returns ``(payload, x_rec, stats)``; ``stats`` counts flagged positions.
    """
    step = 2 * max_error + 1
    top = (1 << bits) - 1
    grid = _Grid(*x.shape)
    xs = grid.split(grid.pad(x.astype(np.int64)))
    c0s = grid.split(grid.pad(c0.astype(np.int64)))
    rec = c0s.copy()
    parts, stats = [], {"flagged": 0}
    first = 0
    if _level + 1 < levels and min(x.shape) >= 4:
        sub, rec[0], sub_stats = encode_residual(model, xs[0], c0s[0], max_error, bits, bank,
                                                 margin, levels, _level + 1)
        parts.append(sub)
        stats["flagged"] += sub_stats["flagged"]
        first = 1
    predictor = _Predictor(model, c0s, bits, step, _level)
    context = ((rec - c0s) / top).astype(np.float32)
    for p in range(first, PHASES):
        phase = PASS_ORDER[p]
        sel = grid.inside[phase]
        a, log_sigma = predictor.predict(context, p, phase)
        u_o, u_j = predictor.index_values(a[sel], log_sigma[sel])
        o, flag_o = stable.round_flagged(u_o, margin)
        j, flag_j = stable.round_flagged(u_j, margin)
        flagged = flag_o | flag_j
        stats["flagged"] += int(flagged.sum())
        m, table, split = tables.centre_and_table(o, j, step)
        centre = c0s[phase][sel] + m
        q = quantize_residual(xs[phase][sel] - centre, max_error)
        x_rec = np.clip(centre + q * step, 0, top)
        high, low = _split_symbols(q, split)
        parts += [stable.pack_overrides(flagged, o, j),
                  rans.encode(rans.zigzag(high), table, bank),
                  rans.pack_low_bits(low, split)]
        rec[phase][sel] = x_rec
        context[phase] = ((rec[phase] - c0s[phase]) / top).astype(np.float32)
    return b"".join(parts), grid.merge(rec), stats


def decode_residual(model: ResidualModel, data: bytes, pos: int, c0: np.ndarray, max_error: int,
                    bits: int, bank: rans.TableBank, levels: int = LEVELS, _level: int = 0
                    ) -> tuple[np.ndarray, int]:
    """Inverse of :func:`encode_residual` from ``data[pos:]``: ``(x_rec, new pos)``."""
    step = 2 * max_error + 1
    top = (1 << bits) - 1
    grid = _Grid(*c0.shape)
    c0s = grid.split(grid.pad(c0.astype(np.int64)))
    rec = c0s.copy()
    first = 0
    if _level + 1 < levels and min(c0.shape) >= 4:
        rec[0], pos = decode_residual(model, data, pos, c0s[0], max_error, bits, bank, levels,
                                      _level + 1)
        first = 1
    predictor = _Predictor(model, c0s, bits, step, _level)
    context = ((rec - c0s) / top).astype(np.float32)
    limits = [(-tables.MEAN_INDEX_MAX, tables.MEAN_INDEX_MAX), (0, tables.SCALE_LEVELS - 1)]
    for p in range(first, PHASES):
        phase = PASS_ORDER[p]
        sel = grid.inside[phase]
        n = int(sel.sum())
        positions, (o_side, j_side), pos = stable.unpack_overrides(data, pos, n, 2, limits)
        a, log_sigma = predictor.predict(context, p, phase)
        u_o, u_j = predictor.index_values(a[sel], log_sigma[sel])
        o, _ = stable.round_flagged(u_o, 0.0)
        j, _ = stable.round_flagged(u_j, 0.0)
        o[positions], j[positions] = o_side, j_side
        m, table, split = tables.centre_and_table(o, j, step)
        codes, pos = rans.decode(data, pos, table, bank)
        low, pos = rans.unpack_low_bits(data, pos, split)
        q = _join_symbols(rans.unzigzag(codes), low, split)
        centre = c0s[phase][sel] + m
        x_rec = centre + q * step
        if x_rec.size and (x_rec.min() < -max_error or x_rec.max() > top + max_error):
            raise BitstreamError(
                f"residual decodes to values outside the {bits}-bit range "
                f"({int(x_rec.min())}..{int(x_rec.max())}, bound {max_error}): damaged payload")
        rec[phase][sel] = np.clip(x_rec, 0, top)
        context[phase] = ((rec[phase] - c0s[phase]) / top).astype(np.float32)
    return grid.merge(rec), pos
