"""Reusable neural network layers."""

from .convlstm import ConvLSTMCell, StridedConvLSTMEncoder, fuse_gate_convolutions, step_stack

__all__ = ["ConvLSTMCell", "StridedConvLSTMEncoder", "fuse_gate_convolutions", "step_stack"]
