"""The paper's gzip stage: lossless DEFLATE coding of a quantised latent.

Sushmit et al. (2019, Sec. III) apply gzip to the encoded tensor for a further lossless gain.
gzip is the DEFLATE algorithm (RFC 1951) inside an 18-byte file wrapper (name, time stamp,
CRC); the codeczoo container already carries a CRC and every field a wrapper would, so by
default this stage writes the bare DEFLATE stream (``wrapper="raw"``) and saves those 18 bytes,
which matter on small crops (a 32x32 crop at 1 bpp has a budget of 128 bytes).
``wrapper="gzip"`` writes a real gzip member (time stamp zeroed, so output is deterministic).

Any codec can use it: binary codes go through :func:`pack_bits` first, integer latents through
:meth:`GzipStage.encode_symbols`.
"""

from __future__ import annotations

import gzip
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
    """Lossless DEFLATE stage (the paper's gzip step) over bytes or integer symbols.

    Args:
        level: zlib compression level, 0-9 (9 = smallest, the default).
        wrapper: ``"raw"`` (bare DEFLATE, default) or ``"gzip"`` (RFC 1952 member).
    """

    def __init__(self, level: int = 9, wrapper: str = "raw"):
        if wrapper not in ("raw", "gzip"):
            raise ValueError(f"wrapper must be 'raw' or 'gzip', not {wrapper!r}")
        self.level = level
        self.wrapper = wrapper

    def compress(self, data: bytes) -> bytes:
        if self.wrapper == "gzip":
            return gzip.compress(data, compresslevel=self.level, mtime=0)
        comp = zlib.compressobj(self.level, zlib.DEFLATED, -15)
        return comp.compress(data) + comp.flush()

    def decompress(self, data: bytes, max_length: int | None = None) -> bytes:
        """Inflate ``data``; ``max_length`` bounds the output (a guard against corrupt input)."""
        try:
            if self.wrapper == "gzip":
                out = gzip.decompress(data)
            else:
                dec = zlib.decompressobj(-15)
                out = dec.decompress(data, max_length or 0)
                if max_length is not None and dec.unconsumed_tail:
                    raise BitstreamError("entropy-coded payload inflates beyond its declared size")
                if not dec.eof:
                    raise BitstreamError("entropy-coded payload is truncated")
        except (zlib.error, OSError, EOFError) as exc:
            raise BitstreamError(f"entropy-coded payload is corrupt ({exc})") from exc
        if max_length is not None and len(out) > max_length:
            raise BitstreamError("entropy-coded payload inflates beyond its declared size")
        return out

    def encode_symbols(self, symbols: np.ndarray, dtype: str = "int16") -> bytes:
        """DEFLATE an integer latent (any shape; the caller records the shape)."""
        return self.compress(np.ascontiguousarray(symbols, dtype=dtype).tobytes())

    def decode_symbols(self, data: bytes, count: int, dtype: str = "int16") -> np.ndarray:
        itemsize = np.dtype(dtype).itemsize
        raw = self.decompress(data, max_length=count * itemsize)
        if len(raw) != count * itemsize:
            raise BitstreamError(f"latent holds {len(raw) // itemsize} symbols, {count} expected")
        return np.frombuffer(raw, dtype=dtype).copy()

    def encode_bits(self, bits: np.ndarray) -> bytes:
        """Pack binary codes 8 to a byte, then DEFLATE them."""
        return self.compress(pack_bits(bits))

    def decode_bits(self, data: bytes, count: int) -> np.ndarray:
        raw = self.decompress(data, max_length=(count + 7) // 8)
        if len(raw) != (count + 7) // 8:
            raise BitstreamError(f"payload holds {len(raw) * 8} codes, {count} expected")
        return unpack_bits(raw, count)
