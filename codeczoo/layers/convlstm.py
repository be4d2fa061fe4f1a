"""Convolutional LSTM cell (Shi et al. 2015), the recurrent unit of codeczoo's learned codecs.

Shi, Chen, Wang, Yeung, Wong, Woo, "Convolutional LSTM Network: A Machine Learning Approach for
Precipitation Nowcasting", NeurIPS 2015 (arXiv:1506.04214).  An LSTM whose input-to-state and
state-to-state transitions are convolutions, so the hidden and cell states are feature maps::

    i, f, o, g = split(W_x * x + W_h * h_{t-1} + b)
    c_t = sigmoid(f) . c_{t-1} + sigmoid(i) . tanh(g)
    h_t = sigmoid(o) . tanh(c_t)

As in Toderici et al. (2017) the input convolution may be strided (the cell then downsamples),
and the input and hidden kernels are chosen separately.  Convolutions are zero-padded by
``kernel // 2`` ("same" style): with odd kernels the output is ``ceil(H / stride)`` x
``ceil(W / stride)``, so a stride-2 cell halves an even-sized input exactly.

The state ``(h, c)`` is passed in and returned, never stored on the module, so one cell can run
several independent sequences (e.g. image tiles) and is safe to use from several threads.

**Fused gate convolutions** (an execution option, :func:`fuse_gate_convolutions`): in a cell whose
input convolution is not strided, ``W_x * x + W_h * h`` equals one convolution of ``cat(x, h)``
with ``cat(W_x, W_h)`` along the input channels (biases added), so each step launches one
convolution instead of two plus an addition, with one larger, better-shaped matrix product. The
fused weight is concatenated from the two existing parameters at every call (autograd splits the
gradient back), so the parameters, their names and the weights files are unchanged. With equal
kernels it does the same arithmetic; with unequal kernels (``pad_kernels=True``) the smaller
kernel is zero-padded to the larger one: still exact, at the price of multiplying zeros (worth it
only where kernel launches, not arithmetic, limit a step).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

State = tuple[Tensor, Tensor]


class ConvLSTMCell(nn.Module):
    """One ConvLSTM layer step.

    Args:
        in_channels: channels of the input ``x``.
        hidden_channels: channels of the hidden and cell states (and of the output).
        kernel_size: input-to-state kernel (odd).
        stride: stride of the input-to-state convolution (the state has the strided size).
        hidden_kernel_size: state-to-state kernel (odd; 1 in Toderici's encoder).
        bias: learn a bias on the gates (Toderici et al. use none).
        forget_bias: added to the forget-gate pre-activation (1.0 keeps early gradients alive;
            0.0 gives the plain formulation).

    ``forward(x, state=None) -> (h, c)``: ``state`` is the previous ``(h, c)`` or ``None`` for
    zeros; the returned pair is the new state, and ``h`` is the layer's output.
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3,
                 stride: int = 1, hidden_kernel_size: int = 1, bias: bool = True,
                 forget_bias: float = 0.0):
        super().__init__()
        for name, k in (("kernel_size", kernel_size), ("hidden_kernel_size", hidden_kernel_size)):
            if k < 1 or k % 2 == 0:
                raise ValueError(f"{name} must be a positive odd integer, got {k}")
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.stride = stride
        self.forget_bias = float(forget_bias)
        self.conv_ih = nn.Conv2d(in_channels, 4 * hidden_channels, kernel_size, stride=stride,
                                 padding=kernel_size // 2, bias=bias)
        self.conv_hh = nn.Conv2d(hidden_channels, 4 * hidden_channels, hidden_kernel_size,
                                 padding=hidden_kernel_size // 2, bias=bias)
        #: run ``conv_ih`` and ``conv_hh`` as one convolution (see :func:`fuse_gate_convolutions`)
        self.fused = False

    def can_fuse(self, pad_kernels: bool = False) -> bool:
        """Whether the two gate convolutions can run as one: the input convolution is not
        strided and the kernels are equal (or ``pad_kernels``)."""
        same = self.conv_ih.kernel_size == self.conv_hh.kernel_size
        return self.stride == 1 and (same or pad_kernels)

    def _fused_gates(self, x: Tensor, h_prev: Tensor) -> Tensor:
        """``conv_ih(x) + conv_hh(h_prev)`` as one convolution of ``cat(x, h_prev)``."""
        w_ih, w_hh = self.conv_ih.weight, self.conv_hh.weight
        k = max(w_ih.shape[-1], w_hh.shape[-1])
        w_ih = F.pad(w_ih, [(k - w_ih.shape[-1]) // 2] * 4) if w_ih.shape[-1] < k else w_ih
        w_hh = F.pad(w_hh, [(k - w_hh.shape[-1]) // 2] * 4) if w_hh.shape[-1] < k else w_hh
        bias = None
        if self.conv_ih.bias is not None:
            bias = self.conv_ih.bias + self.conv_hh.bias
        return F.conv2d(torch.cat([x, h_prev], dim=1), torch.cat([w_ih, w_hh], dim=1), bias,
                        padding=k // 2)

    def forward(self, x: Tensor, state: State | None = None) -> State:
        if state is None:
            c_prev = None  # h = 0 contributes only conv_hh's bias
            gates = self.conv_ih(x)
            if self.conv_hh.bias is not None:
                gates = gates + self.conv_hh.bias.view(1, -1, 1, 1)
        else:
            h_prev, c_prev = state
            size = (-(-x.shape[-2] // self.stride), -(-x.shape[-1] // self.stride))
            if h_prev.shape[0] != x.shape[0] or tuple(h_prev.shape[-2:]) != size:
                raise ValueError(
                    f"state of shape {tuple(h_prev.shape)} does not fit input {tuple(x.shape)}")
            if self.fused:
                gates = self._fused_gates(x, h_prev)
            else:
                gates = self.conv_ih(x) + self.conv_hh(h_prev)
        return self._gate_update(gates, c_prev)

    def _gate_update(self, gates: Tensor, c_prev: Tensor | None) -> State:
        i, f, g, o = gates.chunk(4, dim=1)
        if self.forget_bias:
            f = f + self.forget_bias
        c = torch.sigmoid(i) * torch.tanh(g)
        if c_prev is not None:
            c = c + torch.sigmoid(f) * c_prev
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c

    def step(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """``(output, new state)``: the interface :func:`step_stack` runs (output = ``h``)."""
        h, c = self(x, state)
        return h, (h, c)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.hidden_channels}, "
                f"kernel={self.conv_ih.kernel_size[0]}, stride={self.stride}, "
                f"hidden_kernel={self.conv_hh.kernel_size[0]}" + (", fused" if self.fused else ""))


def fuse_gate_convolutions(module: nn.Module, enabled: bool = True,
                           pad_kernels: bool = False) -> int:
    """Switch fused gate convolutions on (or off) in every :class:`ConvLSTMCell` of ``module``
    that allows it (:meth:`ConvLSTMCell.can_fuse`); returns how many cells were switched.

    An execution option, like ``channels_last``: parameters and ``state_dict`` keys do not change,
    so weights load and hash as before.
    """
    count = 0
    for cell in module.modules():
        if isinstance(cell, ConvLSTMCell):
            cell.fused = bool(enabled) and cell.can_fuse(pad_kernels)
            count += cell.fused
    return count


class StridedConvLSTMEncoder(nn.Module):
    """A first layer, then a stack of stride-2 ConvLSTMs whose states carry across calls.

    The encoder shape shared by Toderici et al. 2017 and Sushmit et al. 2019: a plain first layer
    (Toderici's strided convolution, Sushmit's two-branch front end) provided by the subclass as
    :meth:`first_layer`, then ConvLSTMs of ``lstm_channels`` widths, each halving the resolution.
    The state is one ``(h, c)`` per ConvLSTM (``None`` on the first call).
    """

    def build_cells(self, in_channels: int, lstm_channels, kernel_size: int,
                    hidden_kernel_size: int, bias: bool = True) -> None:
        widths = [in_channels, *lstm_channels]
        self.cells = nn.ModuleList(
            ConvLSTMCell(widths[i], widths[i + 1], kernel_size, stride=2,
                         hidden_kernel_size=hidden_kernel_size, bias=bias)
            for i in range(len(lstm_channels)))

    def first_layer(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor, state=None):
        return step_stack(self.cells, self.first_layer(x), state)


def step_stack(layers, x: Tensor, state=None, between: Callable[[Tensor], Tensor] | None = None):
    """One time step through a stack of recurrent layers; returns ``(output, new states)``.

    Each layer has ``step(x, s) -> (output, new s)``; ``state`` is the list of per-layer states
    of the previous time step (``None`` on the first); ``between`` maps each layer's output to
    the next layer's input (e.g. Toderici's depth-to-space), the last one's too.
    """
    state = state or [None] * len(layers)
    new_state = []
    for layer, s in zip(layers, state):
        x, s = layer.step(x, s)
        new_state.append(s)
        if between is not None:
            x = between(x)
    return x, new_state
