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

Byte layer (:class:`codeczoo.codec.Codec`): ``encode_values`` / ``decode_values`` delegate to
:mod:`codeczoo.coding.recurrent_payload`, which tiles the image and packs the codes through the
entropy stage; this module holds only the networks' shared machinery.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from compressai.models import CompressionModel
from torch import Tensor, nn

from ..bitstream import Header
from ..codec import Codec, cached_weights_hash, state_dict_hash
from ..coding import recurrent_payload
from ..coding.recurrent_payload import pack_codes, unpack_codes
from ..entropy import GzipStage
from ..errors import BitstreamError, CodecMismatchError, CodeczooError, WeightsError
from ..intensity import ImageSpec


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


#: tile edge (px) of adaptive iterations: the regions that get their own iteration count
#: (smaller regions follow the image better, but every tile edge costs the network context)
ADAPTIVE_TILE_SIZE = 128


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
    # 2: position-major code order (payload layouts 2, 3); 3: learned entropy stage and
    # per-tile iteration maps (layout bits 2 and 3)
    codec_version: ClassVar[str] = "3"
    reads_codec_versions: ClassVar[tuple[str, ...]] = ("1", "2")  # 1: layouts 0 and 1 only
    coding_options: ClassVar[tuple[str, ...]] = ("entropy", "rate_control", "adaptive_tile_size")
    #: PSNR targets (dB) that ``rate_control="psnr"`` takes as ``quality``, and its defaults
    psnr_targets: ClassVar[tuple[int, ...]] = tuple(recurrent_payload.PSNR_TARGETS)
    psnr_eval_targets: ClassVar[tuple[int, ...]] = (30, 32, 34, 36, 38, 40, 42, 44, 46)
    default_psnr_target: ClassVar[int] = 40
    learned: ClassVar[bool] = True
    unit_values: ClassVar[bool] = True
    progressive: ClassVar[bool] = True

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
        self.spatial_multiple = self.downsampling
        self.gzip = GzipStage()
        #: tiles per network batch when several images are coded together (``encode_batch``);
        #: ``None``: ``tile_batch``. An execution setting (more memory, fuller GPUs), not an
        #: argument of the weights.
        self.batch_tiles: int | None = None
        self._hash_cache: tuple[tuple, bytes] | None = None
        #: entropy stage of the byte layer: "gzip" (the paper's, default) or "learned"
        #: (:mod:`codeczoo.entropy.learned_stage`); rate control: "iterations" (``quality`` =
        #: iterations everywhere) or "psnr" (``quality`` = a PSNR target in dB, iterations
        #: chosen per tile of ``adaptive_tile_size`` px: :mod:`codeczoo.coding.adaptive`).
        #: Execution settings, not arguments of the weights: :meth:`configure_coding`.
        self.entropy = "gzip"
        self.rate_control = "iterations"
        self.adaptive_tile_size = ADAPTIVE_TILE_SIZE
        self._iteration_qualities = (self.qualities, self.default_quality)
        self._entropy_models: dict[bytes, object] = {}

    # -- coding options -------------------------------------------------------------------------
    def configure_coding(self, entropy: str | None = None, rate_control: str | None = None,
                         adaptive_tile_size: int | None = None) -> "RecurrentBinaryCodec":
        """Choose the entropy stage and the rate control of the byte layer (decoding needs
        neither: the payload records both).  ``rate_control="psnr"`` makes ``quality`` a PSNR
        target in dB (:attr:`psnr_targets`, default :attr:`default_psnr_target`)."""
        if entropy is not None:
            if entropy not in ("gzip", "learned"):
                raise CodeczooError(f"entropy must be 'gzip' or 'learned', got {entropy!r}")
            self.entropy = entropy
        if adaptive_tile_size is not None:
            size = int(adaptive_tile_size)
            if size < self.downsampling or size % self.downsampling or size > self.tile_size:
                raise CodeczooError(f"adaptive_tile_size must be a multiple of {self.downsampling} "
                                    f"in {self.downsampling}..{self.tile_size}, got {adaptive_tile_size!r}")
            self.adaptive_tile_size = size
        if rate_control is not None:
            if rate_control not in ("iterations", "psnr"):
                raise CodeczooError(f"rate_control must be 'iterations' or 'psnr', got {rate_control!r}")
            if rate_control != self.rate_control:
                if rate_control == "psnr":
                    self._iteration_qualities = (self.qualities, self.default_quality)
                    self.qualities, self.default_quality = self.psnr_targets, self.default_psnr_target
                    self.eval_qualities = self.psnr_eval_targets
                else:
                    self.qualities, self.default_quality = self._iteration_qualities
                    self.eval_qualities = ()
            self.rate_control = rate_control
        return self

    @property
    def label(self) -> str:
        options = [f"entropy={self.entropy}"] if self.entropy != "gzip" else []
        if self.rate_control != "iterations":
            options.append(f"rate_control={self.rate_control}")
            if self.adaptive_tile_size != ADAPTIVE_TILE_SIZE:
                options.append(f"adaptive_tile_size={self.adaptive_tile_size}")
        return "@".join([self.codec_name, *options])

    def coding_state(self) -> dict:
        state = {}
        if self.entropy != "gzip":
            state["entropy"] = self.entropy
            state["entropy_model"] = self.entropy_model()[1].hex()
        if self.rate_control != "iterations":
            state["rate_control"] = self.rate_control
            state["adaptive_tile_size"] = self.adaptive_tile_size
        return state

    def entropy_model(self) -> tuple[object, bytes]:
        """The learned entropy stage's context model for these weights, and its 8-byte hash
        (:mod:`codeczoo.entropy.models`); ``WeightsError`` if none is registered."""
        from ..entropy import models as entropy_models

        base = self.weights_hash().hex()
        located = entropy_models.for_base(self.codec_name, base)
        if located is None:
            raise WeightsError(
                f"{self.codec_name} weights {base} have no learned entropy model: train one "
                f"(codeczoo fit-entropy --codec {self.codec_name}) or use entropy='gzip'")
        return self._entropy_model(located)

    def entropy_model_for_payload(self, digest: bytes):
        """The context model whose hash a payload records (``BitstreamError`` if unknown)."""
        from ..entropy import models as entropy_models

        if digest in self._entropy_models:
            return self._entropy_models[digest]
        located = entropy_models.by_hash(self.codec_name, digest.hex())
        if located is None:
            raise CodecMismatchError(
                f"bitstream was coded with {self.codec_name}'s learned entropy model "
                f"{digest.hex()}, which no registry holds")
        return self._entropy_model(located)[0]

    def _entropy_model(self, located) -> tuple[object, bytes]:
        from ..entropy import models as entropy_models

        digest = bytes.fromhex(located.entry["weights_hash"])
        if digest not in self._entropy_models:
            self._entropy_models[digest] = entropy_models.read(located)
        return self._entropy_models[digest], digest

    def check_header(self, header: Header) -> None:
        """As :meth:`Codec.check_header`; the quality is an iteration count or, for adaptive
        payloads, a PSNR target: the payload head says which (checked when it is parsed)."""
        if header.quality not in range(1, self.max_iterations + 1) and \
                header.quality not in self.psnr_targets:
            raise BitstreamError(f"header holds an invalid quality {header.quality}")
        qualities, self.qualities = self.qualities, ()
        try:
            super().check_header(header)
        finally:
            self.qualities = qualities

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
    def forward(self, x: Tensor, iterations: int | None = None, *, step=None) -> dict:
        """Run ``iterations`` coding iterations on ``x`` (B, 1, H, W) in [0, 1].

        ``iterations`` defaults to ``default_quality`` (``codeczoo.load(name, quality=q)``) in
        training and eval mode alike, so ``quality`` means the same in both; training over every
        rate passes ``iterations=max_iterations`` (codeczoo's ``CodecModule`` does:
        ``train_iterations``).
        ``step`` replaces :meth:`iteration` for each iteration (training passes a
        ``torch.compile``-d one: one compiled graph serves every iteration, whatever ``T``).

        Returns ``{"x_hat": final reconstruction (B, 1, H, W) in image range (not clamped),
        "likelihoods": {"codes": per-bit likelihoods (:meth:`code_likelihoods`)},
        "residuals": (T, B, 1, H, W) x - x_hat_t}``.
        """
        self._check_input(x)
        t_max = self._iterations(iterations, self.default_quality)
        step = step or self.iteration
        target = x - 0.5
        x_hat = torch.zeros_like(target)
        state = (None, None)
        residuals, codes = [], []
        for _ in range(t_max):
            bits, x_hat, state = step(target, x_hat, state)
            residuals.append(target - x_hat)
            codes.append(bits)
        return {
            "x_hat": x_hat + 0.5,
            "likelihoods": {"codes": self.code_likelihoods(torch.stack(codes))},
            "residuals": torch.stack(residuals),
        }

    def code_likelihoods(self, codes: Tensor) -> Tensor:
        """Per-bit likelihoods of codes (T, B, C, h, w), as (B, T*C, h, w).

        With ``entropy="learned"``: each bit's probability under the learned context model
        (binned as the coder uses it), differentiable in the codes, so CompressAI's
        ``RateDistortionLoss`` gets a rate term whose gradient reaches the encoder (the context
        model itself is not a submodule: it has its own weights and card, and the codec's
        weights hash stays that of the codec).  With the gzip stage: 0.5 per bit, detached:
        CompressAI's ``sum(log p) / (-ln 2 * N * H * W)`` is then the raw code rate
        ``T * bpp_per_iteration``, which DEFLATE's real rate is below.
        """
        t, b, c, h, w = codes.shape
        if self.entropy == "learned":
            context, _ = self.entropy_model()
            p = context.likelihoods(codes.float()).to(codes.dtype)
        else:
            p = torch.full_like(codes, 0.5).detach()
        return p.permute(1, 0, 2, 3, 4).reshape(b, t * c, h, w)

    def iteration(self, target: Tensor, x_hat: Tensor, state: tuple) -> tuple[Tensor, Tensor, tuple]:
        """One coding iteration on the centred image ``target`` given the reconstruction so far
        (zeros before the first): ``(codes, new x_hat, new state)``; ``state`` is
        ``(encoder state, decoder state)``, ``(None, None)`` before the first iteration."""
        features, enc_state = self.encoder(target - x_hat, state[0])
        bits = self.binarizer(features)
        out, dec_state = self.decoder(bits, state[1])
        x_hat = out + self.gamma * x_hat if self.gamma else out
        return bits, x_hat, (enc_state, dec_state)

    @staticmethod
    def residual_loss(output: dict) -> Tensor:
        """Toderici et al.'s training loss: mean absolute residual, summed over iterations."""
        residuals = output["residuals"]
        return residuals.abs().flatten(1).mean(dim=1).sum()

    @torch.no_grad()
    def encode_progressive(self, x: Tensor, iterations: int) -> tuple[Tensor, Tensor]:
        """As :meth:`encode_codes`, plus the reconstruction in [0, 1] after every iteration
        (T, B, 1, H, W), not clamped (adaptive iterations measure each tile's error with it)."""
        self._check_input(x)
        target = self._to_model(x) - 0.5
        x_hat = torch.zeros_like(target)
        enc_state = dec_state = None
        codes, x_hats = [], []
        for _ in range(iterations):
            features, enc_state = self.encoder(target - x_hat, enc_state)
            bits = self.binarizer(features)
            codes.append(bits)
            out, dec_state = self.decoder(bits, dec_state)
            x_hat = out + self.gamma * x_hat if self.gamma else out
            x_hats.append(x_hat + 0.5)
        return torch.stack(codes), torch.stack(x_hats)

    @torch.no_grad()
    def encode_codes(self, x: Tensor, iterations: int) -> Tensor:
        """Binary codes of ``x`` (B, 1, H, W) in [0, 1]: tensor (T, B, C, h, w) of +-1 in the
        model's dtype, on its device (``x`` is moved there first).

        Runs the encoder and (to form residuals) the decoder; call in eval mode for
        deterministic codes.
        """
        self._check_input(x)
        target = self._to_model(x) - 0.5
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
        """Reconstruction in [0, 1] (B, 1, H, W) from codes (T, B, C, h, w) of any dtype (cast to
        the model's dtype and device); not clamped."""
        x_hat = None
        dec_state = None
        for bits in self._to_model(codes):
            out, dec_state = self.decoder(bits, dec_state)
            x_hat = out + self.gamma * x_hat if (self.gamma and x_hat is not None) else out
        return x_hat + 0.5

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def _to_model(self, t: Tensor) -> Tensor:
        """``t`` on the model's device, in its floating dtype (fp16, bf16, fp32 or fp64), so the
        tensor layer works whatever ``.to()`` the model was given."""
        p = next(self.parameters())
        return t.to(device=p.device, dtype=p.dtype)

    @staticmethod
    def _bits_numpy(codes: Tensor) -> np.ndarray:
        """+-1 codes of any dtype (bf16 has no NumPy twin) -> uint8 {0, 1} on the host."""
        return (codes > 0).to(torch.uint8).cpu().numpy()

    def compress(self, x: Tensor, iterations: int | None = None) -> dict:
        """CompressAI ``compress``: ``{"strings": [[bytes per batch item]], "shape": (h, w, T)}``.

        Each item's codes (T, C, h, w) are packed 8 to a byte in position-major order
        (:func:`pack_codes`) and DEFLATEd (the gzip stage).
        ``iterations`` defaults to ``default_quality``.  Uses the module's current mode; call
        ``eval()`` first for deterministic codes.
        """
        t = self._iterations(iterations, self.default_quality)
        codes = self.encode_codes(x, t)
        bits = self._bits_numpy(codes)
        strings = [self.gzip.compress(pack_codes(bits[:, i])) for i in range(x.shape[0])]
        h, w = codes.shape[-2:]
        return {"strings": [strings], "shape": (int(h), int(w), t)}

    @torch.no_grad()
    def decompress(self, strings, shape) -> dict:
        """CompressAI ``decompress``: ``{"x_hat": (B, 1, H, W) clamped to [0, 1]}`` in the model's
        dtype, on its device."""
        h, w, t = (int(v) for v in shape)
        self._iterations(t, t)
        items = strings[0] if strings and isinstance(strings[0], (list, tuple)) else strings
        shape = (t, self.code_channels, h, w)
        nbytes = (t * self.code_channels * h * w + 7) // 8
        raws = [self.gzip.decompress(s, max_length=nbytes) for s in items]
        if any(len(raw) != nbytes for raw in raws):
            raise BitstreamError(f"a string holds the wrong number of code bytes ({nbytes} expected)")
        codes = np.stack([unpack_codes(raw, shape) for raw in raws], axis=1)
        x_hat = self.decode_codes(torch.from_numpy(codes))
        return {"x_hat": x_hat.clamp(0.0, 1.0)}

    def aux_loss(self) -> Tensor:
        """No entropy bottleneck to fit: zero, connected to the parameters so that CompressAI
        trainers can call ``aux_loss().backward()`` (zero gradients).  The learned entropy
        stage is fitted after the codec (``codeczoo fit-entropy``), not through this loss."""
        return sum((p.reshape(-1)[0] * 0.0 for p in self.parameters() if p.requires_grad),
                   torch.zeros((), device=self._device()))

    # -- weights ----------------------------------------------------------------------------------
    def weights_hash(self) -> bytes:
        """First 8 bytes of the sha256 of the weights (cached until a tensor changes)."""
        return cached_weights_hash(self)

    @classmethod
    def arguments_from_state_dict(cls, state_dict) -> dict:
        """Constructor arguments that fit ``state_dict`` (subclasses infer their sizes)."""
        return {}

    @classmethod
    def from_state_dict(cls, state_dict, **kwargs):
        """CompressAI contract: rebuild a model from its weights (sizes inferred from shapes).

        Weights a registry holds (the shipped ones, or a user's export) are rebuilt exactly as
        registered: the arguments recorded with them (``max_iterations``, ``gamma``, ...) and the
        zoo name.  Other weights get the sizes their shapes imply, and ``kwargs`` set what
        weights do not record (``gamma``, ``max_iterations``, ``default_quality``, ``tile_size``,
        ``tile_batch``, a parameter-free choice such as the paper codec's ``pooling``); class
        defaults otherwise.
        """
        from ..registry import build, find_registered

        found = find_registered(cls, state_dict_hash(state_dict).hex())
        if found is not None:
            name, arguments = found
            model = build(name, **{**arguments, **kwargs})
        else:
            model = cls(**{**cls.arguments_from_state_dict(state_dict), **kwargs})
        model.load_state_dict(state_dict)
        return model

    # -- byte layer: the payload format lives in codeczoo.coding.recurrent_payload ------------------
    def encode_values(self, values: np.ndarray, spec: ImageSpec, quality: int
                      ) -> tuple[bytes, tuple[int, int]]:
        return recurrent_payload.encode(self, values, spec, quality)

    def decode_values(self, payload: bytes, header: Header) -> np.ndarray:
        return recurrent_payload.decode(self, payload, header)

    def encode_values_batch(self, values, specs, quality: int) -> list[tuple[bytes, tuple[int, int]]]:
        """Several images' tiles in shared network batches (``batch_tiles``, default
        ``tile_batch``); DEFLATE in a thread pool beside the network."""
        return recurrent_payload.encode_batch(self, list(zip(values, specs)), quality,
                                              self.batch_tiles)

    def decode_values_batch(self, payloads, headers) -> list[np.ndarray]:
        return recurrent_payload.decode_batch(self, list(zip(payloads, headers)), self.batch_tiles)

    @classmethod
    def describe_payload(cls, payload: bytes) -> dict:
        return recurrent_payload.describe(payload)

    def derivation_description(self, header: Header, payload: bytes) -> str:
        """As :meth:`Codec.derivation_description`, saying when the quality is a PSNR target
        and which entropy stage coded the codes."""
        info = recurrent_payload.describe(payload)
        text = super().derivation_description(header, payload)
        if info.get("rate_control", "").startswith("psnr"):
            text = text.replace(f"quality {header.quality}",
                                f"PSNR target {header.quality} dB, adaptive iterations")
        if info.get("entropy_stage") == "learned":
            text += f", learned entropy model {info['entropy_model']}"
        return text

    def decode_unit_values(self, payload: bytes, header: Header) -> np.ndarray:
        """The decoder's reconstruction before rounding: float32 (H, W) in [0, 1] (not clamped);
        the residual layer (:mod:`codeczoo.residual`) rounds it itself, stably across machines."""
        return recurrent_payload.decode_unit(self, payload, header)



def check_positive(**sizes) -> None:
    """Raise ``CodeczooError`` with one line for a non-positive architecture size."""
    for name, value in sizes.items():
        values = value if isinstance(value, (tuple, list)) else (value,)
        if not values or any(int(v) < 1 for v in values):
            raise CodeczooError(f"{name} must be positive, got {value!r}")
