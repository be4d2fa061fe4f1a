"""Learned codecs: importing this package registers them (codeczoo and compressai registries).

* :mod:`.base`: progressive recurrent binary codecs (Toderici et al. 2017 iterations), the
  CompressAI contract and the tiled byte layer;
* :mod:`.sushmit2019`: the paper's RNN-Conv codec (``sushmit2019-rnnconv``);
* :mod:`.toderici2017`: the Toderici et al. 2017 LSTM baseline (``toderici2017-lstm-*``).
"""

from .base import Binarizer, RecurrentBinaryCodec
from .sushmit2019 import Sushmit2019RnnConv
from .toderici2017 import (Toderici2017, Toderici2017Additive, Toderici2017OneShot,
                           Toderici2017OneShotSmall)

__all__ = ["Binarizer", "RecurrentBinaryCodec", "Sushmit2019RnnConv", "Toderici2017",
           "Toderici2017Additive", "Toderici2017OneShot", "Toderici2017OneShotSmall"]
