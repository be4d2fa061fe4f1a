"""Shared machinery of progressive recurrent binary codecs (Toderici et al. 2017 iterations).

Toderici, Vincent, Johnston, Hwang, Minnen, Shor, Covell, "Full Resolution Image Compression with
Recurrent Neural Networks", CVPR 2017 (arXiv:1608.05148).  One network codes an image in ``T``
iterations; iteration ``t`` codes what the previous ones left::

    r_0 = x
    b_t = B(E(r_{t-1}))                      binary codes, code_channels bits per latent position
    x_hat_t = D(b_t) + gamma * x_hat_{t-1}   gamma = 0 "one-shot", gamma = 1 "additive"
    r_t = x - x_hat_t

The encoder ``E`` and decoder ``D`` are recurrent (ConvLSTM states carried across iterations), so
the number of iterations, chosen at encode time, sets the rate: ``quality == iterations``, each
iteration costs ``code_channels / downsampling**2`` bits per pixel before the gzip stage.
The models work on the centred image ``x - 0.5``; tensors handed in and out are in [0, 1].

Tensor layer (CompressAI contract): :meth:`RecurrentBinaryCodec.forward`,
:meth:`~RecurrentBinaryCodec.compress`, :meth:`~RecurrentBinaryCodec.decompress`.

Byte layer (:class:`codeczoo.codec.Codec`): integer images of any size are mapped to [0, 1]
(:func:`codeczoo.intensity.to_unit`), replicate-padded to a multiple of ``downsampling`` and cut
into independent square tiles of ``tile_size`` pixels (edge tiles smaller, still multiples of
``downsampling``) that are coded ``tile_batch`` at a time, so peak memory is bounded by the tile
size, not the image size.  Payload layout (big-endian)::

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
2.5-7.4 % (Toderici-small) of the bytes planar order needs (``benchmarks/code_order.py``).  One stream usually beats per-tile
streams, the format a streaming decoder would read.  Files written before position-major order
existed (layouts 0 and 1) decode unchanged.  The padded size comes from the container header
(height + pad_bottom, width + pad_right).
"""

from __future__ import annotations

import struct
from typing import ClassVar

import numpy as np
import torch
from compressai.models import CompressionModel
from torch import Tensor, nn

from .. import intensity
from ..bitstream import Header
from ..codec import Codec, state_dict_hash
from ..entropy import GzipStage, pack_bits, unpack_bits
from ..errors import BitstreamError, CodeczooError
from ..intensity import ImageSpec

_PAYLOAD = struct.Struct(">BBHHH")
_LENGTH = struct.Struct(">I")
LAYOUT_SINGLE, LAYOUT_PER_TILE = 0, 1   # layout bit 0: one DEFLATE stream, or one per tile
POSITION_MAJOR = 2                      # layout bit 1: code order (iteration, row, column, channel)
LAYOUTS = (LAYOUT_SINGLE | POSITION_MAJOR, LAYOUT_PER_TILE | POSITION_MAJOR,
           LAYOUT_SINGLE, LAYOUT_PER_TILE)  # the encoder's candidates, in order of preference


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


class Binarizer(nn.Module):
    """Binary bottleneck of Toderici et al. (2016, 2017): conv -> tanh -> sign.

    In training the sign is stochastic (Raiko et al. 2015: ``b = +1`` with probability
    ``(1 + y) / 2``, so ``E[b] = y``) and the gradient passes straight through (``db/dy = 1``);
    in eval mode it is the deterministic sign (``y >= 0 -> +1``).  Codes are ``{-1, +1}``.

    Args:
        in_channels: channels of the encoder output.
        code_channels: output channels, i.e. bits per latent position per iteration.
        kernel_size: kernel of the bottleneck convolution (1 in Toderici et al.).
    """

    def __init__(self, in_channels: int, code_channels: int, kernel_size: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, code_channels, kernel_size,
                              padding=kernel_size // 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        y = torch.tanh(self.conv(x))
        if self.training:
            bits = torch.where(torch.rand_like(y) < (1 + y) / 2, 1.0, -1.0).to(y.dtype)
            return y + (bits - y).detach()
        return torch.where(y >= 0, 1.0, -1.0).to(y.dtype)


class RecurrentBinaryCodec(CompressionModel, Codec):
    """Base of progressive recurrent binary codecs (Toderici et al. 2017 residual iterations).

    A subclass builds, in ``__init__`` after calling this one:

    * ``self.encoder``: ``encoder(r, state) -> (features, state)``, ``r`` of shape (B, 1, H, W),
      ``state`` ``None`` on the first iteration;
    * ``self.binarizer``: a :class:`Binarizer` (features -> codes in {-1, +1},
      ``code_channels`` channels at ``H / downsampling`` x ``W / downsampling``);
    * ``self.decoder``: ``decoder(codes, state) -> (image, state)``, image (B, 1, H, W) centred;

    and sets the class attribute ``downsampling``.

    Args:
        code_channels: bits per latent position per iteration.
        max_iterations: most iterations (highest quality); ``qualities = 1..max_iterations``.
        gamma: 0 one-shot, 1 additive reconstruction (see module docstring).
        default_quality: iterations used when ``quality`` / ``iterations`` is not given.
        tile_size: tile edge in pixels for the byte layer (rounded down to a multiple of
            ``downsampling``); bounds memory on large images.
        tile_batch: tiles coded together (speed against memory).
    """

    downsampling: ClassVar[int] = 16
    codec_version: ClassVar[str] = "2"  # 2: position-major code order (payload layouts 2, 3)
    reads_codec_versions: ClassVar[tuple[str, ...]] = ("1",)  # layouts 0 and 1 only

    def __init__(self, code_channels: int, max_iterations: int, gamma: float,
                 default_quality: int, tile_size: int = 512, tile_batch: int = 1):
        super().__init__()
        if max_iterations < 1 or max_iterations > 255:
            raise ValueError(f"max_iterations must be in 1..255, got {max_iterations}")
        if not 1 <= default_quality <= max_iterations:
            raise ValueError(f"default_quality must be in 1..{max_iterations}, got {default_quality}")
        if tile_size < self.downsampling or tile_batch < 1:
            raise ValueError(f"tile_size must be >= {self.downsampling} and tile_batch >= 1")
        self.code_channels = int(code_channels)
        self.max_iterations = int(max_iterations)
        self.qualities = tuple(range(1, self.max_iterations + 1))
        self.default_quality = int(default_quality)
        self.gamma = float(gamma)
        self.tile_size = int(tile_size) // self.downsampling * self.downsampling
        self.tile_batch = int(tile_batch)
        self.gzip = GzipStage()
        self._hash_cache: tuple[tuple, bytes] | None = None

    # -- rate -----------------------------------------------------------------------------------
    @property
    def bpp_per_iteration(self) -> float:
        """Raw code bits per pixel each iteration adds (before the gzip stage)."""
        return self.code_channels / self.downsampling ** 2

    def rate_table(self) -> list[dict]:
        """quality -> iterations -> raw code bpp (before gzip), for cards and docs."""
        return [{"quality": q, "iterations": q, "bpp_raw": q * self.bpp_per_iteration}
                for q in self.qualities]

    def _iterations(self, iterations: int | None, default: int) -> int:
        t = default if iterations is None else iterations
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 1 <= t <= self.max_iterations:
            raise ValueError(f"iterations must be an integer in 1..{self.max_iterations}, got {t!r}")
        return int(t)

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"expected a (B, 1, H, W) tensor, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % self.downsampling or w % self.downsampling or h == 0 or w == 0:
            raise ValueError(f"height and width must be positive multiples of {self.downsampling}, "
                             f"got {h}x{w} (pad the image first)")

    # -- tensor layer ---------------------------------------------------------------------------
    def forward(self, x: Tensor, iterations: int | None = None) -> dict:
        """Run ``iterations`` coding iterations on ``x`` (B, 1, H, W) in [0, 1].

        ``iterations`` defaults to ``max_iterations`` in training mode (the training objective
        covers every rate) and to ``default_quality`` in eval mode (matching :meth:`compress`).

        Returns ``{"x_hat": final reconstruction (B, 1, H, W) in image range (not clamped),
        "likelihoods": {"codes": 0.5 per code bit}, "residuals": (T, B, 1, H, W) x - x_hat_t}``.
        The likelihoods make CompressAI's ``sum(log p) / (-ln 2 * N * H * W)`` equal the raw
        code rate ``T * bpp_per_iteration`` exactly.
        """
        self._check_input(x)
        t_max = self._iterations(iterations,
                                 self.max_iterations if self.training else self.default_quality)
        target = x - 0.5
        residual = target
        x_hat = torch.zeros_like(target)
        enc_state = dec_state = None
        residuals, codes = [], []
        for _ in range(t_max):
            features, enc_state = self.encoder(residual, enc_state)
            bits = self.binarizer(features)
            out, dec_state = self.decoder(bits, dec_state)
            x_hat = out + self.gamma * x_hat if self.gamma else out
            residual = target - x_hat
            residuals.append(residual)
            codes.append(bits)
        codes_t = torch.cat(codes, dim=1)
        return {
            "x_hat": x_hat + 0.5,
            "likelihoods": {"codes": torch.full_like(codes_t, 0.5).detach()},
            "residuals": torch.stack(residuals),
        }

    @staticmethod
    def residual_loss(output: dict) -> Tensor:
        """Toderici et al.'s training loss: mean absolute residual, summed over iterations."""
        residuals = output["residuals"]
        return residuals.abs().flatten(1).mean(dim=1).sum()

    @torch.no_grad()
    def encode_codes(self, x: Tensor, iterations: int) -> Tensor:
        """Binary codes of ``x`` (B, 1, H, W) in [0, 1]: float tensor (T, B, C, h, w) of +-1.

        Runs the encoder and (to form residuals) the decoder; call in eval mode for
        deterministic codes.
        """
        self._check_input(x)
        target = x - 0.5
        residual = target
        x_hat = torch.zeros_like(target)
        enc_state = dec_state = None
        codes = []
        for t in range(iterations):
            features, enc_state = self.encoder(residual, enc_state)
            bits = self.binarizer(features)
            codes.append(bits)
            if t + 1 < iterations:  # the last reconstruction is not needed to encode
                out, dec_state = self.decoder(bits, dec_state)
                x_hat = out + self.gamma * x_hat if self.gamma else out
                residual = target - x_hat
        return torch.stack(codes)

    @torch.no_grad()
    def decode_codes(self, codes: Tensor) -> Tensor:
        """Reconstruction in [0, 1] (B, 1, H, W) from codes (T, B, C, h, w); not clamped."""
        x_hat = None
        dec_state = None
        for bits in codes:
            out, dec_state = self.decoder(bits, dec_state)
            x_hat = out + self.gamma * x_hat if (self.gamma and x_hat is not None) else out
        return x_hat + 0.5

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def compress(self, x: Tensor, iterations: int | None = None) -> dict:
        """CompressAI ``compress``: ``{"strings": [[bytes per batch item]], "shape": (h, w, T)}``.

        Each item's codes (T, C, h, w) are packed 8 to a byte in position-major order
        (:func:`pack_codes`) and DEFLATEd (the gzip stage).
        ``iterations`` defaults to ``default_quality``.  Uses the module's current mode; call
        ``eval()`` first for deterministic codes.
        """
        t = self._iterations(iterations, self.default_quality)
        codes = self.encode_codes(x, t)
        strings = [self.gzip.compress(pack_codes(codes[:, i].cpu().numpy()))
                   for i in range(x.shape[0])]
        h, w = codes.shape[-2:]
        return {"strings": [strings], "shape": (int(h), int(w), t)}

    @torch.no_grad()
    def decompress(self, strings, shape) -> dict:
        """CompressAI ``decompress``: ``{"x_hat": (B, 1, H, W) clamped to [0, 1]}``."""
        h, w, t = (int(v) for v in shape)
        self._iterations(t, t)
        items = strings[0] if strings and isinstance(strings[0], (list, tuple)) else strings
        shape = (t, self.code_channels, h, w)
        nbytes = (t * self.code_channels * h * w + 7) // 8
        raws = [self.gzip.decompress(s, max_length=nbytes) for s in items]
        if any(len(raw) != nbytes for raw in raws):
            raise BitstreamError(f"a string holds the wrong number of code bytes ({nbytes} expected)")
        codes = np.stack([unpack_codes(raw, shape) for raw in raws], axis=1)
        x_hat = self.decode_codes(torch.from_numpy(codes).to(self._device()))
        return {"x_hat": x_hat.clamp(0.0, 1.0)}

    def aux_loss(self) -> Tensor:
        """No entropy bottleneck to fit: a zero tensor (CompressAI trainers may backprop it)."""
        return torch.zeros((), device=self._device())

    # -- weights ----------------------------------------------------------------------------------
    def weights_hash(self) -> bytes:
        """First 8 bytes of the sha256 of the weights (cached until a tensor changes)."""
        state = self.state_dict()
        key = tuple((name, t.data_ptr(), t._version, tuple(t.shape), t.dtype)
                    for name, t in state.items())
        if self._hash_cache is None or self._hash_cache[0] != key:
            self._hash_cache = (key, state_dict_hash(state))
        return self._hash_cache[1]

    @classmethod
    def arguments_from_state_dict(cls, state_dict) -> dict:
        """Constructor arguments that fit ``state_dict`` (subclasses infer their sizes)."""
        return {}

    @classmethod
    def from_state_dict(cls, state_dict, **kwargs):
        """CompressAI contract: rebuild a model from its weights (sizes inferred from shapes).

        ``kwargs`` set what weights do not record (``gamma``, ``max_iterations``,
        ``default_quality``, ``tile_size``, ``tile_batch``, a parameter-free choice such as the
        paper codec's ``pooling``); class defaults otherwise.  A registry card records them all.
        """
        model = cls(**{**cls.arguments_from_state_dict(state_dict), **kwargs})
        model.load_state_dict(state_dict)
        return model

    # -- byte layer -------------------------------------------------------------------------------
    def _tile_grid(self, height: int, width: int, tile: int) -> list[tuple[int, int, int, int]]:
        """Tiles (top, left, h, w) of a padded ``height`` x ``width`` image, raster order."""
        return [(top, left, min(tile, height - top), min(tile, width - left))
                for top in range(0, height, tile) for left in range(0, width, tile)]

    def _batches(self, tiles):
        """Consecutive runs of same-shaped tiles, at most ``tile_batch`` long (index lists)."""
        run: list[int] = []
        for i, tile in enumerate(tiles):
            if run and (len(run) == self.tile_batch or tiles[run[0]][2:] != tile[2:]):
                yield run
                run = []
            run.append(i)
        if run:
            yield run

    def encode_values(self, values: np.ndarray, spec: ImageSpec, quality: int
                      ) -> tuple[bytes, tuple[int, int]]:
        tile_codes, (rows, cols), pads = self.tile_codes(values, spec, quality)
        return self.pack_payload(tile_codes, quality, self.tile_size, rows, cols), pads

    def tile_codes(self, values: np.ndarray, spec: ImageSpec, quality: int
                   ) -> tuple[list[np.ndarray], tuple[int, int], tuple[int, int]]:
        """Each tile's binary codes, uint8 (T, C, h, w) in {0, 1}, in raster order; the tile grid
        (rows, cols); the padding (bottom, right).  The codes of the first ``t`` iterations do
        not depend on ``quality`` (the iterations are progressive)."""
        ds = self.downsampling
        pad_bottom, pad_right = (-spec.height) % ds, (-spec.width) % ds
        padded = np.pad(values, ((0, pad_bottom), (0, pad_right)), mode="edge")
        tiles = self._tile_grid(*padded.shape, self.tile_size)
        rows = -(-padded.shape[0] // self.tile_size)
        cols = -(-padded.shape[1] // self.tile_size)
        was_training = self.training
        self.eval()
        device = self._device()
        tile_codes: list[np.ndarray] = [np.empty(0)] * len(tiles)
        try:
            with torch.no_grad():
                for run in self._batches(tiles):
                    x = torch.cat([intensity.to_unit(padded[t:t + h, l:l + w], spec.bits_stored)
                                   for t, l, h, w in (tiles[i] for i in run)]).to(device)
                    codes = (self.encode_codes(x, quality) > 0).cpu().numpy().astype(np.uint8)
                    for j, i in enumerate(run):
                        tile_codes[i] = codes[:, j]
        finally:
            self.train(was_training)
        return tile_codes, (rows, cols), (pad_bottom, pad_right)

    def pack_payload(self, tile_codes: list[np.ndarray], iterations: int, tile: int, rows: int,
                     cols: int, layout: int | None = None) -> bytes:
        """Payload from each tile's codes (T, C, h, w); ``layout=None`` writes the smallest of
        :data:`LAYOUTS` (the first of equal size)."""
        def make(kind: int) -> bytes:
            head = _PAYLOAD.pack(kind, iterations, tile, rows, cols)
            packed = [pack_codes(c, position_major=bool(kind & POSITION_MAJOR)) for c in tile_codes]
            if not kind & LAYOUT_PER_TILE:
                return head + self.gzip.compress(b"".join(packed))
            return head + b"".join(_LENGTH.pack(len(s)) + s
                                   for s in (self.gzip.compress(p) for p in packed))
        if layout is not None:
            if layout not in LAYOUTS:
                raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
            return make(layout)
        return min((make(kind) for kind in LAYOUTS), key=len)

    def decode_values(self, payload: bytes, header: Header) -> np.ndarray:
        return intensity.from_unit(torch.from_numpy(self.decode_unit_values(payload, header)),
                                   header.spec.bits_stored)

    def decode_unit_values(self, payload: bytes, header: Header) -> np.ndarray:
        """The decoder's reconstruction before rounding: float32 (H, W) in [0, 1] (not clamped).

        :meth:`decode_values` rounds it; the residual layer (:mod:`codeczoo.residual`) rounds it
        itself, stably across machines.
        """
        if len(payload) < _PAYLOAD.size:
            raise BitstreamError("payload too short for a recurrent codec header")
        layout, t, tile, rows, cols = _PAYLOAD.unpack_from(payload)
        spec = header.spec
        ph, pw = spec.height + header.pad_bottom, spec.width + header.pad_right
        ds = self.downsampling
        if t != header.quality or not 1 <= t <= self.max_iterations:
            raise BitstreamError(f"payload holds {t} iterations, header quality {header.quality}")
        if ph % ds or pw % ds or tile < ds or tile % ds:
            raise BitstreamError(f"padded size {ph}x{pw} / tile {tile} do not fit downsampling {ds}")
        if rows != -(-ph // tile) or cols != -(-pw // tile):
            raise BitstreamError(f"tile grid {rows}x{cols} does not fit a {ph}x{pw} image")
        tiles = self._tile_grid(ph, pw, tile)
        counts = [t * self.code_channels * (h // ds) * (w // ds) for _, _, h, w in tiles]
        nbytes = [(c + 7) // 8 for c in counts]
        body = payload[_PAYLOAD.size:]
        if layout not in LAYOUTS or (header.codec_version == "1" and layout & POSITION_MAJOR):
            raise BitstreamError(f"unknown payload layout {layout}")
        if not layout & LAYOUT_PER_TILE:
            raw = self.gzip.decompress(body, max_length=sum(nbytes))
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
                raw = self.gzip.decompress(body[pos:pos + length], max_length=n)
                if len(raw) != n:
                    raise BitstreamError(f"tile holds {len(raw)} code bytes, {n} expected")
                packed.append(raw)
                pos += length

        out = np.empty((spec.height, spec.width), dtype=np.float32)
        was_training = self.training
        self.eval()
        device = self._device()
        try:
            with torch.no_grad():
                for run in self._batches(tiles):
                    _, _, h, w = tiles[run[0]]
                    codes = np.stack([unpack_codes(packed[i], (t, self.code_channels, h // ds, w // ds),
                                                   position_major=bool(layout & POSITION_MAJOR))
                                      for i in run], axis=1)
                    x_hat = self.decode_codes(torch.from_numpy(codes).to(device))
                    for j, i in enumerate(run):
                        top, left, th, tw = tiles[i]
                        vh, vw = min(th, spec.height - top), min(tw, spec.width - left)
                        if vh <= 0 or vw <= 0:
                            continue  # a tile made only of padding
                        out[top:top + vh, left:left + vw] = x_hat[j, 0, :vh, :vw].float().cpu().numpy()
        finally:
            self.train(was_training)
        return out


def check_positive(**sizes) -> None:
    """Raise ``CodeczooError`` with one line for a non-positive architecture size."""
    for name, value in sizes.items():
        values = value if isinstance(value, (tuple, list)) else (value,)
        if not values or any(int(v) < 1 for v in values):
            raise CodeczooError(f"{name} must be positive, got {value!r}")
