"""Payload format of progressive recurrent binary codecs (Toderici et al. 2017 iterations).

The byte layer of :class:`codeczoo.models.base.RecurrentBinaryCodec` delegates here: integer
images of any size are mapped to [0, 1] (:func:`codeczoo.intensity.to_unit`), replicate-padded
to a multiple of the network's ``downsampling`` and cut into independent square tiles of
``tile_size`` pixels (:mod:`codeczoo.coding.tiles`; edge tiles smaller) that the network codes
``tile_batch`` at a time, so peak memory is bounded by the tile size, not the image size.
Payload layout (big-endian)::

    offset size  field
    0      1     layout, two flags:
                   bit 0: 0 = one DEFLATE stream over all tiles' packed codes,
                          1 = one DEFLATE stream per tile, each preceded by its u32 length;
                   bit 1: code order inside a tile, 0 = planar (iteration, channel, row, column),
                          1 = position-major (iteration, row, column, channel)
    1      1     iterations T (equals the container's quality)
    2      2     tile size in pixels
    4      2     tile rows
    6      2     tile columns
    8      ...   codes

Each tile's codes are packed 8 to a byte in the layout's order (:func:`pack_codes`,
byte-aligned per tile); tiles follow in raster order.  The encoder writes whichever of the four
layouts is smallest.  Position-major order usually wins: it puts a latent position's
``code_channels`` bits in whole bytes, so DEFLATE finds the positions that repeat (flat
background, collimator borders); on the val chest X-rays it saves 16-18 % (Sushmit) and
2.5-7.4 % (Toderici-small) of the bytes planar order needs (``benchmarks/code_order.py``).  One
stream usually beats per-tile streams, the format a streaming decoder would read.  Files written
before position-major order existed (codec version 1: layouts 0 and 1) decode unchanged.  The
padded size comes from the container header (height + pad_bottom, width + pad_right).
"""

from __future__ import annotations

import os
import struct
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, Sequence

import numpy as np
import torch

from .. import intensity
from ..bitstream import Header
from ..entropy import GzipStage, pack_bits, unpack_bits
from ..errors import BitstreamError
from ..intensity import ImageSpec
from .tiles import grid_shape, pad_to_multiple, same_shape_batches, tile_grid

_HEAD = struct.Struct(">BBHHH")
_LENGTH = struct.Struct(">I")
LAYOUT_SINGLE, LAYOUT_PER_TILE = 0, 1   # layout bit 0: one DEFLATE stream, or one per tile
POSITION_MAJOR = 2                      # layout bit 1: code order (iteration, row, column, channel)
LAYOUTS = (LAYOUT_SINGLE | POSITION_MAJOR, LAYOUT_PER_TILE | POSITION_MAJOR,
           LAYOUT_SINGLE, LAYOUT_PER_TILE)  # the encoder's candidates, in order of preference
GZIP = GzipStage()
_POOL: ThreadPoolExecutor | None = None


def worker_pool() -> ThreadPoolExecutor:
    """The threads that pack, DEFLATE, inflate and unpack codes beside the network
    (``CODECZOO_CODING_THREADS``, default: the CPU count, at most 8)."""
    global _POOL
    if _POOL is None:
        workers = int(os.environ.get("CODECZOO_CODING_THREADS") or min(8, os.cpu_count() or 1))
        _POOL = ThreadPoolExecutor(max_workers=max(1, workers),
                                   thread_name_prefix="codeczoo-coding")
    return _POOL

#: largest tile edge a decoder accepts beyond its own ``tile_size``: a decoder's memory grows
#: with the area of the tiles it decodes, so a payload may not choose it freely.
MAX_DECODE_TILE = 1024
#: DEFLATE's largest expansion (zlib: 1032:1, a 258-byte match per 2 bits).
DEFLATE_MAX_RATIO = 1032


def check_declared_size(header: Header, tile: int, downsampling: int, own_tile: int) -> None:
    """Decompression-bomb checks of a recurrent payload, before anything is inflated or decoded.

    The padding must be exactly what the encoder adds (to the next multiple of
    ``downsampling``), and a tile may not exceed ``max(own_tile, MAX_DECODE_TILE)`` pixels a side
    within the padded image (decode a payload with larger tiles with a codec built with
    ``tile_size`` at least that large). The image size itself is bounded by the pixel limit
    (:mod:`codeczoo.limits`) before this runs.
    """
    spec = header.spec
    pads = ((-spec.height) % downsampling, (-spec.width) % downsampling)
    if (header.pad_bottom, header.pad_right) != pads:
        raise BitstreamError(
            f"header records padding {header.pad_bottom}x{header.pad_right}, this codec pads a "
            f"{spec.height}x{spec.width} image by {pads[0]}x{pads[1]}")
    largest = max(own_tile, MAX_DECODE_TILE)
    edge = max(min(tile, spec.height + pads[0]), min(tile, spec.width + pads[1]))
    if edge > largest:
        raise BitstreamError(
            f"payload tiles of {tile} px exceed this decoder's {largest} px: decode it with a "
            f"codec loaded with tile_size={tile}")


def check_code_bytes(expected: int, available: int) -> None:
    """Refuse a payload of ``available`` bytes that DEFLATE cannot inflate to ``expected``."""
    if expected > DEFLATE_MAX_RATIO * available + DEFLATE_MAX_RATIO:
        raise BitstreamError(
            f"payload of {available} bytes cannot hold the {expected} code bytes its size declares")


class RecurrentNetwork(Protocol):
    """What this format needs of a network (:class:`~codeczoo.models.base.RecurrentBinaryCodec`)."""

    downsampling: int
    code_channels: int
    max_iterations: int
    tile_size: int
    tile_batch: int
    training: bool

    def encode_codes(self, x: torch.Tensor, iterations: int) -> torch.Tensor: ...

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor: ...

    def train(self, mode: bool = True): ...

    def parameters(self): ...


def pack_codes(codes: np.ndarray, position_major: bool = True) -> bytes:
    """Pack binary codes (T, C, h, w) 8 to a byte, in planar or position-major order."""
    codes = np.asarray(codes)
    if codes.ndim != 4:
        raise ValueError(f"expected codes of shape (T, C, h, w), got {codes.shape}")
    return pack_bits(codes.transpose(0, 2, 3, 1) if position_major else codes)


def unpack_codes(data: bytes, shape: tuple[int, int, int, int], position_major: bool = True
                 ) -> np.ndarray:
    """Inverse of :func:`pack_codes`: float32 codes of ``shape`` (T, C, h, w) in {-1, +1}."""
    t, c, h, w = shape
    bits = unpack_bits(data, t * c * h * w)
    if position_major:
        return np.ascontiguousarray(bits.reshape(t, h, w, c).transpose(0, 3, 1, 2))
    return bits.reshape(t, c, h, w)


def _device(model: RecurrentNetwork) -> torch.device:
    return next(model.parameters()).device


class _EvalMode:
    """Run a network in eval mode without grad, restoring its previous mode afterwards."""

    def __init__(self, model: RecurrentNetwork):
        self.model = model

    def __enter__(self):
        self.was_training = self.model.training
        self.model.train(False)
        self.no_grad = torch.no_grad()
        self.no_grad.__enter__()

    def __exit__(self, *exc):
        self.no_grad.__exit__(*exc)
        self.model.train(self.was_training)


def _unit_tile(prepared, tile) -> torch.Tensor:
    padded, _, _, spec = prepared
    top, left, h, w = tile
    return intensity.to_unit(padded[top:top + h, left:left + w], spec.bits_stored)


def _encode_tiles(model: RecurrentNetwork, items: Sequence[tuple[np.ndarray, ImageSpec]],
                  quality: int, batch_tiles: int, on_image=None):
    """Codes of every tile of every image, uint8 (T, C, h, w) in {0, 1}; consecutive
    same-shaped tiles (across images) coded ``batch_tiles`` at a time. ``on_image(k, codes,
    grid, pads)`` is called as soon as image ``k``'s last tile is coded."""
    prepared = []
    jobs: list[tuple[int, int, tuple[int, int, int, int]]] = []
    for k, (values, spec) in enumerate(items):
        padded, pads = pad_to_multiple(values, model.downsampling)
        tiles = tile_grid(*padded.shape, model.tile_size)
        prepared.append((padded, pads, grid_shape(*padded.shape, model.tile_size), spec))
        jobs += [(k, i, tile) for i, tile in enumerate(tiles)]
    codes: list[list[np.ndarray]] = [[np.empty(0)] * sum(1 for j in jobs if j[0] == k)
                                     for k in range(len(items))]
    left = [len(c) for c in codes]
    device = _device(model)
    with _EvalMode(model):
        for run in same_shape_batches([tile for _, _, tile in jobs], batch_tiles):
            x = torch.cat([_unit_tile(prepared[jobs[r][0]], jobs[r][2]) for r in run]).to(device)
            bits = (model.encode_codes(x, quality) > 0).to(torch.uint8).cpu().numpy()
            for j, r in enumerate(run):
                k, i, _ = jobs[r]
                codes[k][i] = bits[:, j]
                left[k] -= 1
                if left[k] == 0 and on_image is not None:
                    on_image(k, codes[k], prepared[k][2], prepared[k][1])
    return codes, [p[2] for p in prepared], [p[1] for p in prepared]


def tile_codes(model: RecurrentNetwork, values: np.ndarray, spec: ImageSpec, quality: int
               ) -> tuple[list[np.ndarray], tuple[int, int], tuple[int, int]]:
    """Each tile's binary codes, uint8 (T, C, h, w) in {0, 1}, in raster order; the tile grid
    (rows, cols); the padding (bottom, right).  The codes of the first ``t`` iterations do not
    depend on ``quality`` (the iterations are progressive)."""
    codes, grids, pads = _encode_tiles(model, [(values, spec)], quality, model.tile_batch)
    return codes[0], grids[0], pads[0]


def pack_payload(codes_per_tile: list[np.ndarray], iterations: int, tile: int, rows: int,
                 cols: int, layout: int | None = None, parallel: bool = True) -> bytes:
    """Payload from each tile's codes (T, C, h, w); ``layout=None`` writes the smallest of
    :data:`LAYOUTS` (the first of equal size), the candidates compressed in parallel threads
    unless ``parallel`` is false."""
    def make(kind: int) -> bytes:
        head = _HEAD.pack(kind, iterations, tile, rows, cols)
        packed = [pack_codes(c, position_major=bool(kind & POSITION_MAJOR)) for c in codes_per_tile]
        if not kind & LAYOUT_PER_TILE:
            return head + GZIP.compress(b"".join(packed))
        return head + b"".join(_LENGTH.pack(len(s)) + s
                               for s in (GZIP.compress(p) for p in packed))
    if layout is not None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        return make(layout)
    if parallel:
        candidates = [f.result() for f in [worker_pool().submit(make, kind) for kind in LAYOUTS]]
    else:
        candidates = [make(kind) for kind in LAYOUTS]
    return min(candidates, key=len)  # min keeps the first of equal length: LAYOUTS' order


def encode(model: RecurrentNetwork, values: np.ndarray, spec: ImageSpec, quality: int
           ) -> tuple[bytes, tuple[int, int]]:
    """The payload of ``values`` at ``quality`` iterations, and the padding added."""
    return encode_batch(model, [(values, spec)], quality)[0]


def encode_batch(model: RecurrentNetwork, items: Sequence[tuple[np.ndarray, ImageSpec]],
                 quality: int, batch_tiles: int | None = None) -> list[tuple[bytes, tuple[int, int]]]:
    """Payloads (and paddings) of several images at ``quality``: their tiles share network
    batches of up to ``batch_tiles`` (default: the model's ``tile_batch``); each image's payload
    is packed and DEFLATEd in the worker pool as soon as its last tile is coded."""
    if len(items) == 1:  # one image: its four layout candidates are DEFLATEd in parallel
        codes, grids, pads = _encode_tiles(model, items, quality, int(batch_tiles or model.tile_batch))
        return [(pack_payload(codes[0], quality, model.tile_size, *grids[0]), pads[0])]
    futures: list[Future | None] = [None] * len(items)

    def pack(k, codes, grid, pads):
        futures[k] = worker_pool().submit(
            lambda: (pack_payload(codes, quality, model.tile_size, *grid, parallel=False), pads))

    _encode_tiles(model, items, quality, int(batch_tiles or model.tile_batch), on_image=pack)
    return [f.result() for f in futures]


def _split_codes(model: RecurrentNetwork, payload: bytes, header: Header):
    """Check the payload head against the container header; return (layout, T, tiles, packed)."""
    if len(payload) < _HEAD.size:
        raise BitstreamError("payload too short for a recurrent codec header")
    layout, t, tile, rows, cols = _HEAD.unpack_from(payload)
    spec = header.spec
    ph, pw = spec.height + header.pad_bottom, spec.width + header.pad_right
    ds = model.downsampling
    if t != header.quality or not 1 <= t <= model.max_iterations:
        raise BitstreamError(f"payload holds {t} iterations, header quality {header.quality}")
    if ph % ds or pw % ds or tile < ds or tile % ds:
        raise BitstreamError(f"padded size {ph}x{pw} / tile {tile} do not fit downsampling {ds}")
    if (rows, cols) != grid_shape(ph, pw, tile):
        raise BitstreamError(f"tile grid {rows}x{cols} does not fit a {ph}x{pw} image")
    check_declared_size(header, tile, ds, model.tile_size)
    if layout not in LAYOUTS or (header.codec_version == "1" and layout & POSITION_MAJOR):
        raise BitstreamError(f"unknown payload layout {layout}")
    tiles = tile_grid(ph, pw, tile)
    nbytes = [(t * model.code_channels * (h // ds) * (w // ds) + 7) // 8 for _, _, h, w in tiles]
    body = payload[_HEAD.size:]
    check_code_bytes(sum(nbytes), len(body))
    if not layout & LAYOUT_PER_TILE:
        raw = GZIP.decompress(body, max_length=sum(nbytes))
        if len(raw) != sum(nbytes):
            raise BitstreamError(f"payload holds {len(raw)} code bytes, {sum(nbytes)} expected")
        offsets = np.cumsum([0] + nbytes)
        packed = [raw[offsets[i]:offsets[i + 1]] for i in range(len(tiles))]
    else:
        packed, pos = [], 0
        for n in nbytes:
            if pos + _LENGTH.size > len(body):
                raise BitstreamError("per-tile payload is truncated")
            (length,) = _LENGTH.unpack_from(body, pos)
            pos += _LENGTH.size
            raw = GZIP.decompress(body[pos:pos + length], max_length=n)
            if len(raw) != n:
                raise BitstreamError(f"tile holds {len(raw)} code bytes, {n} expected")
            packed.append(raw)
            pos += length
    return layout, t, tiles, packed


def _unpacked_tiles(model: RecurrentNetwork, payload: bytes, header: Header):
    """Inflate and unpack one payload: (tiles, each tile's codes (T, C, h, w) float32 +-1)."""
    layout, t, tiles, packed = _split_codes(model, payload, header)
    ds = model.downsampling
    return tiles, [unpack_codes(packed[i], (t, model.code_channels, h // ds, w // ds),
                                position_major=bool(layout & POSITION_MAJOR))
                   for i, (_, _, h, w) in enumerate(tiles)]


def _stored_values(x_hat: torch.Tensor, bits_stored: int) -> np.ndarray:
    """:func:`codeczoo.intensity.from_unit` on the device: clamp, scale in float32, round half
    to even; (B, 1, H, W) -> uint16 (B, H, W) on the host."""
    scale = (1 << bits_stored) - 1
    stored = torch.round(x_hat.detach().float().clamp(0.0, 1.0) * scale).to(torch.int32)
    return stored[:, 0].cpu().numpy().astype(np.uint16)


def decode(model: RecurrentNetwork, payload: bytes, header: Header) -> np.ndarray:
    """Unsigned integers (H x W) from a payload written by :func:`encode`."""
    return decode_batch(model, [(payload, header)])[0]


def decode_unit(model: RecurrentNetwork, payload: bytes, header: Header) -> np.ndarray:
    """The decoder's reconstruction before rounding: float32 (H x W) in [0, 1], not clamped
    (the residual layer rounds it itself, stably across machines)."""
    return decode_batch(model, [(payload, header)], unit=True)[0]


def decode_batch(model: RecurrentNetwork, items: Sequence[tuple[bytes, Header]],
                 batch_tiles: int | None = None, *, unit: bool = False) -> list[np.ndarray]:
    """Unsigned integers of several payloads: inflated and unpacked in the worker pool, their
    tiles decoded in shared network batches of up to ``batch_tiles`` (default: ``tile_batch``).
    ``unit``: the float32 reconstructions before rounding instead (:func:`decode_unit`)."""
    if len(items) == 1:
        unpacked = [_unpacked_tiles(model, *items[0])]
    else:
        unpacked = [f.result() for f in [worker_pool().submit(_unpacked_tiles, model, p, h)
                                         for p, h in items]]
    jobs = [(k, i, tile) for k, (tiles, _) in enumerate(unpacked) for i, tile in enumerate(tiles)]
    outs = [np.empty((h.spec.height, h.spec.width), dtype=np.float32 if unit else np.uint16)
            for _, h in items]
    device = _device(model)
    with _EvalMode(model):
        for run in same_shape_batches([tile for _, _, tile in jobs], int(batch_tiles or model.tile_batch)):
            bits = {items[jobs[r][0]][1].spec.bits_stored for r in run}
            codes = np.stack([unpacked[jobs[r][0]][1][jobs[r][1]] for r in run], axis=1)
            x_hat = model.decode_codes(torch.from_numpy(codes).to(device))
            stored = ({b: x_hat[:, 0].detach().float().cpu().numpy() for b in bits} if unit
                      else {b: _stored_values(x_hat, b) for b in bits})
            for j, r in enumerate(run):
                k, _, (top, left, th, tw) = jobs[r]
                spec = items[k][1].spec
                vh, vw = min(th, spec.height - top), min(tw, spec.width - left)
                if vh <= 0 or vw <= 0:
                    continue  # a tile made only of padding
                outs[k][top:top + vh, left:left + vw] = stored[spec.bits_stored][j, :vh, :vw]
    return outs
