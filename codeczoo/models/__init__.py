"""Learned codecs: importing this package registers every model file in it.

* :mod:`.base`: progressive recurrent binary codecs (Toderici et al. 2017 iterations) and the
  CompressAI contract (the byte layer's payload format is :mod:`codeczoo.coding`);
* :mod:`.sushmit2019`: the paper's RNN-Conv codec (``sushmit2019-rnnconv``);
* :mod:`.toderici2017`: the Toderici et al. 2017 LSTM baseline (``toderici2017-lstm-*``).

A new learned codec is one module here that calls :func:`codeczoo.register_codec` with its
card: every module of this package is imported (and so registered) when codeczoo is.
"""

import importlib
import pkgutil

from .base import Binarizer, RecurrentBinaryCodec
from .sushmit2019 import Sushmit2019RnnConv
from .toderici2017 import Toderici2017

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Binarizer", "RecurrentBinaryCodec", "Sushmit2019RnnConv", "Toderici2017"]
