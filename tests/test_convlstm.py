"""ConvLSTM cell (Shi et al. 2015): shapes, state handling, and agreement with torch's LSTMCell."""

import pytest
import torch

from codeczoo.layers import ConvLSTMCell


@pytest.mark.parametrize("stride,size,expected", [(1, (7, 9), (7, 9)), (2, (7, 9), (4, 5)),
                                                  (2, (16, 32), (8, 16))])
def test_output_shape_and_state(stride, size, expected):
    torch.manual_seed(0)
    cell = ConvLSTMCell(3, 5, kernel_size=3, stride=stride, hidden_kernel_size=3)
    x = torch.randn(2, 3, *size)
    h, c = cell(x)
    assert h.shape == c.shape == (2, 5, *expected)
    h2, c2 = cell(x, (h, c))
    assert h2.shape == h.shape
    assert not torch.allclose(h2, h), "the carried state must change the output"


def test_none_state_equals_zero_state():
    torch.manual_seed(1)
    cell = ConvLSTMCell(2, 4, kernel_size=3, hidden_kernel_size=3, bias=True)
    x = torch.randn(1, 2, 6, 6)
    h0, c0 = cell(x, None)
    zeros = torch.zeros(1, 4, 6, 6)
    h1, c1 = cell(x, (zeros, zeros))
    torch.testing.assert_close(h0, h1)
    torch.testing.assert_close(c0, c1)


def test_matches_lstm_cell_per_pixel():
    """With 1x1 kernels a ConvLSTM is an LSTM applied at every pixel (same gate order)."""
    torch.manual_seed(2)
    cell = ConvLSTMCell(3, 4, kernel_size=1, hidden_kernel_size=1, bias=True)
    ref = torch.nn.LSTMCell(3, 4)
    with torch.no_grad():
        ref.weight_ih.copy_(cell.conv_ih.weight[:, :, 0, 0])
        ref.weight_hh.copy_(cell.conv_hh.weight[:, :, 0, 0])
        ref.bias_ih.copy_(cell.conv_ih.bias)
        ref.bias_hh.copy_(cell.conv_hh.bias)
    x1, x2 = torch.randn(2, 2, 3, 5, 5)
    state = None
    ref_state = None
    for x in (x1, x2):
        state = cell(x, state)
        flat = x.permute(0, 2, 3, 1).reshape(-1, 3)
        ref_state = ref(flat, ref_state)
    h_ref = ref_state[0].reshape(2, 5, 5, 4).permute(0, 3, 1, 2)
    c_ref = ref_state[1].reshape(2, 5, 5, 4).permute(0, 3, 1, 2)
    torch.testing.assert_close(state[0], h_ref)
    torch.testing.assert_close(state[1], c_ref)


def test_gradient_flows_through_time():
    torch.manual_seed(3)
    cell = ConvLSTMCell(1, 2, kernel_size=3, stride=2)
    x1 = torch.randn(1, 1, 8, 8, requires_grad=True)
    state = cell(x1)
    h, _ = cell(torch.randn(1, 1, 8, 8), state)
    h.sum().backward()
    assert x1.grad is not None and x1.grad.abs().sum() > 0


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        ConvLSTMCell(1, 2, kernel_size=2)
    with pytest.raises(ValueError):
        ConvLSTMCell(1, 2, stride=0)
    cell = ConvLSTMCell(1, 2)
    with pytest.raises(ValueError):
        cell(torch.randn(1, 1, 4, 4), (torch.zeros(1, 2, 6, 6), torch.zeros(1, 2, 6, 6)))


@pytest.mark.parametrize("kernel,hidden_kernel,pad", [(3, 3, False), (1, 1, False), (3, 1, True),
                                                       (1, 3, True)])
def test_fused_gate_convolution_matches_two_convolutions(kernel, hidden_kernel, pad):
    from codeczoo.layers import fuse_gate_convolutions

    torch.manual_seed(3)
    cell = ConvLSTMCell(3, 4, kernel_size=kernel, hidden_kernel_size=hidden_kernel, bias=True)
    keys = sorted(cell.state_dict())
    x, state = torch.randn(2, 3, 6, 7), (torch.randn(2, 4, 6, 7), torch.randn(2, 4, 6, 7))
    h_ref, c_ref = cell(x, state)
    grads_ref = torch.autograd.grad(h_ref.square().sum(), list(cell.parameters()))
    assert fuse_gate_convolutions(cell, pad_kernels=pad) == 1 and cell.fused
    h, c = cell(x, state)
    torch.testing.assert_close(h, h_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(c, c_ref, rtol=1e-5, atol=1e-6)
    grads = torch.autograd.grad(h.square().sum(), list(cell.parameters()))
    for g, g_ref in zip(grads, grads_ref):  # both weights keep their own gradient
        torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-6)
    assert sorted(cell.state_dict()) == keys  # weights files load unchanged
    assert fuse_gate_convolutions(cell, enabled=False) == 0 and not cell.fused


def test_fusion_only_where_exact_by_default():
    from codeczoo.layers import fuse_gate_convolutions

    strided = ConvLSTMCell(3, 4, kernel_size=3, stride=2, hidden_kernel_size=3)
    unequal = ConvLSTMCell(3, 4, kernel_size=3, hidden_kernel_size=1)
    model = torch.nn.ModuleList([strided, unequal])
    assert fuse_gate_convolutions(model) == 0
    assert fuse_gate_convolutions(model, pad_kernels=True) == 1 and unequal.fused and not strided.fused
