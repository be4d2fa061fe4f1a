"""CompressAI's rANS coder (``compressai.ans``) made safe for any input, plus raw low bits.

``RansEncoder.encode_with_indexes`` / ``RansDecoder.decode_with_indexes`` code int32 symbols
against quantized CDF tables chosen per symbol by index, with an escape ("bypass") for values
beyond a table.  Two properties of that C++ code matter for a codec that must never crash:

* the encoder's output buffer holds one 32-bit word per symbol.  Ordinary symbols cost at most
  16 bits, but escaped symbols cost 4 bits per bypass nibble more, and a stream of very few
  symbols still needs two words for the final flush.  :func:`encode` therefore appends "dummy"
  symbols (probability 65535/65536, about 2e-5 bits each) until the worst-case output provably
  fits, and records how many;
* the decoder reads without bounds checks.  A damaged stream (say, bytes changed and the
  container's CRC recomputed) would read past its end.  :func:`decode` hands it the stream
  followed by zero words: once inside the zeros the rANS state decodes the most probable symbol
  and reads at most one word per symbol, so ``symbols + 8192`` zero words bound every read.

Streams are cut into chunks of at most :data:`CHUNK` symbols, each with its own header
``u32 bytes, u32 dummies``.
"""

from __future__ import annotations

import struct

import numpy as np

from ..errors import BitstreamError

CHUNK = 1 << 20
MAX_SYMBOL = 1 << 26
_CHUNK_HEAD = struct.Struct(">II")
_BYPASS_BITS = 4
_SLACK_WORDS = 8192


def _bypass_puts(symbols: np.ndarray, max_values: np.ndarray) -> int:
    """Number of 4-bit bypass writes the escaped symbols need (CompressAI's scheme)."""
    over = symbols >= max_values
    if not over.any():
        return 0
    raw = 2 * (symbols[over] - max_values[over])
    nibbles = np.zeros(raw.shape, dtype=np.int64)
    rest = raw.copy()
    while np.any(rest):
        nibbles += rest > 0
        rest >>= _BYPASS_BITS
    return int(np.sum(nibbles + nibbles // 15 + 1))


class TableBank:
    """The model's CDF tables in the list form ``compressai.ans`` takes (built once)."""

    def __init__(self, cdfs: np.ndarray, lengths: np.ndarray):
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.cdfs = [row[:n].tolist() for row, n in zip(np.asarray(cdfs), self.lengths)]
        self.length_list = self.lengths.astype(np.int32).tolist()
        self.offsets = [0] * len(self.cdfs)
        self.max_values = self.lengths - 2
        self.dummy = len(self.cdfs) - 1


def encode(symbols: np.ndarray, indexes: np.ndarray, bank: TableBank) -> bytes:
    """Code non-negative ``symbols`` with the tables ``indexes``; chunked, framed bytes."""
    from compressai.ans import RansEncoder

    symbols = np.asarray(symbols, dtype=np.int64).ravel()
    indexes = np.asarray(indexes, dtype=np.int64).ravel()
    if symbols.size and (symbols.min() < 0 or symbols.max() >= MAX_SYMBOL):
        # CompressAI's bypass arithmetic is int32: its encoder counts nibbles with
        # ``raw >> (4 n)``, which never reaches 0 once 4 n hits 32 (raw >= 2**28): it would loop
        # forever.  The coder's symbols stay below 2**19.
        raise ValueError(f"rANS symbols must lie in [0, {MAX_SYMBOL})")
    out = []
    encoder = RansEncoder()
    for start in range(0, len(symbols), CHUNK):
        s, i = symbols[start:start + CHUNK], indexes[start:start + CHUNK]
        info_bits = 16 * len(s) + _BYPASS_BITS * _bypass_puts(s, bank.max_values[i])
        need_words = -(-info_bits * 1001 // (32 * 1000)) + 8
        dummies = max(0, need_words - len(s))
        if dummies:
            s = np.concatenate([s, np.zeros(dummies, dtype=np.int64)])
            i = np.concatenate([i, np.full(dummies, bank.dummy, dtype=np.int64)])
        data = encoder.encode_with_indexes(s.astype(np.int32).tolist(), i.astype(np.int32).tolist(),
                                           bank.cdfs, bank.length_list, bank.offsets)
        out.append(_CHUNK_HEAD.pack(len(data), dummies) + data)
    return b"".join(out)


def decode(data: bytes, pos: int, indexes: np.ndarray, bank: TableBank) -> tuple[np.ndarray, int]:
    """Inverse of :func:`encode` from ``data[pos:]``: ``(symbols int64, new pos)``."""
    from compressai.ans import RansDecoder

    indexes = np.asarray(indexes, dtype=np.int64).ravel()
    decoder = RansDecoder()
    parts = []
    for start in range(0, len(indexes), CHUNK):
        i = indexes[start:start + CHUNK]
        if pos + _CHUNK_HEAD.size > len(data):
            raise BitstreamError("residual payload truncated (rANS chunk header)")
        length, dummies = _CHUNK_HEAD.unpack_from(data, pos)
        pos += _CHUNK_HEAD.size
        if pos + length > len(data) or length % 4 or dummies > 4 * CHUNK + 64:
            raise BitstreamError("residual payload holds an invalid rANS chunk")
        if dummies:
            i = np.concatenate([i, np.full(dummies, bank.dummy, dtype=np.int64)])
        padded = data[pos:pos + length] + bytes(4 * (len(i) + _SLACK_WORDS))
        values = decoder.decode_with_indexes(padded, i.astype(np.int32).tolist(), bank.cdfs,
                                             bank.length_list, bank.offsets)
        parts.append(np.asarray(values[:len(i) - dummies], dtype=np.int64))
        pos += length
    return (np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)), pos


def zigzag(values: np.ndarray) -> np.ndarray:
    """Signed -> non-negative: 0, -1, 1, -2, 2 ... -> 0, 1, 2, 3, 4 ..."""
    values = np.asarray(values, dtype=np.int64)
    return np.where(values >= 0, 2 * values, -2 * values - 1)


def unzigzag(codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.int64)
    return np.where(codes & 1, -(codes >> 1) - 1, codes >> 1)


_RAW_HEAD = struct.Struct(">I")


def pack_low_bits(low: np.ndarray, split: np.ndarray) -> bytes:
    """The raw low bits of split symbols (``split[i]`` bits of ``low[i]``), bit plane by bit
    plane: plane ``b`` holds bit ``b`` of every symbol with ``split > b``; ``u32`` length first."""
    planes = []
    top = int(split.max()) if split.size else 0
    for b in range(top):
        sel = split > b
        planes.append(((low[sel] >> b) & 1).astype(np.uint8))
    bits = np.concatenate(planes) if planes else np.zeros(0, dtype=np.uint8)
    packed = np.packbits(bits).tobytes()
    return _RAW_HEAD.pack(len(packed)) + packed


def unpack_low_bits(data: bytes, pos: int, split: np.ndarray) -> tuple[np.ndarray, int]:
    if pos + _RAW_HEAD.size > len(data):
        raise BitstreamError("residual payload truncated (raw bits)")
    (length,) = _RAW_HEAD.unpack_from(data, pos)
    pos += _RAW_HEAD.size
    total = int(split.sum())
    if length != (total + 7) // 8 or pos + length > len(data):
        raise BitstreamError("residual payload holds the wrong number of raw bits")
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8, count=length, offset=pos))[:total]
    low = np.zeros(split.shape, dtype=np.int64)
    cursor = 0
    top = int(split.max()) if split.size else 0
    for b in range(top):
        sel = np.flatnonzero(split > b)
        low[sel] |= bits[cursor:cursor + len(sel)].astype(np.int64) << b
        cursor += len(sel)
    return low, pos + length
