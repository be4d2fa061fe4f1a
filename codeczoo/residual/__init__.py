"""Lossless and near-lossless coding with a guaranteed per-pixel error bound, for any codec.

Lossy plus residual coding (Bai et al., CVPR 2021, arXiv:2103.17015; TPAMI 2024,
arXiv:2209.04847): a zoo codec codes the image lossy, a learned conditional model codes the
residual exactly (``K = 0``) or quantized with step ``2K + 1`` (``|x - x_rec| <= K``).

* :mod:`~codeczoo.residual.codec`: :class:`ResidualCodec` (registered as ``residual``), the
  payload layout and :func:`bounded`, the way to wrap any codec;
* :mod:`~codeczoo.residual.coder`: the passes that code one residual;
* :mod:`~codeczoo.residual.model`: the network and its training objective;
* :mod:`~codeczoo.residual.tables`: the CDF table bank and the integer table choice;
* :mod:`~codeczoo.residual.stable`: stable rounding of floats into integers, side information;
* :mod:`~codeczoo.entropy.rans`: CompressAI's rANS coder, made safe for any input.
"""

from .codec import ResidualCodec, bounded

__all__ = ["ResidualCodec", "bounded"]
