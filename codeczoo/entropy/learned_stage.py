"""The learned entropy stage: a recurrent codec's binary codes through a context model and rANS.

Beside the paper's gzip stage (:mod:`codeczoo.entropy.gzip_stage`), this stage codes every code
bit with the probability :class:`~codeczoo.entropy.context_model.BinaryContextModel` predicts
from the bits decoded before it (Toderici et al. 2017 added such a learned binary entropy coder
over the same kind of codes).  Each tile is one rANS frame (:mod:`codeczoo.entropy.binary_coder`);
inside a tile the bits follow the decoding order: iteration by iteration, in each iteration the
checkerboard anchors then the other positions, each pass in channel groups
(:meth:`~codeczoo.entropy.context_model.BinaryContextModel.steps`).

The context model runs on the CPU in exact fixed-point float64 (identical bins on every
machine), whatever device the codec's network runs on.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .binary_coder import FrameDecoder, bin_probability_of_one, encode_frame
from .context_model import BinaryContextModel


def _signed(codes: np.ndarray) -> torch.Tensor:
    """uint8 {0, 1} codes (T, C, h, w) -> float64 +-1 of shape (T, 1, C, h, w)."""
    return torch.from_numpy(codes.astype(np.float64) * 2.0 - 1.0).unsqueeze(1)


def tile_bins(model: BinaryContextModel, codes: np.ndarray) -> np.ndarray:
    """The bin of every bit of one tile's codes (T, C, h, w) {0, 1}: int64 of the same shape."""
    steps = model.steps(codes.shape[0])
    signed = _signed(codes)
    x = torch.cat([model.context(signed, *step) for step in steps])
    bins = model.exact_bins(x).numpy()
    out = np.zeros(codes.shape, dtype=np.int64)
    for k, (t, p, g) in enumerate(steps):
        mask = model.step_mask(p, g, *codes.shape[2:])
        out[t][mask] = bins[k][mask]
    return out


def _ordered(model: BinaryContextModel, values: np.ndarray) -> np.ndarray:
    """A tile's (T, C, h, w) values in the coding order: step by step (iteration, pass, channel
    group), each step's bits channel-major."""
    h, w = values.shape[2:]
    return np.concatenate([values[t][model.step_mask(p, g, h, w)]
                           for t, p, g in model.steps(values.shape[0])])


def iteration_bits(model: BinaryContextModel, codes: np.ndarray,
                   bins: np.ndarray | None = None) -> np.ndarray:
    """Ideal cost in bits of each iteration of one tile's codes (T,): what the stage spends on
    it (the adaptive-iteration encoder allocates with it).  ``bins``: the tile's
    :func:`tile_bins`, if already computed."""
    bins = tile_bins(model, codes) if bins is None else bins[:codes.shape[0]]
    p1 = bin_probability_of_one(bins)
    cost = -np.log2(np.where(codes > 0, p1, 1.0 - p1))
    return cost.reshape(codes.shape[0], -1).sum(axis=1)


def encode_tiles(model: BinaryContextModel, codes_per_tile: Sequence[np.ndarray],
                 bins_per_tile: Sequence[np.ndarray] | None = None) -> bytes:
    """One frame per tile, in order; each tile's codes (T_k, C, h, w) {0, 1}.

    ``bins_per_tile``: each tile's :func:`tile_bins` of as many or more iterations (an encoder
    that tries several iteration counts computes them once): an iteration's bins depend only on
    what the decoder has before it, never on later iterations, so the first T_k are the ones
    coding T_k iterations."""
    frames = []
    for k, codes in enumerate(codes_per_tile):
        t_count = codes.shape[0]
        bins = tile_bins(model, codes) if bins_per_tile is None else bins_per_tile[k][:t_count]
        frames.append(encode_frame(_ordered(model, codes), _ordered(model, bins)))
    return b"".join(frames)


def decode_tiles(model: BinaryContextModel, data: bytes, pos: int,
                 shapes: Sequence[tuple[int, int, int, int]]) -> list[np.ndarray]:
    """Inverse of :func:`encode_tiles` from ``data[pos:]``: each tile's codes (T_k, C, h, w)
    float32 +-1, for ``shapes`` (T_k, C, h, w) the payload head declares.  Tiles of one shape
    share the context model's batches."""
    decoders, starts = [], []
    for shape in shapes:
        decoder = FrameDecoder(data, pos, int(np.prod(shape)))
        decoders.append(decoder)
        starts.append(pos)
        pos = decoder.end
    out: list[np.ndarray | None] = [None] * len(shapes)
    groups: dict[tuple, list[int]] = {}
    for k, shape in enumerate(shapes):
        groups.setdefault(tuple(shape), []).append(k)
    for (t_count, c, h, w), members in groups.items():
        codes = torch.zeros(t_count, len(members), c, h, w, dtype=torch.float64)
        for t, p, g in model.steps(t_count):
            mask = model.step_mask(p, g, h, w)
            bins = model.exact_bins(model.context(codes, t, p, g)).numpy()
            for j, k in enumerate(members):
                bits = decoders[k].read(bins[j][mask])
                plane = codes[t, j].numpy()
                plane[mask] = bits.astype(np.float64) * 2.0 - 1.0
        for j, k in enumerate(members):
            out[k] = codes[:, j].numpy().astype(np.float32)
    return out  # type: ignore[return-value]


