"""Stable rounding: integer decisions from float values that every machine reproduces.

A float network (the residual model, or a learned base decoder) may return slightly different
values on another machine, another thread count or another library build: summation order
changes the last bits.  Where such a value is *rounded to an integer that the decoder must
reproduce* (a table index, the rounded base reconstruction), a difference in the last bit could
flip the integer, break the rANS decode and with it the error bound.

The rule here: the encoder rounds ``u`` to ``n = floor(u + 1/2)`` and **flags every position
where ``u`` lies within ``margin`` of a rounding boundary** (``|u - floor(u) - 1/2| < margin``).
For flagged positions it transmits the integer it used (side information); the decoder takes
those integers from the side information and rounds its own values everywhere else.

Claim: if the decoder's value differs from the encoder's by less than ``margin`` at every
position, the decoder reproduces every integer.  Proof: at an unflagged position the encoder's
``u`` is at least ``margin`` away from every boundary ``k + 1/2``, so any ``u'`` with
``|u' - u| < margin`` lies strictly between the same two boundaries and rounds to the same ``n``;
flagged positions are copied.  The decoder needs no margin: it only applies what it is sent.
A larger difference is not silent either: the container stores CRC-32s of the base
reconstruction and of the decoded image, and a mismatch is an error.

Side information layout (one block per decision set, big-endian)::

    u32 count            flagged positions
    u32 length           bytes of the DEFLATE stream that follows
    ...                  zlib( u32 gaps between flagged flat indices (first from 0),
                               then each decision's int32 values at those positions )
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from ..errors import BitstreamError

_HEAD = struct.Struct(">II")


def round_flagged(u: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """``(floor(u + 1/2) as int64, flagged)`` where flagged marks values within ``margin`` of a
    rounding boundary (see the module docstring)."""
    u = np.asarray(u, dtype=np.float64)
    n = np.floor(u + 0.5)
    flagged = np.abs(u - np.floor(u) - 0.5) < margin
    return n.astype(np.int64), flagged


def pack_overrides(flagged: np.ndarray, *decisions: np.ndarray) -> bytes:
    """Side information: the flagged positions of flat arrays and each decision's value there."""
    positions = np.flatnonzero(flagged)
    gaps = np.diff(positions, prepend=0).astype(">u4")
    body = gaps.tobytes() + b"".join(
        np.asarray(d).ravel()[positions].astype(">i4").tobytes() for d in decisions)
    packed = zlib.compress(body, 9)
    return _HEAD.pack(len(positions), len(packed)) + packed


def unpack_overrides(data: bytes, pos: int, size: int, n_decisions: int,
                     limits: list[tuple[int, int]]) -> tuple[np.ndarray, list[np.ndarray], int]:
    """Inverse of :func:`pack_overrides` from ``data[pos:]``: ``(positions, values, new pos)``.

    ``size`` is the number of positions the decisions cover; ``limits`` each decision's valid
    ``(low, high)``.  Anything inconsistent is a :class:`BitstreamError`.
    """
    if pos + _HEAD.size > len(data):
        raise BitstreamError("residual payload truncated (side information)")
    count, length = _HEAD.unpack_from(data, pos)
    pos += _HEAD.size
    if count > size or pos + length > len(data):
        raise BitstreamError("residual side information is inconsistent")
    expected = 4 * count * (1 + n_decisions)
    try:
        decoder = zlib.decompressobj()
        body = decoder.decompress(data[pos:pos + length], expected + 1)
    except zlib.error as exc:
        raise BitstreamError(f"residual side information is damaged ({exc})") from None
    if len(body) != expected:
        raise BitstreamError("residual side information has the wrong size")
    gaps = np.frombuffer(body[:4 * count], dtype=">u4").astype(np.int64)
    positions = np.cumsum(gaps)
    if count and (positions[-1] >= size or (count > 1 and np.any(gaps[1:] == 0))):
        raise BitstreamError("residual side information names invalid positions")
    values = []
    for i, (low, high) in enumerate(limits):
        start = 4 * count * (1 + i)
        v = np.frombuffer(body[start:start + 4 * count], dtype=">i4").astype(np.int64)
        if count and (v.min() < low or v.max() > high):
            raise BitstreamError("residual side information holds out-of-range values")
        values.append(v)
    return positions, values, pos + length
