"""Reusable neural network layers."""

from .convlstm import ConvLSTMCell

__all__ = ["ConvLSTMCell"]
