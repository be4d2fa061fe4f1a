"""Training losses for the zoo's two kinds of learned codec.

* :class:`RecurrentResidualLoss` for the recurrent binary codecs (Toderici et al., "Full
  Resolution Image Compression with Recurrent Neural Networks", CVPR 2017, eq. 5; also used for
  Sushmit et al. 2019): the sum over iterations of the mean ``|r_t|^p`` of each iteration's
  residual ``r_t = x - x_hat_t``. The rate of such codecs is fixed by the iteration count, so the
  loss has no rate term.
* :class:`RateDistortionLoss` for codecs with a learned entropy model (Ballé et al. 2017/2018, as
  in CompressAI's ``examples/train.py``): ``lmbda * D + bpp`` where ``bpp`` is the likelihood
  estimate ``sum(-log2 p) / pixels`` and ``D`` is the mean squared error **in the 8-bit
  convention** ``255**2 * MSE([0, 1])``, exactly CompressAI's, so CompressAI's published lambdas
  (0.0018 ... 0.0483 for qualities 1 ... 8) keep their meaning on our unit-range images whatever
  the bit depth of the source.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import Tensor, nn


def likelihood_bpp(likelihoods: Mapping[str, Tensor], num_pixels: int) -> Tensor:
    """Estimated bits per pixel from a CompressAI ``likelihoods`` dict: ``sum(log2 1/p) / N``."""
    if num_pixels <= 0:
        raise ValueError("num_pixels must be positive")
    total = sum(torch.log(lik.float()).sum() for lik in likelihoods.values())
    return total / (-math.log(2) * num_pixels)


class RecurrentResidualLoss(nn.Module):
    """Toderici 2017's loss: ``sum_t mean(|r_t|^p)`` over the iterations of a recurrent codec.

    Args:
        p: 1 (the papers' L1, default) or 2 (L2).

    ``forward(output)`` takes the codec's output dict, whose ``"residuals"`` has shape
    ``(T, B, C, H, W)``, and returns ``{"loss", "per_iteration"}``, the latter the per-iteration
    mean (a ``T``-vector, detached) for logging.
    """

    def __init__(self, p: int = 1):
        super().__init__()
        if p not in (1, 2):
            raise ValueError(f"p must be 1 or 2, got {p!r}")
        self.p = p

    def forward(self, output: Mapping[str, Tensor]) -> dict[str, Tensor]:
        residuals = output["residuals"].float()
        if residuals.dim() < 2:
            raise ValueError("residuals must have shape (T, B, ...)")
        err = residuals.abs() if self.p == 1 else residuals.square()
        per_iteration = err.flatten(1).mean(dim=1)
        return {"loss": per_iteration.sum(), "per_iteration": per_iteration.detach()}


class RateDistortionLoss(nn.Module):
    """``lmbda * 255**2 * MSE + bpp`` (CompressAI's ``RateDistortionLoss`` with metric "mse").

    Args:
        lmbda: the Lagrange multiplier (CompressAI's scale; 0.0130 is its quality 4).

    ``forward(output, target)`` returns ``{"loss", "mse", "bpp"}`` (bpp: likelihood estimate).
    """

    def __init__(self, lmbda: float = 0.0130):
        super().__init__()
        if not lmbda > 0:
            raise ValueError(f"lmbda must be positive, got {lmbda!r}")
        self.lmbda = float(lmbda)

    def forward(self, output: Mapping[str, Tensor], target: Tensor) -> dict[str, Tensor]:
        n, _, h, w = target.shape
        bpp = likelihood_bpp(output["likelihoods"], n * h * w)
        mse = torch.mean((output["x_hat"].float() - target.float()) ** 2)
        loss = self.lmbda * (255.0 ** 2) * mse + bpp
        return {"loss": loss, "mse": mse.detach(), "bpp": bpp.detach()}
