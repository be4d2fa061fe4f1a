"""Reusable neural network layers."""

from .convlstm import ConvLSTMCell, StridedConvLSTMEncoder

__all__ = ["ConvLSTMCell", "StridedConvLSTMEncoder"]
