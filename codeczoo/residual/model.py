"""The learned conditional probability model of the residual (lossy plus residual coding).

After Bai et al., "Learning Scalable l-infinity-constrained Near-lossless Image Compression via
Joint Lossy Image and Residual Compression" (CVPR 2021, arXiv:2103.17015) and "Deep Lossy Plus
Residual Coding for Lossless and Near-lossless Image Compression" (TPAMI 2024, arXiv:2209.04847):
a lossy base reconstruction ``c0`` is refined by coding the residual ``x - c0``; a network predicts
each residual's distribution from the base reconstruction and from residuals decoded earlier,
and one model of the **unquantized** residual serves every error bound ``K`` (the quantized
symbol's probabilities are its CDF summed over the bin, see :mod:`codeczoo.residual.tables`).

What is ours (sized for a 2-core CPU, not the paper's network): the context order.  The image is
split into its four 2x2 phases (pixel unshuffle); four passes code them in the order
``(0,0), (1,1), (0,1), (1,0)``, each pass in parallel over the whole image, each seeing the base
reconstruction and the residuals of the phases coded before it::

    pass 0   pass 1   pass 2   pass 3        x = coded in this pass
    x .      o .      o x      o o           o = known (decoded earlier)
    . .      . x      . o      x o           . = not yet known

The phase ``(0,0)`` is itself a half-size image: it is coded first, by the same four passes one
level down (``levels = 2``), so only 1/16 of the pixels see the base reconstruction alone, 1/16
see diagonal neighbours two pixels away, 1/8 neighbours two pixels away, and the remaining 3/4
their nearest neighbours (4 diagonal, then 4, then all 8).

One small convolutional network (half resolution, 4 phases as channels) serves all passes of
both levels; it is told which phases are known by a mask, the level, and the bound by
``log((2K+1) / (2**bits - 1))``, and it returns, for every phase, the logistic location in units of its own scale (``a = mu / sigma``)
and ``log sigma`` in unit intensity (``sigma / (2**bits - 1)``), so one model serves every bit
depth.  Both outputs are O(1) floats: their quantization into table indices is made stable
across machines in :mod:`codeczoo.residual.stable`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import tables

PHASES = 4
#: pass p codes phase PASS_ORDER[p] (phase = 2 * row parity + column parity).
PASS_ORDER = (0, 3, 1, 2)
CONTEXT_GAIN = 16.0    # residuals in unit intensity are small; scale them towards O(1)
LOG_SIGMA_INIT = math.log(4.0 / 255.0)


def log_step_feature(step: int, bits: int) -> float:
    """The network's bound input: ``(log(D / (2**bits - 1)) + 6) / 3`` (about -1.7 .. 1.3)."""
    return (math.log(step / ((1 << bits) - 1)) + 6.0) / 3.0


def known_mask(pass_index: int) -> list[int]:
    """Phases known before pass ``pass_index`` (1) or not (0), in phase order."""
    mask = [0] * PHASES
    for phase in PASS_ORDER[:pass_index]:
        mask[phase] = 1
    return mask


class ResidualModel(nn.Module):
    """Predicts the residual's logistic distribution per phase (see the module docstring).

    Args:
        channels: width of the hidden layers.
        layers: number of 3x3 convolutions (each followed by ReLU) before two 1x1 layers.

    Buffers ``cdfs`` / ``cdf_lengths`` hold the quantized CDF bank
    (:func:`codeczoo.residual.tables.build_bank`): they travel with the weights so that every
    decoder codes against the encoder's very integers.
    """

    in_channels = 2 * PHASES      # base reconstruction and known residuals, per phase
    conditions = PHASES + 2       # known-phase mask, bound, level: constant over an image

    def __init__(self, channels: int = 24, layers: int = 3):
        super().__init__()
        if channels < 1 or layers < 1:
            raise ValueError("channels and layers must be positive")
        self.channels, self.layers = int(channels), int(layers)
        self.head = nn.Conv2d(self.in_channels, self.channels, 3, padding=1)
        # the constant inputs enter as a per-image bias of the first layer (cheaper than
        # constant planes, and free of border effects)
        self.condition = nn.Linear(self.conditions, self.channels)
        body: list[nn.Module] = [nn.ReLU(inplace=True)]
        for _ in range(self.layers - 1):
            body += [nn.Conv2d(self.channels, self.channels, 3, padding=1), nn.ReLU(inplace=True)]
        body += [nn.Conv2d(self.channels, self.channels, 1), nn.ReLU(inplace=True),
                 nn.Conv2d(self.channels, 2 * PHASES, 1)]
        self.net = nn.Sequential(*body)
        with torch.no_grad():
            last = self.net[-1]
            last.weight.mul_(0.1)
            last.bias.zero_()
            last.bias[PHASES:] = LOG_SIGMA_INIT
        bank, lengths = tables.build_bank()
        self.register_buffer("cdfs", torch.from_numpy(bank))
        self.register_buffer("cdf_lengths", torch.from_numpy(lengths))

    @property
    def halo(self) -> int:
        """Half-resolution rows of context each output depends on, above and below."""
        return self.layers

    def features(self, base: Tensor, context: Tensor, mask: Tensor, log_step: Tensor,
                 level: Tensor) -> tuple[Tensor, Tensor]:
        """Network inputs from half-resolution phase tensors (B, 4, h, w).

        ``base``: base reconstruction in unit intensity; ``context``: known residuals
        ``(x_rec - c0) / (2**bits - 1)``; ``mask``: (B, 4) 1 for known phases;
        ``log_step``: (B,) bound feature (:func:`log_step_feature`); ``level``: (B,) 0 for the
        full image, 1 for its subsampled phase (0,0).  Returns ``(planes (B, 8, h, w),
        conditions (B, 6))``.
        """
        b = base.shape[0]
        mask = mask.to(base.dtype)
        planes = torch.cat([base - 0.5, context * (CONTEXT_GAIN * mask.view(b, PHASES, 1, 1))],
                           dim=1)
        conditions = torch.cat([mask, log_step.view(b, 1).to(base.dtype),
                                level.view(b, 1).to(base.dtype)], dim=1)
        return planes, conditions

    def forward(self, planes: Tensor, conditions: Tensor) -> tuple[Tensor, Tensor]:
        """``(a, log_sigma)`` per phase, each (B, 4, h, w): ``mu = a * sigma``, sigma in unit intensity."""
        hidden = self.head(planes) + self.condition(conditions)[:, :, None, None]
        out = self.net(hidden)
        return out[:, :PHASES], out[:, PHASES:]


def unshuffle(image: Tensor) -> Tensor:
    """(B, 1, H, W) with even H, W -> (B, 4, H/2, W/2) phases."""
    return F.pixel_unshuffle(image, 2)


def log_bin_probability(lower: Tensor, upper: Tensor) -> Tensor:
    """``log(F(upper) - F(lower))`` for the standard logistic CDF ``F``, stable in both tails."""
    return (upper + torch.log(-torch.expm1(lower - upper)) - F.softplus(lower) - F.softplus(upper))


def bound_bits(x: Tensor, c0: Tensor, a: Tensor, log_sigma: Tensor, max_error: Tensor,
               bits: Tensor) -> Tensor:
    """Bits to code integer pixels ``x`` (any shape, integer-valued floats) with bound ``K``.

    Mirrors the coder: the quantizer is centred on ``c0 + round(mu)``, the symbol is the bin
    index of step ``2K + 1``, and its probability is the logistic CDF of the unquantized residual
    summed over the bin.  ``max_error`` and ``bits`` broadcast against ``x``.
    """
    scale = torch.exp2(bits) - 1.0
    sigma = torch.exp(log_sigma) * scale
    a = a.clamp(-tables.MEAN_LIMIT, tables.MEAN_LIMIT)
    mu = a * sigma
    step = 2.0 * max_error + 1.0
    centre = c0 + torch.round(mu.detach())
    d = x - centre
    q = torch.sign(d) * torch.div(d.abs() + max_error, step, rounding_mode="floor")
    lower = (centre + q * step - max_error - 0.5 - (c0 + mu)) / sigma
    upper = lower + step / sigma
    return -log_bin_probability(lower, upper) / math.log(2.0)


def quantize_residual(residual: np.ndarray | Tensor, max_error):
    """Symmetric bin index ``sign(d) * floor((|d| + K) / (2K + 1))`` (NumPy or torch, integer)."""
    step = 2 * max_error + 1
    if isinstance(residual, Tensor):
        return torch.sign(residual) * torch.div(residual.abs() + max_error, step,
                                                rounding_mode="floor")
    return np.sign(residual) * ((np.abs(residual) + max_error) // step)
