"""Payload format of progressive recurrent binary codecs (Toderici et al. 2017 iterations).

The byte layer of :class:`codeczoo.models.base.RecurrentBinaryCodec` delegates here: integer
images of any size are mapped to [0, 1] (:func:`codeczoo.intensity.to_unit`), replicate-padded
to a multiple of the network's ``downsampling`` and cut into independent square tiles of
``tile_size`` pixels (:mod:`codeczoo.coding.tiles`; edge tiles smaller) that the network codes
``tile_batch`` at a time, so peak memory is bounded by the tile size, not the image size.
Payload layout (big-endian)::

    offset size  field
    0      1     layout, four flags:
                   bit 0: 0 = one DEFLATE stream over all tiles' packed codes,
                          1 = one DEFLATE stream per tile, each preceded by its u32 length;
                   bit 1: code order inside a tile, 0 = planar (iteration, channel, row, column),
                          1 = position-major (iteration, row, column, channel);
                   bit 2 (LEARNED, codec version 3): the learned entropy stage instead of
                          DEFLATE (bits 0 and 1 are then 0);
                   bit 3 (ADAPTIVE, codec version 3): a per-tile iteration map follows
    1      1     iterations T: the container's quality, or with ADAPTIVE the largest count
                 in the map (the container's quality is then the PSNR target in dB)
    2      2     tile size in pixels
    4      2     tile rows
    6      2     tile columns
    8      8     LEARNED only: the entropy model's hash (``registry/<codec>/entropy.json``)
    ...    R*C   ADAPTIVE only: each tile's iteration count, 1..T, one byte per tile in raster
                 order
    ...    ...   codes: DEFLATE stream(s), or with LEARNED one rANS frame per tile
                 (:mod:`codeczoo.entropy.learned_stage`)

Each tile's codes are packed 8 to a byte in the layout's order (:func:`pack_codes`,
byte-aligned per tile); tiles follow in raster order.  The encoder writes whichever of the four
layouts is smallest.  Position-major order usually wins: it puts a latent position's
``code_channels`` bits in whole bytes, so DEFLATE finds the positions that repeat (flat
background, collimator borders); on the val chest X-rays it saves 16-18 % (Sushmit) and
2.5-7.4 % (Toderici-small) of the bytes planar order needs (``benchmarks/code_order.py``).  One
stream usually beats per-tile streams, the format a streaming decoder would read.  Files written
before position-major order existed (codec version 1: layouts 0 and 1) and before the learned
stage and iteration maps (codec version 2) decode unchanged; a version 1 or 2 header that claims
a later flag is refused.  The
padded size comes from the container header (height + pad_bottom, width + pad_right).
"""

from __future__ import annotations

import os
import struct
import warnings
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
           LAYOUT_SINGLE, LAYOUT_PER_TILE)  # the gzip stage's candidates, in order of preference
LEARNED = 4                             # layout bit 2: learned entropy stage (codec version 3)
ADAPTIVE = 8                            # layout bit 3: per-tile iteration map (codec version 3)
_HASH = 8                               # bytes of the entropy model's hash after the head
#: PSNR targets (dB) an adaptive payload's header quality may hold
PSNR_TARGETS = range(10, 100)
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
                  quality: int, batch_tiles: int, on_image=None, tile_size: int | None = None,
                  errors: bool = False):
    """Codes of every tile of every image, uint8 (T, C, h, w) in {0, 1}; consecutive
    same-shaped tiles (across images) coded ``batch_tiles`` at a time. ``on_image(k, codes,
    grid, pads, sse)`` is called as soon as image ``k``'s last tile is coded.  ``errors``: also
    each tile's squared error (stored integers, padding excluded) after every iteration,
    float64 (T,) per tile (``None`` otherwise)."""
    tile_size = int(tile_size or model.tile_size)
    prepared = []
    jobs: list[tuple[int, int, tuple[int, int, int, int]]] = []
    for k, (values, spec) in enumerate(items):
        padded, pads = pad_to_multiple(values, model.downsampling)
        tiles = tile_grid(*padded.shape, tile_size)
        prepared.append((padded, pads, grid_shape(*padded.shape, tile_size), spec))
        jobs += [(k, i, tile) for i, tile in enumerate(tiles)]
    counts = [sum(1 for j in jobs if j[0] == k) for k in range(len(items))]
    codes: list[list[np.ndarray]] = [[np.empty(0)] * n for n in counts]
    sse: list[list] = [[None] * n for n in counts]
    left = list(counts)
    device = _device(model)
    with _EvalMode(model):
        for run in same_shape_batches([tile for _, _, tile in jobs], batch_tiles):
            x = torch.cat([_unit_tile(prepared[jobs[r][0]], jobs[r][2]) for r in run]).to(device)
            if errors:
                signed, x_hats = model.encode_progressive(x, quality)
            else:
                signed = model.encode_codes(x, quality)
            bits = (signed > 0).to(torch.uint8).cpu().numpy()
            for j, r in enumerate(run):
                k, i, (top, left_px, th, tw) = jobs[r]
                codes[k][i] = bits[:, j]
                if errors:
                    spec = prepared[k][3]
                    vh, vw = min(th, spec.height - top), min(tw, spec.width - left_px)
                    sse[k][i] = _tile_errors(x_hats[:, j], prepared[k][0], (top, left_px, vh, vw),
                                             spec.bits_stored)
                left[k] -= 1
                if left[k] == 0 and on_image is not None:
                    on_image(k, codes[k], prepared[k][2], prepared[k][1], sse[k])
    return codes, [p[2] for p in prepared], [p[1] for p in prepared], sse


def _tile_errors(x_hats: torch.Tensor, padded: np.ndarray, region, bits_stored: int) -> np.ndarray:
    """Squared error of a tile's stored integers after each iteration: x_hats (T, 1, h, w)."""
    top, left, vh, vw = region
    if vh <= 0 or vw <= 0:
        return np.zeros(x_hats.shape[0])
    stored = _stored_values(x_hats, bits_stored)[:, :vh, :vw].astype(np.float64)
    original = padded[top:top + vh, left:left + vw].astype(np.float64)
    return ((stored - original) ** 2).reshape(len(stored), -1).sum(axis=1)


def tile_codes(model: RecurrentNetwork, values: np.ndarray, spec: ImageSpec, quality: int
               ) -> tuple[list[np.ndarray], tuple[int, int], tuple[int, int]]:
    """Each tile's binary codes, uint8 (T, C, h, w) in {0, 1}, in raster order; the tile grid
    (rows, cols); the padding (bottom, right).  The codes of the first ``t`` iterations do not
    depend on ``quality`` (the iterations are progressive)."""
    codes, grids, pads, _ = _encode_tiles(model, [(values, spec)], quality, model.tile_batch)
    return codes[0], grids[0], pads[0]


def tile_codes_and_errors(model: RecurrentNetwork, values: np.ndarray, spec: ImageSpec,
                          iterations: int, tile_size: int | None = None):
    """As :func:`tile_codes` with tiles of ``tile_size`` px, plus each tile's squared error
    (stored integers) after every iteration: ``(codes, grid, pads, errors)`` (what adaptive
    iterations allocate with, and what ``benchmarks/stages.py`` measures uniform and adaptive
    coding with in one pass)."""
    codes, grids, pads, sse = _encode_tiles(model, [(values, spec)], iterations, model.tile_batch,
                                            tile_size=tile_size, errors=True)
    return codes[0], grids[0], pads[0], sse[0]


def _head(layout: int, iterations: int, tile: int, rows: int, cols: int,
          entropy_hash: bytes | None, iteration_map: Sequence[int] | None) -> bytes:
    head = _HEAD.pack(layout, iterations, tile, rows, cols)
    if layout & LEARNED:
        head += entropy_hash
    if layout & ADAPTIVE:
        head += bytes(iteration_map)
    return head


def pack_payload(codes_per_tile: list[np.ndarray], iterations: int, tile: int, rows: int,
                 cols: int, layout: int | None = None, parallel: bool = True, *,
                 adaptive: bool = False) -> bytes:
    """gzip-stage payload from each tile's codes (T_k, C, h, w); ``layout=None`` writes the
    smallest of :data:`LAYOUTS` (the first of equal size), the candidates compressed in
    parallel threads unless ``parallel`` is false.  ``adaptive``: tiles may hold different
    numbers of iterations (up to ``iterations``), recorded in the iteration map."""
    counts = [int(c.shape[0]) for c in codes_per_tile] if adaptive else None

    def make(kind: int) -> bytes:
        kind |= ADAPTIVE if adaptive else 0
        head = _head(kind, iterations, tile, rows, cols, None, counts)
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


def pack_learned_payload(model: RecurrentNetwork, codes_per_tile: list[np.ndarray],
                         iterations: int, tile: int, rows: int, cols: int, *,
                         adaptive: bool = False, bins_per_tile=None) -> bytes:
    """Learned-stage payload (:mod:`codeczoo.entropy.learned_stage`) of each tile's codes
    (``bins_per_tile``: their context-model bins, if already computed)."""
    from ..entropy import learned_stage

    context, digest = model.entropy_model()
    layout = LEARNED | (ADAPTIVE if adaptive else 0)
    counts = [int(c.shape[0]) for c in codes_per_tile] if adaptive else None
    return (_head(layout, iterations, tile, rows, cols, digest, counts)
            + learned_stage.encode_tiles(context, codes_per_tile, bins_per_tile))


def _payload(model: RecurrentNetwork, codes, grid, quality: int, tile: int, sse, spec,
             parallel: bool) -> bytes:
    """One image's payload from its tiles' codes at the model's entropy stage and rate
    control (``quality``: iterations, or the PSNR target in dB with ``sse``).

    With the learned stage the gzip payload of the same quality is built too and the smaller
    one written (the layout byte says which, as for the gzip stage's own layouts): the context
    model learned chest X-ray codes, and on codes unlike them (the flat, exactly repeating
    backgrounds of large radiographs) DEFLATE's long matches can cost less.  ``--entropy
    learned`` is therefore never larger than the paper's stage; ``benchmarks/stages.py``
    reports the learned stage alone and what the encoder writes."""
    adaptive = model.rate_control == "psnr"
    bins = learned_bins(model, codes) if adaptive else None  # once: they cost, then they code
    gzip_codes, gzip_iterations = _rate_controlled(model, codes, quality, sse, spec,
                                                   iteration_costs(model, codes, None))
    gzip = pack_payload(gzip_codes, gzip_iterations, tile, *grid, parallel=parallel,
                        adaptive=adaptive)
    if model.entropy != "learned":
        return gzip
    if adaptive:  # the learned stage allocates iterations with its own costs
        codes, iterations = _rate_controlled(model, codes, quality, sse, spec,
                                             iteration_costs(model, codes, bins), warn=False)
    else:
        codes, iterations = gzip_codes, gzip_iterations
    learned = pack_learned_payload(model, codes, iterations, tile, *grid, adaptive=adaptive,
                                   bins_per_tile=bins)
    return min(learned, gzip, key=len)  # a tie keeps the learned stage


def _rate_controlled(model: RecurrentNetwork, codes, quality: int, sse, spec, costs,
                     warn: bool = True) -> tuple[list[np.ndarray], int]:
    """Each tile's codes cut to the iterations the rate control gives it, and the largest
    count: ``quality`` iterations everywhere, or with adaptive iterations the fewest bits
    (``costs``) that meet the PSNR target ``quality`` (warning once if none does)."""
    if model.rate_control != "psnr":
        return [c[:quality] for c in codes], quality
    from .adaptive import (UnreachableTargetWarning, choose_iterations, psnr_of,
                           target_squared_error)

    target = target_squared_error(quality, spec)
    counts = choose_iterations(sse, costs, target)
    reached = sum(float(e[n - 1]) for e, n in zip(sse, counts))
    if warn and reached > target:  # even max_iterations everywhere falls short: say so
        warnings.warn(
            f"{model.codec_name}: a {quality} dB PSNR target is out of reach on this "
            f"{spec.height}x{spec.width} image; coded at {model.max_iterations} iterations "
            f"everywhere ({psnr_of(reached, spec):.2f} dB)", UnreachableTargetWarning,
            stacklevel=3)
    return [c[:n] for c, n in zip(codes, counts)], max(counts)


def learned_bins(model: RecurrentNetwork, codes: list[np.ndarray]) -> list[np.ndarray] | None:
    """Each tile's context-model bins (:func:`codeczoo.entropy.learned_stage.tile_bins`) with
    the learned stage, None with gzip."""
    if model.entropy != "learned":
        return None
    from ..entropy.learned_stage import tile_bins

    context, _ = model.entropy_model()
    return [tile_bins(context, c) for c in codes]


def iteration_costs(model: RecurrentNetwork, codes: list[np.ndarray],
                    bins: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """Bits each iteration of each tile costs: the learned stage's own estimate (from ``bins``,
    :func:`learned_bins`), or the raw code bits (DEFLATE's cost cannot be split by tile and
    iteration)."""
    if bins is not None:
        from ..entropy.learned_stage import iteration_bits

        context, _ = model.entropy_model()
        return [iteration_bits(context, c, b) for c, b in zip(codes, bins)]
    return [np.full(c.shape[0], float(np.prod(c.shape[1:]))) for c in codes]


def coding_tile(model: RecurrentNetwork) -> int:
    """Tile size the encoder uses: ``tile_size``, or ``adaptive_tile_size`` when adaptive."""
    return model.adaptive_tile_size if model.rate_control == "psnr" else model.tile_size


def encode(model: RecurrentNetwork, values: np.ndarray, spec: ImageSpec, quality: int
           ) -> tuple[bytes, tuple[int, int]]:
    """The payload of ``values`` at ``quality``, and the padding added."""
    return encode_batch(model, [(values, spec)], quality)[0]


def encode_batch(model: RecurrentNetwork, items: Sequence[tuple[np.ndarray, ImageSpec]],
                 quality: int, batch_tiles: int | None = None) -> list[tuple[bytes, tuple[int, int]]]:
    """Payloads (and paddings) of several images at ``quality``: their tiles share network
    batches of up to ``batch_tiles`` (default: the model's ``tile_batch``); each image's payload
    is packed and entropy-coded in the worker pool as soon as its last tile is coded."""
    adaptive = model.rate_control == "psnr"
    iterations = model.max_iterations if adaptive else quality
    tile = coding_tile(model)
    batch = int(batch_tiles or model.tile_batch)
    if len(items) == 1:  # one image: its four layout candidates are DEFLATEd in parallel
        codes, grids, pads, sse = _encode_tiles(model, items, iterations, batch, tile_size=tile,
                                                errors=adaptive)
        return [(_payload(model, codes[0], grids[0], quality, tile, sse[0], items[0][1], True),
                 pads[0])]
    futures: list[Future | None] = [None] * len(items)

    def pack(k, codes, grid, pads, sse):
        futures[k] = worker_pool().submit(
            lambda: (_payload(model, codes, grid, quality, tile, sse, items[k][1], False), pads))

    _encode_tiles(model, items, iterations, batch, on_image=pack, tile_size=tile, errors=adaptive)
    return [f.result() for f in futures]


def _split_codes(model: RecurrentNetwork, payload: bytes, header: Header):
    """Check the payload head against the container header and decode the codes:
    (tiles (top, left, h, w, T_k), each tile's codes (T_k, C, h, w) float32 +-1)."""
    if len(payload) < _HEAD.size:
        raise BitstreamError("payload too short for a recurrent codec header")
    layout, t, tile, rows, cols = _HEAD.unpack_from(payload)
    spec = header.spec
    ph, pw = spec.height + header.pad_bottom, spec.width + header.pad_right
    ds = model.downsampling
    known = LAYOUTS + tuple(k | ADAPTIVE for k in LAYOUTS) + (LEARNED, LEARNED | ADAPTIVE)
    if (layout not in known or (header.codec_version == "1" and layout & POSITION_MAJOR)
            or (header.codec_version in ("1", "2") and layout & (LEARNED | ADAPTIVE))):
        raise BitstreamError(f"unknown payload layout {layout}")
    if not 1 <= t <= model.max_iterations:
        raise BitstreamError(f"payload holds {t} iterations, this codec has {model.max_iterations}")
    if layout & ADAPTIVE:
        if header.quality not in PSNR_TARGETS:
            raise BitstreamError(f"header holds an invalid PSNR target {header.quality}")
    elif t != header.quality:
        raise BitstreamError(f"payload holds {t} iterations, header quality {header.quality}")
    if ph % ds or pw % ds or tile < ds or tile % ds:
        raise BitstreamError(f"padded size {ph}x{pw} / tile {tile} do not fit downsampling {ds}")
    if (rows, cols) != grid_shape(ph, pw, tile):
        raise BitstreamError(f"tile grid {rows}x{cols} does not fit a {ph}x{pw} image")
    check_declared_size(header, tile, ds, model.tile_size)
    tiles = tile_grid(ph, pw, tile)
    pos = _HEAD.size
    digest = None
    if layout & LEARNED:
        digest = payload[pos:pos + _HASH]
        pos += _HASH
    counts = [t] * len(tiles)
    if layout & ADAPTIVE:
        counts = list(payload[pos:pos + len(tiles)])
        pos += len(tiles)
        if len(counts) != len(tiles) or min(counts) < 1 or max(counts) != t:
            raise BitstreamError(f"iteration map does not fit {len(tiles)} tiles of 1..{t} iterations")
    shapes = [(n, model.code_channels, h // ds, w // ds) for n, (_, _, h, w) in zip(counts, tiles)]
    located = [(*tile_, n) for tile_, n in zip(tiles, counts)]
    if layout & LEARNED:
        from ..entropy import learned_stage

        context = model.entropy_model_for_payload(digest)
        return located, learned_stage.decode_tiles(context, payload, pos, shapes)
    nbytes = [(int(np.prod(shape)) + 7) // 8 for shape in shapes]
    body = payload[pos:]
    check_code_bytes(sum(nbytes), len(body))
    if not layout & LAYOUT_PER_TILE:
        raw = GZIP.decompress(body, max_length=sum(nbytes))
        if len(raw) != sum(nbytes):
            raise BitstreamError(f"payload holds {len(raw)} code bytes, {sum(nbytes)} expected")
        offsets = np.cumsum([0] + nbytes)
        packed = [raw[offsets[i]:offsets[i + 1]] for i in range(len(tiles))]
    else:
        packed, at = [], 0
        for n in nbytes:
            if at + _LENGTH.size > len(body):
                raise BitstreamError("per-tile payload is truncated")
            (length,) = _LENGTH.unpack_from(body, at)
            at += _LENGTH.size
            raw = GZIP.decompress(body[at:at + length], max_length=n)
            if len(raw) != n:
                raise BitstreamError(f"tile holds {len(raw)} code bytes, {n} expected")
            packed.append(raw)
            at += length
    major = bool(layout & POSITION_MAJOR)
    return located, [unpack_codes(p, shape, position_major=major) for p, shape in zip(packed, shapes)]


def describe(payload: bytes) -> dict:
    """What ``codeczoo info`` shows of a payload head: entropy stage, tiles, iteration map."""
    if len(payload) < _HEAD.size:
        return {}
    layout, t, tile, rows, cols = _HEAD.unpack_from(payload)
    info = {"entropy_stage": "learned" if layout & LEARNED else "gzip", "tile_size": tile,
            "tiles": [rows, cols]}
    pos = _HEAD.size
    if layout & LEARNED:
        info["entropy_model"] = payload[pos:pos + _HASH].hex()
        pos += _HASH
    if layout & ADAPTIVE:
        counts = list(payload[pos:pos + rows * cols])
        info["rate_control"] = "psnr (adaptive iterations)"
        info["iterations_per_tile"] = {n: counts.count(n) for n in sorted(set(counts))}
    else:
        info["rate_control"] = "iterations"
    return info


def _unpacked_tiles(model: RecurrentNetwork, payload: bytes, header: Header):
    """Entropy-decode one payload: (tiles (top, left, h, w, T_k), each tile's codes (T_k, C, h,
    w) float32 +-1)."""
    return _split_codes(model, payload, header)


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
            bits = {items[jobs[r][0]][1].spec.bits_stored for r in run}  # tiles share (h, w, T)
            codes = np.stack([unpacked[jobs[r][0]][1][jobs[r][1]] for r in run], axis=1)
            x_hat = model.decode_codes(torch.from_numpy(codes).to(device))
            stored = ({b: x_hat[:, 0].detach().float().cpu().numpy() for b in bits} if unit
                      else {b: _stored_values(x_hat, b) for b in bits})
            for j, r in enumerate(run):
                k, _, (top, left, th, tw, _) = jobs[r]
                spec = items[k][1].spec
                vh, vw = min(th, spec.height - top), min(tw, spec.width - left)
                if vh <= 0 or vw <= 0:
                    continue  # a tile made only of padding
                outs[k][top:top + vh, left:left + vw] = stored[spec.bits_stored][j, :vh, :vw]
    return outs
