"""Toderici et al. 2017: the recurrent LSTM baseline, adapted to one-channel X-rays.

Toderici, Vincent, Johnston, Hwang, Minnen, Shor, Covell, "Full Resolution Image Compression with
Recurrent Neural Networks", CVPR 2017 (arXiv:1608.05148).  Sushmit et al. (2019) compare their
codec with its LSTM one-shot variant.

Shapes follow the widely used PyTorch port (for a 32 x 32 patch; one channel in and out here)::

    encoder   conv 3x3 s2, 64                                   16x16
              ConvLSTM 256, 3x3 s2, hidden 1x1                    8x8
              ConvLSTM 512, 3x3 s2, hidden 1x1                    4x4
              ConvLSTM 512, 3x3 s2, hidden 1x1                    2x2
    binarizer 1x1 conv -> 32, tanh, sign                          2x2x32 bits
    decoder   1x1 conv 32 -> 512
              ConvLSTM 512 (3x3, hidden 1x1), depth-to-space x2   4x4x128
              ConvLSTM 512 (3x3, hidden 1x1), depth-to-space x2   8x8x128
              ConvLSTM 256 (3x3, hidden 3x3), depth-to-space x2   16x16x64
              ConvLSTM 128 (3x3, hidden 3x3), depth-to-space x2   32x32x32
              1x1 conv -> 1, tanh / 2

32 bits per 16 x 16 block per iteration = 0.125 bpp per iteration; 16 iterations reach 2 bpp.
No biases (as in the port).  One class, three zoo entries (variants are argument sets, declared
at the end of this file):

* ``toderici2017-lstm-oneshot`` (gamma = 0, the variant Sushmit et al. compare with),
* ``toderici2017-lstm-additive`` (gamma = 1),
* ``toderici2017-lstm-oneshot-small`` (same architecture, every width divided by 4: a model
  that trains on a CPU, not the published one).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..layers import ConvLSTMCell, StridedConvLSTMEncoder, step_stack
from ..cards import SUSHMIT2019, TODERICI2017, CodecCard, InputFormat
from ..registry import register_codec
from .base import Binarizer, RecurrentBinaryCodec, check_positive


class TodericiEncoder(StridedConvLSTMEncoder):
    """Strided conv, then strided ConvLSTMs (hidden kernel 1); state is one (h, c) per cell."""

    def __init__(self, stem_channels: int, lstm_channels: Sequence[int], in_channels: int = 1):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, stem_channels, 3, stride=2, padding=1, bias=False)
        self.build_cells(stem_channels, lstm_channels, 3, hidden_kernel_size=1, bias=False)

    def first_layer(self, x: Tensor) -> Tensor:
        return self.stem(x)


class TodericiDecoder(nn.Module):
    """1x1 conv, ConvLSTM + depth-to-space x2 per level, 1x1 conv, tanh / 2."""

    def __init__(self, code_channels: int, first_channels: int, lstm_channels: Sequence[int],
                 hidden_kernels: Sequence[int], out_channels: int = 1):
        super().__init__()
        self.head = nn.Conv2d(code_channels, first_channels, 1, bias=False)
        cells, width = [], first_channels
        for hidden, hk in zip(lstm_channels, hidden_kernels):
            if hidden % 4:
                raise ValueError(f"decoder ConvLSTM widths must be multiples of 4, got {hidden}")
            cells.append(ConvLSTMCell(width, hidden, 3, hidden_kernel_size=hk, bias=False))
            width = hidden // 4
        self.cells = nn.ModuleList(cells)
        self.tail = nn.Conv2d(width, out_channels, 1, bias=False)

    def forward(self, bits: Tensor, state=None):
        x, new_state = step_stack(self.cells, self.head(bits), state,
                                  between=lambda h: F.pixel_shuffle(h, 2))
        return torch.tanh(self.tail(x)) / 2, new_state


class Toderici2017(RecurrentBinaryCodec):
    """Toderici et al. 2017 LSTM codec (CVPR 2017, arXiv:1608.05148), one channel.

    Args:
        stem_channels: encoder's first (plain, strided) convolution (64).
        encoder_channels: widths of the three strided encoder ConvLSTMs (256, 512, 512).
        code_channels: binarizer bits per 16 x 16 block per iteration (32).
        decoder_first_channels: width of the decoder's 1x1 input convolution (512).
        decoder_channels: widths of the four decoder ConvLSTMs (512, 512, 256, 128).
        decoder_hidden_kernels: their hidden-to-hidden kernels (1, 1, 3, 3).
        gamma: 0 one-shot, 1 additive.
        max_iterations: 16 (2 bpp raw).
        default_quality: iterations when none is given (8 = 1 bpp raw).
        tile_size, tile_batch: byte-layer tiling (see :mod:`codeczoo.models.base`).
    """

    downsampling = 16

    def __init__(self, stem_channels: int = 64,
                 encoder_channels: Sequence[int] = (256, 512, 512),
                 code_channels: int = 32, decoder_first_channels: int = 512,
                 decoder_channels: Sequence[int] = (512, 512, 256, 128),
                 decoder_hidden_kernels: Sequence[int] = (1, 1, 3, 3),
                 gamma: float = 0.0, max_iterations: int = 16, default_quality: int = 8,
                 tile_size: int = 512, tile_batch: int = 1):
        check_positive(stem_channels=stem_channels, encoder_channels=encoder_channels,
                       code_channels=code_channels, decoder_first_channels=decoder_first_channels,
                       decoder_channels=decoder_channels)
        if len(encoder_channels) != 3 or len(decoder_channels) != 4 or len(decoder_hidden_kernels) != 4:
            raise ValueError("Toderici 2017 has 3 encoder and 4 decoder ConvLSTMs "
                             "(downsampling 16)")
        super().__init__(code_channels, max_iterations, gamma, default_quality, tile_size,
                         tile_batch)
        self.encoder = TodericiEncoder(stem_channels, encoder_channels)
        self.binarizer = Binarizer(encoder_channels[-1], code_channels)
        self.decoder = TodericiDecoder(code_channels, decoder_first_channels, decoder_channels,
                                       decoder_hidden_kernels)

    @classmethod
    def arguments_from_state_dict(cls, state_dict) -> dict:
        enc = [state_dict[f"encoder.cells.{i}.conv_ih.weight"].shape[0] // 4 for i in range(3)]
        dec = [state_dict[f"decoder.cells.{i}.conv_ih.weight"].shape[0] // 4 for i in range(4)]
        hks = [state_dict[f"decoder.cells.{i}.conv_hh.weight"].shape[-1] for i in range(4)]
        return {
            "stem_channels": state_dict["encoder.stem.weight"].shape[0],
            "encoder_channels": tuple(enc),
            "code_channels": state_dict["binarizer.conv.weight"].shape[0],
            "decoder_first_channels": state_dict["decoder.head.weight"].shape[0],
            "decoder_channels": tuple(dec),
            "decoder_hidden_kernels": tuple(hks),
        }


# -- zoo entries: one class, three argument sets ----------------------------------------------------
_NOTES = {
    "stem_channels": "published shape (GUIDE.md section 2, the PyTorch port)",
    "encoder_channels": "published shape",
    "code_channels": "published: 32 bits per 16x16 block = 0.125 bpp per iteration",
    "decoder_first_channels": "published shape",
    "decoder_channels": "published shape",
    "decoder_hidden_kernels": "published shape (1x1 hidden kernels in the two coarse cells)",
    "gamma": "0 one-shot (compared with by Sushmit et al.), 1 additive",
    "max_iterations": "published: 16 iterations reach 2 bpp",
    "default_quality": "8 iterations = 1 bpp raw, a mid-range rate for X-rays",
    "tile_size": "byte layer only: independent tiles bound peak memory on large images; "
                 "512 px keeps seams rare on 1024-2000 px radiographs",
    "tile_batch": "byte layer only: tiles coded together (speed against memory)",
}
_SMALL_NOTES = {
    **_NOTES,
    "stem_channels": "published 64 / 4: trainable on a CPU (NOT the published size)",
    "encoder_channels": "published (256, 512, 512) / 4",
    "decoder_first_channels": "published 512 / 4",
    "decoder_channels": "published (512, 512, 256, 128) / 4",
    "tile_batch": "4 tiles at once: the small model's activations allow it",
}
_RATE = ("quality = iterations (1..max_iterations); each adds code_channels / 16^2 bits per "
         "pixel of binary codes before the gzip stage (0.125 bpp raw with 32 code channels); "
         "the file is smaller: bpp is always measured from bytes")
_INPUT = InputFormat(spatial="any size; replicate-padded to a multiple of 16 and coded in "
                              "independent tiles of tile_size pixels")
_USE = ("research baseline for learned X-ray compression (Sushmit et al. 2019 compare with the "
        "one-shot variant); not validated for diagnostic use")


def _card(description: str, arguments: dict, notes: dict) -> CodecCard:
    return CodecCard(description=description, paper=TODERICI2017, related=(SUSHMIT2019,),
                     arguments=arguments,
                     argument_notes=notes,
                     input=_INPUT, rate=_RATE, intended_use=_USE)


register_codec("toderici2017-lstm-oneshot", _card(
    "Toderici et al. 2017 LSTM one-shot (gamma = 0) at the published widths: the baseline of "
    "Sushmit et al. 2019.", {}, _NOTES))(Toderici2017)
register_codec("toderici2017-lstm-additive", _card(
    "Toderici et al. 2017 LSTM additive (gamma = 1) at the published widths: each iteration adds "
    "a correction.", {"gamma": 1.0}, _NOTES))(Toderici2017)
register_codec("toderici2017-lstm-oneshot-small", _card(
    "Toderici et al. 2017 LSTM one-shot with every width divided by 4 (CPU-trainable, not the "
    "published size).",
    {"stem_channels": 16, "encoder_channels": [64, 128, 128], "decoder_first_channels": 128,
     "decoder_channels": [128, 128, 64, 32], "tile_batch": 4}, _SMALL_NOTES))(Toderici2017)
