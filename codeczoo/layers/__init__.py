"""Reusable neural network layers."""

from .convlstm import ConvLSTMCell, StridedConvLSTMEncoder, step_stack

__all__ = ["ConvLSTMCell", "StridedConvLSTMEncoder", "step_stack"]
