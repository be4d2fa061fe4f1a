"""Sushmit et al. 2019: the RNN-Conv X-ray codec.

Sushmit, Zaman, Humayun, Hasan, Bhuiyan, "X-Ray Image Compression Using Convolutional Recurrent
Neural Networks", IEEE BHI 2019 (arXiv:1904.12271).  What the paper fixes:

* compression sub-network: a front end of two branches on the input, (a) a strided convolution
  and (b) pooling followed by a convolution ("multi-level pooling", the coarser context), each
  followed by ReLU and then averaged; RNN-Conv (ConvLSTM, Shi et al. 2015) layers strided by 2;
  a bottleneck convolution whose number of kernels sets the rate (here the binarizer of
  Toderici et al., so each kernel is one bit per latent position per iteration);
* decompression sub-network: a 1x1 convolution, deconvolution modules of two ConvLSTM branches
  whose outputs are averaged and then upsampled by depth-to-space x2, and a final 1x1 convolution.

The paper's text lost its sizes (kernels, widths, crop size, parameter count): every one is a
constructor argument here, with defaults chosen for a 2-core CPU (see ``docs/models.md`` and the
card).  Variable rate comes from the recurrence (:mod:`codeczoo.models.base`): the ConvLSTM
states carry over iterations and each iteration codes the remaining residual.

Default layout (1024 x 1024 input; downsampling 16; 32 code channels = 0.125 bpp / iteration)::

    front end  avg( ReLU(conv 3x3 s2, 16),  ReLU(conv 3x3 (avg-pool 2x2), 16) )  512x512x16
    encoder    ConvLSTM 32 3x3 s2 | ConvLSTM 64 3x3 s2 | ConvLSTM 64 3x3 s2     64x64x64
    binarizer  1x1 conv -> 32, tanh, sign                                       64x64x32 bits
    decoder    1x1 conv 32 -> 64                                                64x64x64
               module: avg(ConvLSTM 3x3/h1x1, ConvLSTM 1x1/h3x3) 64, d2s x2     128x128x16
               modules of widths 64, 32, 32                                     1024x1024x8
               1x1 conv -> 1, tanh / 2
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


class TwoBranchFrontEnd(nn.Module):
    """Average of ReLU(strided conv) and ReLU(conv after pooling): both halve the resolution."""

    def __init__(self, out_channels: int, kernel_size: int = 3, pooling: str = "avg",
                 in_channels: int = 1):
        super().__init__()
        if pooling not in ("avg", "max"):
            raise ValueError(f"pooling must be 'avg' or 'max', got {pooling!r}")
        pad = kernel_size // 2
        self.strided = nn.Conv2d(in_channels, out_channels, kernel_size, stride=2, padding=pad)
        self.pool = nn.AvgPool2d(2) if pooling == "avg" else nn.MaxPool2d(2)
        self.pooled = nn.Conv2d(in_channels, out_channels, kernel_size, padding=pad)

    def forward(self, x: Tensor) -> Tensor:
        return (F.relu(self.strided(x)) + F.relu(self.pooled(self.pool(x)))) / 2


class RnnConvEncoder(StridedConvLSTMEncoder):
    """Two-branch front end, then strided ConvLSTMs; the state is one (h, c) per ConvLSTM."""

    def __init__(self, front_channels: int, lstm_channels: Sequence[int], kernel_size: int,
                 hidden_kernel_size: int, pooling: str):
        super().__init__()
        self.front = TwoBranchFrontEnd(front_channels, kernel_size, pooling)
        self.build_cells(front_channels, lstm_channels, kernel_size, hidden_kernel_size)

    def first_layer(self, x: Tensor) -> Tensor:
        return self.front(x)


class DeconvModule(nn.Module):
    """Two ConvLSTM branches on the same input, averaged, then depth-to-space x2 (width / 4)."""

    def __init__(self, in_channels: int, hidden_channels: int,
                 branch_kernels: Sequence[tuple[int, int]]):
        super().__init__()
        if hidden_channels % 4:
            raise ValueError(f"decoder widths must be multiples of 4, got {hidden_channels}")
        self.branches = nn.ModuleList(
            ConvLSTMCell(in_channels, hidden_channels, k, hidden_kernel_size=hk)
            for k, hk in branch_kernels)

    def forward(self, x: Tensor, state=None):
        state = state or [None] * len(self.branches)
        new_state = [branch(x, s) for branch, s in zip(self.branches, state)]
        merged = sum(h for h, _ in new_state) / len(new_state)
        return F.pixel_shuffle(merged, 2), new_state

    def step(self, x: Tensor, state=None):
        """``(output, new state)``: the interface :func:`~codeczoo.layers.step_stack` runs."""
        return self(x, state)


class RnnConvDecoder(nn.Module):
    """1x1 conv, deconvolution modules, final 1x1 conv (tanh / 2: centred image range)."""

    def __init__(self, code_channels: int, first_channels: int, module_channels: Sequence[int],
                 branch_kernels: Sequence[tuple[int, int]]):
        super().__init__()
        self.head = nn.Conv2d(code_channels, first_channels, 1)
        modules, width = [], first_channels
        for hidden in module_channels:
            modules.append(DeconvModule(width, hidden, branch_kernels))
            width = hidden // 4
        self.stages = nn.ModuleList(modules)
        self.tail = nn.Conv2d(width, 1, 1)

    def forward(self, bits: Tensor, state=None):
        x, new_state = step_stack(self.stages, self.head(bits), state)
        return torch.tanh(self.tail(x)) / 2, new_state


CARD = CodecCard(
    description="Sushmit et al. 2019 RNN-Conv (ConvLSTM) X-ray codec with its two-branch pooling "
                "front end, one channel; sizes chosen for a 2-core CPU (the paper lost them).",
    paper=SUSHMIT2019,
    related=(TODERICI2017,),
    argument_notes={
        "front_channels": "paper gives no width; 16 keeps the full-resolution front end cheap",
        "encoder_channels": "three stride-2 ConvLSTMs after the stride-2 front end = downsampling "
                            "16 (as Toderici); widths chosen for a 2-core CPU (< 1 M parameters)",
        "kernel_size": "3x3, the smallest spatial kernel (paper: padded convolutions, size lost)",
        "encoder_hidden_kernel": "1x1 as in Toderici's encoder (cheap state update)",
        "pooling": "average pooling: smooth coarse context for smooth radiographs; 'max' available",
        "code_channels": "32 bottleneck kernels: 0.125 bpp per iteration, same rate grid as "
                         "Toderici so the two compare at equal bits",
        "decoder_first_channels": "64: the 1x1 linear combination along depth",
        "decoder_channels": "one module per x2 upsampling; (64, 64, 32, 32) leaves 8 channels at "
                            "full resolution: the earlier (64, 32, 16, 8) left 2 and stalled near "
                            "18 dB in training probes, while this reached 26 dB in 100 steps",
        "branch_kernels": "two branches with different receptive fields: 3x3 input / 1x1 hidden "
                          "and 1x1 input / 3x3 hidden, averaged (paper: two RNN-Conv branches)",
        "gamma": "0 one-shot: like the Toderici variant the paper compares with, and it trained "
                 "faster than additive in short CPU runs",
        "max_iterations": "16 iterations = 2 bpp raw (the shipped weights: 8, see weights.json)",
        "default_quality": "4 iterations = 0.5 bpp raw: within the 10 s / 1024x1024 CPU budget",
        "tile_size": "byte layer only: independent tiles bound peak memory on large images",
        "tile_batch": "byte layer only: tiles coded together (speed against memory)",
    },
    input=InputFormat(spatial="any size; replicate-padded to a multiple of 16 and coded in "
                              "independent tiles of tile_size pixels"),
    rate="quality = iterations; each adds 32 / 16^2 = 0.125 bpp of binary codes before the "
         "paper's gzip stage (the file is smaller: bpp is always measured from bytes)",
    intended_use="research: the codec of Sushmit et al. 2019 reproduced on open chest X-rays; "
                 "not validated for diagnostic use (JPEG 2000 is better today, docs/results.md)",
)


@register_codec("sushmit2019-rnnconv", CARD)
class Sushmit2019RnnConv(RecurrentBinaryCodec):
    """Sushmit et al. 2019 RNN-Conv X-ray codec (IEEE BHI 2019, arXiv:1904.12271), one channel.

    Args (the paper leaves every size open; defaults are sized for a 2-core CPU):
        front_channels: width of both front-end branches (16).
        encoder_channels: widths of the three strided encoder ConvLSTMs (32, 64, 64); with the
            stride-2 front end they set downsampling 16.
        kernel_size: kernel of the front-end convolutions and the encoder ConvLSTM inputs (3).
        encoder_hidden_kernel: hidden-to-hidden kernel of the encoder ConvLSTMs (1, as Toderici).
        pooling: pooling of the front end's second branch, ``"avg"`` or ``"max"``.
        code_channels: kernels of the bottleneck = bits per 16 x 16 block per iteration (32,
            0.125 bpp per iteration).
        decoder_first_channels: width of the decoder's 1x1 convolution (64).
        decoder_channels: hidden widths of the four deconvolution modules (64, 64, 32, 32); each
            module's depth-to-space divides its width by 4.
        branch_kernels: (input kernel, hidden kernel) of the two ConvLSTM branches of every
            module: a 3x3 spatial branch and a 1x1-input / 3x3-hidden branch ((3, 1), (1, 3)).
        gamma: 0 one-shot (default, as the Toderici variant the paper compares with; it also
            trained faster than additive in our short CPU runs), 1 additive.
        max_iterations: 16 (2 bpp raw); default_quality: 4 (0.5 bpp raw; 8 iterations take
            11-12 s on a 1024 x 1024 image on 2 CPU cores, over the 10 s budget).
        tile_size, tile_batch: byte-layer tiling (see :mod:`codeczoo.models.base`).
    """

    def __init__(self, front_channels: int = 16, encoder_channels: Sequence[int] = (32, 64, 64),
                 kernel_size: int = 3, encoder_hidden_kernel: int = 1, pooling: str = "avg",
                 code_channels: int = 32, decoder_first_channels: int = 64,
                 decoder_channels: Sequence[int] = (64, 64, 32, 32),
                 branch_kernels: Sequence[Sequence[int]] = ((3, 1), (1, 3)),
                 gamma: float = 0.0, max_iterations: int = 16, default_quality: int = 4,
                 tile_size: int = 512, tile_batch: int = 4):
        check_positive(front_channels=front_channels, encoder_channels=encoder_channels,
                       code_channels=code_channels, decoder_first_channels=decoder_first_channels,
                       decoder_channels=decoder_channels)
        if len(decoder_channels) != len(encoder_channels) + 1:
            raise ValueError("the decoder needs one deconvolution module per downsampling step "
                             f"({len(encoder_channels) + 1}), got {len(decoder_channels)}")
        branch_kernels = tuple((int(k), int(hk)) for k, hk in branch_kernels)
        self.downsampling = 2 ** (len(encoder_channels) + 1)
        super().__init__(code_channels, max_iterations, gamma, default_quality, tile_size,
                         tile_batch)
        self.encoder = RnnConvEncoder(front_channels, encoder_channels, kernel_size,
                                      encoder_hidden_kernel, pooling)
        self.binarizer = Binarizer(encoder_channels[-1], code_channels)
        self.decoder = RnnConvDecoder(code_channels, decoder_first_channels, decoder_channels,
                                      branch_kernels)
        self.pooling = pooling

    @classmethod
    def arguments_from_state_dict(cls, state_dict) -> dict:
        n_enc = len({k.split(".")[2] for k in state_dict if k.startswith("encoder.cells.")})
        n_dec = len({k.split(".")[2] for k in state_dict if k.startswith("decoder.stages.")})
        n_branch = len({k.split(".")[4] for k in state_dict
                        if k.startswith("decoder.stages.0.branches.")})
        ih = state_dict["encoder.cells.0.conv_ih.weight"]
        return {
            "front_channels": state_dict["encoder.front.strided.weight"].shape[0],
            "encoder_channels": tuple(state_dict[f"encoder.cells.{i}.conv_ih.weight"].shape[0] // 4
                                      for i in range(n_enc)),
            "kernel_size": ih.shape[-1],
            "encoder_hidden_kernel": state_dict["encoder.cells.0.conv_hh.weight"].shape[-1],
            "code_channels": state_dict["binarizer.conv.weight"].shape[0],
            "decoder_first_channels": state_dict["decoder.head.weight"].shape[0],
            "decoder_channels": tuple(
                state_dict[f"decoder.stages.{i}.branches.0.conv_ih.weight"].shape[0] // 4
                for i in range(n_dec)),
            "branch_kernels": tuple(
                (state_dict[f"decoder.stages.0.branches.{b}.conv_ih.weight"].shape[-1],
                 state_dict[f"decoder.stages.0.branches.{b}.conv_hh.weight"].shape[-1])
                for b in range(n_branch)),
        }
