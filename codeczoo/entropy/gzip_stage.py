"""The paper's gzip stage: lossless DEFLATE coding of a quantised latent.

Sushmit et al. (2019, Sec. III) apply gzip to the encoded tensor for a further lossless gain.
gzip is the DEFLATE algorithm (RFC 1951) inside an 18-byte file wrapper (name, time stamp,
CRC); the codeczoo container already carries a CRC and every field a wrapper would, so this
stage writes the bare DEFLATE stream and saves those 18 bytes, which matter on small crops (a
32x32 crop at 1 bpp has a budget of 128 bytes).

Any codec can use it: binary codes go through :func:`pack_bits` first.
"""

from __future__ import annotations

import zlib

import numpy as np

from ..errors import BitstreamError


def pack_bits(bits: np.ndarray) -> bytes:
    """Pack a binary array (values in {0, 1} or {-1, +1}) into bytes, 8 codes a byte."""
    bits = np.asarray(bits)
    return np.packbits((bits > 0).astype(np.uint8).ravel()).tobytes()


def unpack_bits(data: bytes, count: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: the first ``count`` codes as a float32 array of {-1, +1}."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size * 8 < count:
        raise BitstreamError(f"payload holds {raw.size * 8} codes, {count} expected")
    bits = np.unpackbits(raw)[:count].astype(np.float32)
    return bits * 2.0 - 1.0


class GzipStage:
    """Lossless DEFLATE stage (the paper's gzip step) over bytes.

    Args:
        level: zlib compression level, 0-9 (9 = smallest, the default).
    """

    def __init__(self, level: int = 9):
        self.level = level

    def compress(self, data: bytes) -> bytes:
        comp = zlib.compressobj(self.level, zlib.DEFLATED, -15)
        return comp.compress(data) + comp.flush()

    def decompress(self, data: bytes, max_length: int | None = None) -> bytes:
        """Inflate ``data``; ``max_length`` bounds the output (a guard against corrupt input)."""
        try:
            dec = zlib.decompressobj(-15)
            out = dec.decompress(data, max_length or 0)
            if max_length is not None and dec.unconsumed_tail:
                raise BitstreamError("entropy-coded payload inflates beyond its declared size")
            if not dec.eof:
                raise BitstreamError("entropy-coded payload is truncated")
        except zlib.error as exc:
            raise BitstreamError(f"entropy-coded payload is corrupt ({exc})") from exc
        if max_length is not None and len(out) > max_length:
            raise BitstreamError("entropy-coded payload inflates beyond its declared size")
        return out
