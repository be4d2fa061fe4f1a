"""Lossless entropy stages applied to a codec's quantised latent."""

from .gzip_stage import GzipStage, pack_bits, unpack_bits

__all__ = ["GzipStage", "pack_bits", "unpack_bits"]
