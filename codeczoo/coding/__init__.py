"""The coding layer: how a codec's tensors become a payload and back (tiling, code layouts,
entropy stage), kept apart from the networks in :mod:`codeczoo.models`.

* :mod:`.tiles`: padding to a multiple of the downsampling, the tile grid, batches of tiles;
* :mod:`.recurrent_payload`: the payload format of progressive recurrent binary codecs
  (Toderici et al. 2017, Sushmit et al. 2019): tiled binary codes through an entropy stage.
"""
