"""Binary symbols through CompressAI's rANS coder, one probability bin per symbol.

The learned entropy stage (:mod:`codeczoo.entropy.learned_stage`) predicts, for every code bit,
one of :data:`BINS` probability bins (a logit quantized to steps of :data:`LOGIT_STEP`, so
encoder and decoder agree exactly; see :mod:`codeczoo.entropy.context_model`).  Each bin is a
16-bit quantized CDF over the two symbols (plus CompressAI's escape, never used by bits), coded
with ``compressai.ans``: no hand-written arithmetic coder.

A frame holds one rANS stream: ``u32 stream bytes, u32 dummies`` then the stream.  As in
:mod:`codeczoo.entropy.rans`, short streams are padded with near-free dummy symbols so the C++
encoder's output buffer (one word per symbol) always fits, and the decoder reads the stream
followed by zero words, so a damaged stream can never read past its buffer: every read is
bounded by the number of symbols the header declares.  Decoding is incremental
(:class:`FrameDecoder`): the context model needs the bits of one group before it predicts the
next group's bins.
"""

from __future__ import annotations

import struct
from functools import lru_cache

import numpy as np

from ..errors import BitstreamError
from .rans import TableBank

BINS = 64
LOGIT_STEP = 0.25          # logit width of a bin: bins cover logits [-8, 8)
PRECISION = 16
_FRAME = struct.Struct(">II")
_SLACK_WORDS = 64


def bin_probability_of_one(index: np.ndarray | int) -> np.ndarray:
    """P(bit = 1) a bin stands for: the sigmoid of the bin's centre logit."""
    centre = (np.asarray(index, dtype=np.float64) - BINS // 2 + 0.5) * LOGIT_STEP
    return 1.0 / (1.0 + np.exp(-centre))


@lru_cache(maxsize=1)
def bank() -> TableBank:
    """The :data:`BINS` binary tables and the dummy table (symbol 0 at 65535/65536), as
    CompressAI quantized CDFs ``[0, f0, f0 + f1, 2**16]`` (the last step is the escape)."""
    total = 1 << PRECISION
    rows = []
    for k in range(BINS):
        p1 = float(bin_probability_of_one(k))
        f1 = int(np.clip(round(p1 * (total - 1)), 1, total - 2))
        f0 = total - 1 - f1
        rows.append([0, f0, total - 1, total])
    rows.append([0, total - 1, total, 0])  # dummy: symbol 0, then escape (length 3)
    cdfs = np.array(rows, dtype=np.int32)
    lengths = np.array([4] * BINS + [3], dtype=np.int32)
    return TableBank(cdfs, lengths)


def bits_cost(bits: np.ndarray, bins: np.ndarray) -> float:
    """Ideal cost in bits of ``bits`` under their ``bins`` (what the rANS stream approaches)."""
    p1 = bin_probability_of_one(bins)
    p = np.where(np.asarray(bits) > 0, p1, 1.0 - p1)
    return float(-np.log2(p).sum())


def encode_frame(bits: np.ndarray, bins: np.ndarray) -> bytes:
    """One frame coding ``bits`` (0/1) with the tables ``bins``, in the given order."""
    from compressai.ans import RansEncoder

    bits = np.asarray(bits, dtype=np.int32).ravel()
    bins = np.asarray(bins, dtype=np.int32).ravel()
    if bits.shape != bins.shape:
        raise ValueError("bits and bins differ in length")
    b = bank()
    # every symbol costs at most 16 bits (no escapes), the final flush two words
    dummies = max(0, 8 - len(bits))
    if dummies:
        bits = np.concatenate([bits, np.zeros(dummies, dtype=np.int32)])
        bins = np.concatenate([bins, np.full(dummies, b.dummy, dtype=np.int32)])
    stream = RansEncoder().encode_with_indexes(bits.tolist(), bins.tolist(), b.cdfs,
                                               b.length_list, b.offsets)
    return _FRAME.pack(len(stream), dummies) + stream


class FrameDecoder:
    """Incremental decoding of one frame of ``symbols`` bits from ``data[pos:]``.

    ``read(bins)`` returns the next ``len(bins)`` bits; reading more than ``symbols`` in all is
    refused.  ``end`` is the position after the frame.
    """

    def __init__(self, data: bytes, pos: int, symbols: int):
        from compressai.ans import RansDecoder

        if pos + _FRAME.size > len(data):
            raise BitstreamError("learned entropy payload truncated (frame header)")
        length, dummies = _FRAME.unpack_from(data, pos)
        pos += _FRAME.size
        if pos + length > len(data) or length % 4 or dummies > 8:
            raise BitstreamError("learned entropy payload holds an invalid frame")
        self.end = pos + length
        self.left = symbols
        self.decoder = RansDecoder()
        # zero words after the stream: a damaged stream decodes garbage bits, never reads past
        self.decoder.set_stream(data[pos:pos + length] + bytes(4 * (symbols + dummies + _SLACK_WORDS)))

    def read(self, bins: np.ndarray) -> np.ndarray:
        bins = np.asarray(bins, dtype=np.int32).ravel()
        if len(bins) > self.left:
            raise BitstreamError("learned entropy payload: more bits read than declared")
        self.left -= len(bins)
        b = bank()
        values = self.decoder.decode_stream(bins.tolist(), b.cdfs, b.length_list, b.offsets)
        out = np.asarray(values, dtype=np.uint8)
        if out.size and out.max() > 1:
            raise BitstreamError("learned entropy payload decodes to a symbol that is not a bit")
        return out
