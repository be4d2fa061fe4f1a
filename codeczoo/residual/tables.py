"""The bank of quantized CDF tables, and the integer arithmetic that picks a table per pixel.

One model, every bound ``K`` (Bai et al., CVPR 2021, arXiv:2103.17015; TPAMI 2024,
arXiv:2209.04847): the network predicts a logistic distribution of the **unquantized** integer
residual, location ``mu`` and scale ``sigma`` in integer units.  Quantizing the residual with step
``D = 2K + 1`` around an integer centre ``c`` gives symbols ``q`` whose probability is the
unquantized model's CDF summed over each bin ``[qD - K - 1/2, qD + K + 1/2]``::

    P(q) = F((q + 1/2 - f) / s) - F((q - 1/2 - f) / s),   s = sigma / D,  f = (mu - c) / D

so the distribution of ``q`` depends only on the **D-normalized** scale ``s`` and offset ``f``,
for every ``K`` and every bit depth.  One fixed bank of tables indexed by quantized ``(s, f)``
therefore codes every bound, the way CompressAI's ``GaussianConditional`` codes every latent
from one scale table.

Scale levels ``s_j = 2**(j/4 - 5)``, ``j = 0 .. 84`` (1/32 to 65536).  Levels up to 64 have
tables; for a larger ``s`` the symbol is split into a coded high part (``q >> n``, rounded,
whose scale ``s / 2**n`` lies in (32, 64]) and ``n`` raw low bits, which keeps tables short and
the rANS decoder's linear CDF search cheap.  Offsets ``f`` matter only where ``s`` is small
(``s < 2``): there each level has 9 tables for ``round(8 f) = -4 .. 4``.

Symbols are stored zigzag-ordered (0, -1, 1, -2, 2 ...), most probable first, so the decoder's
linear search stops early; a value beyond a table's end is coded by CompressAI's escape
("bypass") mechanism, so any integer codes.

**Everything that turns a table choice into numbers is integer arithmetic** (:func:`centre_and_table`):
the scales are fixed-point integers built from four hard-coded constants, never from ``exp``, so
two machines that agree on the indices ``(o, j)`` agree on the centre, the table and the split.
The CDF tables themselves are built once (:func:`build_bank`) and stored as int32 buffers in the
model's weights, so the decoder uses the encoder's very integers (covered by the weights hash).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PRECISION = 16                  # CompressAI's rANS probability precision (bits)
LOG2_SCALE_MIN = -5             # s_0 = 1/32
LEVELS_PER_OCTAVE = 4
SCALE_LEVELS = 85               # s up to 2**16
TABLE_LEVELS = 45               # levels 0..44 (s <= 64) have tables
OFFSET_LEVELS = 24              # levels below s = 2 get offset tables
OFFSETS = 4                     # round(8 f) in -4..4
MEAN_STEPS = 8                  # the mean is quantized to 1/8 of the predicted scale
MEAN_LIMIT = 32                 # |mu| <= 32 sigma
MEAN_INDEX_MAX = MEAN_STEPS * MEAN_LIMIT
TAIL_SIGMAS = 12                # tables cover +-12 s; the rest escapes
#: 2**(r/4) * 2**16 for r = 0..3, rounded: the fixed-point scales are built from these only.
_QUARTER_OCTAVES = (65536, 77936, 92682, 110218)
_FIXED = 16                     # fixed-point fraction bits of the scales


def scale_fixed(levels: np.ndarray) -> np.ndarray:
    """Integer ``round(s_j * 2**16)`` of scale levels ``j`` (exact, no floating point)."""
    levels = np.asarray(levels, dtype=np.int64)
    octave, quarter = np.divmod(levels, LEVELS_PER_OCTAVE)
    base = np.asarray(_QUARTER_OCTAVES, dtype=np.int64)[quarter]
    shift = octave + LOG2_SCALE_MIN          # s_j * 2**16 = base * 2**(shift) (shift may be < 0)
    return np.where(shift >= 0, base << np.maximum(shift, 0), base >> np.maximum(-shift, 0))


def scale_value(level: int) -> float:
    return float(scale_fixed(np.array([level]))[0]) / (1 << _FIXED)


@dataclass(frozen=True)
class TableLayout:
    """Which table serves scale level ``j`` and offset index ``g`` (``table_id[j, g + 4]``)."""

    table_id: np.ndarray        # (TABLE_LEVELS, 2 * OFFSETS + 1) int64
    count: int                  # tables in the bank, plus one "dummy" table at index ``count``

    @property
    def dummy(self) -> int:
        return self.count


def table_layout() -> TableLayout:
    ids = np.empty((TABLE_LEVELS, 2 * OFFSETS + 1), dtype=np.int64)
    n = 0
    for level in range(TABLE_LEVELS):
        if level < OFFSET_LEVELS:
            ids[level] = np.arange(n, n + 2 * OFFSETS + 1)
            n += 2 * OFFSETS + 1
        else:
            ids[level] = n
            n += 1
    return TableLayout(ids, n)


LAYOUT = table_layout()


def _logistic_cdf(t: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * t))


def table_pmf(scale: float, offset: float) -> np.ndarray:
    """Zigzag-ordered bin probabilities of a logistic(offset, scale) over unit bins."""
    half = int(np.ceil(TAIL_SIGMAS * scale)) + 1
    v = np.arange(-half, half + 1, dtype=np.float64)
    pmf_v = _logistic_cdf((v + 0.5 - offset) / scale) - _logistic_cdf((v - 0.5 - offset) / scale)
    zig = np.where(v >= 0, 2 * v, -2 * v - 1).astype(np.int64)
    pmf = np.empty_like(pmf_v)
    pmf[zig] = pmf_v
    return pmf


def build_bank() -> tuple[np.ndarray, np.ndarray]:
    """All tables as CompressAI quantized CDFs: ``(cdfs (T+1, L) int32, lengths (T+1,) int32)``.

    Row ``T`` is the dummy table (one symbol of probability 65535/65536 and the escape) used to
    pad short rANS streams (see :mod:`codeczoo.entropy.rans`).  Rows are zero-padded to the
    longest table; ``lengths`` is CompressAI's ``cdf_length`` (symbols + escape + 1).
    """
    from compressai._CXX import pmf_to_quantized_cdf

    cdfs: list[list[int]] = []
    for level in range(TABLE_LEVELS):
        scale = scale_value(level)
        offsets = range(-OFFSETS, OFFSETS + 1) if level < OFFSET_LEVELS else (0,)
        for g in offsets:
            pmf = table_pmf(scale, g / (2 * OFFSETS))
            tail = max(0.0, 1.0 - float(pmf.sum()))
            cdfs.append(pmf_to_quantized_cdf(pmf.tolist() + [tail], PRECISION))
    cdfs.append([0, (1 << PRECISION) - 1, 1 << PRECISION])  # dummy: symbol 0, then escape
    assert len(cdfs) == LAYOUT.count + 1
    width = max(len(c) for c in cdfs)
    bank = np.zeros((len(cdfs), width), dtype=np.int32)
    for i, cdf in enumerate(cdfs):
        bank[i, :len(cdf)] = cdf
    return bank, np.array([len(c) for c in cdfs], dtype=np.int32)


def centre_and_table(o: np.ndarray, j: np.ndarray, step: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer centre shift ``m``, table index and split bits ``n`` from the indices ``(o, j)``.

    ``o``: mean index, ``mu = (o / 8) * sigma`` with ``sigma = s_j * step`` (integer units);
    ``j``: scale level of ``s = sigma / step``.  ``m = round(mu)`` (half up) is added to the
    base reconstruction to centre the quantizer; the remaining offset ``f = (mu - m) / step``
    picks one of the level's offset tables.  Pure int64 arithmetic, identical on every machine.
    """
    o = np.asarray(o, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    step = np.int64(step)
    denom = np.int64(MEAN_STEPS << _FIXED)
    numer = o * scale_fixed(j) * step                  # mu * denom, |.| < 2**8 * 2**32 * 2**17
    m = (2 * numer + denom) // (2 * denom)
    rem = numer - m * denom                           # in [-denom/2, denom/2)
    g = (4 * OFFSETS * rem + denom * step) // (2 * denom * step)   # round(2*OFFSETS * f)
    g = np.clip(g, -OFFSETS, OFFSETS)
    split = np.where(j < TABLE_LEVELS, 0, (j - TABLE_LEVELS + LEVELS_PER_OCTAVE) // LEVELS_PER_OCTAVE)
    level = j - LEVELS_PER_OCTAVE * split
    g = np.where(level < OFFSET_LEVELS, g, 0)
    table = LAYOUT.table_id[level, g + OFFSETS]
    return m, table, split
