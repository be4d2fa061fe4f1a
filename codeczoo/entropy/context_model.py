"""A learned context model for the binary codes of recurrent codecs.

Toderici et al. 2017 ("Full Resolution Image Compression with Recurrent Neural Networks", CVPR,
arXiv:1608.05148) replaced generic entropy coding of the codes with a binary recurrent context
model.  This is a small convolutional one over the same codes, ordered so decoding stays
parallel: iteration by iteration, and inside an iteration in two checkerboard passes (the
"anchor" positions, ``(row + column)`` even, then the others).  A bit is predicted from what the
decoder already has:

* the codes of the two previous iterations and the sum of all previous iterations' codes, at its
  own and nearby positions (two 3x3 convolutions: a 5x5 neighbourhood);
* in the second pass, the current iteration's anchor codes around it;
* which iteration and which pass this is (constant planes) and whether the position is an anchor.

**Exact on every machine.**  Encoder and decoder must pick the same probability for every bit,
or the stream decodes to garbage.  The network is therefore fixed-point: weights are integers
times ``2**-e`` (at most 127 in magnitude, ``e`` chosen per layer), hidden activations are
integers times ``2**-ACT_BITS`` in ``[0, 127]``, and inference runs in float64, where every
product and every partial sum of such numbers is an exact integer multiple of ``2**-(e +
ACT_BITS)`` far below ``2**53``: the result does not depend on summation order, threads, batch
composition or the BLAS library.  The final logit picks one of :data:`~.binary_coder.BINS`
probability bins by ``floor(logit / LOGIT_STEP)``, also exact.  Training uses the same
quantization with straight-through gradients (quantization-aware), in float32.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .binary_coder import BINS, LOGIT_STEP

WEIGHT_LEVELS = 127   # weights: integers in [-127, 127] times 2**-e
ACT_BITS = 4          # hidden activations: integers in [0, 127] times 2**-4
ACT_LEVELS = 127
MAX_EXPONENT = 24


def _ste(x: Tensor, q: Tensor) -> Tensor:
    """``q`` forward, identity gradient to ``x`` (straight-through); exactly ``q`` without
    gradients (``x + (q - x)`` need not round to ``q``)."""
    if not (torch.is_grad_enabled() and x.requires_grad):
        return q
    return x + (q - x).detach()


class FixedPointConv(nn.Conv2d):
    """A convolution whose weights and bias are used on a fixed-point grid (see module doc).

    ``in_bits``: fractional bits of its input (0 for integer codes, ``ACT_BITS`` after a hidden
    layer).  The weight exponent follows from the largest weight, so it is recomputed
    identically from stored weights.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, in_bits: int):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.in_bits = in_bits

    def exponent(self) -> int:
        largest = float(self.weight.detach().abs().max())
        if largest == 0.0:
            return 0
        e = 0
        while e < MAX_EXPONENT and largest * 2.0 ** (e + 1) <= WEIGHT_LEVELS:
            e += 1
        while e > -MAX_EXPONENT and largest * 2.0 ** e > WEIGHT_LEVELS:
            e -= 1
        return e

    def quantized(self, dtype: torch.dtype, device=None) -> tuple[Tensor, Tensor]:
        e = self.exponent()
        w = self.weight.to(device=device, dtype=dtype)
        wq = torch.clamp(torch.round(w * 2.0 ** e), -WEIGHT_LEVELS, WEIGHT_LEVELS) / 2.0 ** e
        b = self.bias.to(device=device, dtype=dtype)
        scale = 2.0 ** (e + self.in_bits)
        bq = torch.clamp(torch.round(b * scale), -(1 << 40), 1 << 40) / scale
        return _ste(w, wq), _ste(b, bq)

    def forward(self, x: Tensor) -> Tensor:
        w, b = self.quantized(x.dtype, x.device)
        return F.conv2d(x, w, b, padding=self.padding)


def _quantize_activation(a: Tensor) -> Tensor:
    a = torch.clamp(a, 0.0, ACT_LEVELS / 2.0 ** ACT_BITS)
    q = torch.clamp(torch.floor(a * 2.0 ** ACT_BITS + 0.5), 0, ACT_LEVELS) / 2.0 ** ACT_BITS
    return _ste(a, q)


def anchor_mask(h: int, w: int, dtype=torch.float64, device=None) -> Tensor:
    """1 at checkerboard anchors (``(row + column)`` even), 0 elsewhere: (h, w)."""
    rows = torch.arange(h, device=device).view(-1, 1)
    cols = torch.arange(w, device=device).view(1, -1)
    return ((rows + cols) % 2 == 0).to(dtype)


class BinaryContextModel(nn.Module):
    """P(bit = 1) of every code bit of a recurrent codec from the bits decoded before it.

    Args:
        code_channels: bits per latent position per iteration (the codec's ``code_channels``).
        max_iterations: the codec's ``max_iterations``.
        hidden: width of the two hidden layers.
    """

    def __init__(self, code_channels: int = 32, max_iterations: int = 8, hidden: int = 64,
                 groups: int = 4):
        super().__init__()
        if code_channels % groups:
            raise ValueError(f"code_channels {code_channels} is not a multiple of groups {groups}")
        self.code_channels = int(code_channels)
        self.max_iterations = int(max_iterations)
        self.hidden = int(hidden)
        self.groups = int(groups)
        inputs = 4 * self.code_channels + self.max_iterations + 2 * self.groups + 1
        self.layers = nn.ModuleList([
            FixedPointConv(inputs, self.hidden, 3, in_bits=0),
            FixedPointConv(self.hidden, self.hidden, 3, in_bits=ACT_BITS),
            FixedPointConv(self.hidden, self.code_channels, 1, in_bits=ACT_BITS),
        ])

    def arguments(self) -> dict:
        return {"code_channels": self.code_channels, "max_iterations": self.max_iterations,
                "hidden": self.hidden, "groups": self.groups}

    def steps(self, iterations: int) -> list[tuple[int, int, int]]:
        """The decoding steps (iteration, pass, group) of ``iterations`` iterations, in order."""
        return [(t, p, g) for t in range(iterations) for p in (0, 1) for g in range(self.groups)]

    def step_mask(self, p: int, g: int, h: int, w: int) -> np.ndarray:
        """bool (C, h, w): the bits step ``(p, g)`` of an iteration decodes."""
        anchors = anchor_mask(h, w, dtype=torch.bool).numpy()
        positions = anchors if p == 0 else ~anchors
        mask = np.zeros((self.code_channels, h, w), dtype=bool)
        size = self.code_channels // self.groups
        mask[g * size:(g + 1) * size] = positions
        return mask

    def known_mask(self, p: int, g: int, h: int, w: int, dtype=torch.float64, device=None
                   ) -> Tensor:
        """(C, h, w) 1 where the current iteration's bits are decoded before step ``(p, g)``."""
        anchors = anchor_mask(h, w, dtype, device)
        size = self.code_channels // self.groups
        known = torch.zeros(self.code_channels, h, w, dtype=dtype, device=device)
        if p == 1:
            known += anchors
        known[:g * size] += anchors if p == 0 else 1.0 - anchors
        return known

    # -- contexts -------------------------------------------------------------------------------
    def context(self, codes: Tensor, t: int, p: int, g: int) -> Tensor:
        """The network input of step ``(t, p, g)``: codes (T', B, C, h, w) of +-1 (only the bits
        decoded before that step are read: see :meth:`known_mask`)."""
        _, b, c, h, w = codes.shape
        zeros = codes.new_zeros(b, c, h, w)
        prev1 = codes[t - 1] if t >= 1 else zeros
        prev2 = codes[t - 2] if t >= 2 else zeros
        total = codes[:t].sum(dim=0) if t >= 1 else zeros
        current = codes[t] * self.known_mask(p, g, h, w, codes.dtype, codes.device)
        planes = codes.new_zeros(b, self.max_iterations + 2 * self.groups + 1, h, w)
        planes[:, t] = 1.0
        planes[:, self.max_iterations + p * self.groups + g] = 1.0
        planes[:, -1] = anchor_mask(h, w, codes.dtype, codes.device)
        return torch.cat([prev1, prev2, total, current, planes], dim=1)

    def logits(self, x: Tensor) -> Tensor:
        """Fixed-point forward: logits (B, C, h, w) of P(bit = 1)."""
        x = _quantize_activation(self.layers[0](x))
        x = _quantize_activation(self.layers[1](x))
        return self.layers[2](x)

    def all_logits(self, codes: Tensor, steps: list[tuple[int, int, int]] | None = None
                   ) -> tuple[Tensor, Tensor]:
        """Logits with the decoder's contexts (teacher forcing: the true codes stand in for
        decoded ones) of the bits of ``steps`` (default: all): ``(logits, mask)``, both (T, B, C,
        h, w), each bit's logit from its own step, ``mask`` true where a step covered it."""
        t_count, b, c, h, w = codes.shape
        steps = self.steps(t_count) if steps is None else steps
        out = self.logits(torch.cat([self.context(codes, *step) for step in steps]))
        out = out.view(len(steps), b, c, h, w)
        logits = torch.zeros_like(codes)
        mask = torch.zeros(codes.shape, dtype=torch.bool, device=codes.device)
        for k, (t, p, g) in enumerate(steps):
            m = torch.from_numpy(self.step_mask(p, g, h, w)).to(codes.device)
            logits[t] = torch.where(m, out[k], logits[t])
            mask[t] |= m
        return logits, mask

    @staticmethod
    def bins(logits: Tensor) -> Tensor:
        """Probability bin of each logit (exact: see the module docstring), int64."""
        return torch.clamp(torch.floor(logits / LOGIT_STEP) + BINS // 2, 0, BINS - 1).long()

    @staticmethod
    def binned_logits(logits: Tensor) -> Tensor:
        """The bins' centre logits, with straight-through gradients: what the coder pays."""
        centre = (BinaryContextModel.bins(logits).to(logits.dtype) - BINS // 2 + 0.5) * LOGIT_STEP
        return _ste(logits, centre)

    def likelihoods(self, codes: Tensor) -> Tensor:
        """P(each code bit as it is) under the binned model: (T, B, C, h, w), differentiable in
        the model's weights and in ``codes`` (for CompressAI's rate term)."""
        logit = self.binned_logits(self.all_logits(codes)[0])
        return torch.sigmoid(logit * codes)

    def bits_loss(self, codes: Tensor, steps: list[tuple[int, int, int]] | None = None) -> Tensor:
        """Mean cost in bits per code bit of ``codes`` (+-1) under the binned model, over the
        bits of ``steps`` (default: all; training samples a few per tile)."""
        logits, mask = self.all_logits(codes, steps)
        cost = F.softplus(-self.binned_logits(logits) * codes)
        return cost[mask].mean() / math.log(2.0)

    # -- exact inference ---------------------------------------------------------------------------
    @torch.no_grad()
    def exact_bins(self, x: Tensor) -> Tensor:
        """Bins of a context batch, in float64 on the CPU (identical on every machine)."""
        return self.bins(self.logits(x.to(device="cpu", dtype=torch.float64)))
