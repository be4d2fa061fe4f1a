"""Payload format of codecs with CompressAI entropy models (Ballé et al. 2018, Minnen et al. 2018).

The byte layer of :class:`codeczoo.models.compressai_families.OneChannelCompressAI` delegates
here. Unsigned integers of any size and bit depth are mapped to [0, 1]
(:func:`codeczoo.intensity.to_unit`), replicate-padded at the bottom and right to a multiple of
the network's ``downsampling_factor`` (16 for the factorized prior, 64 with a hyperprior) and
coded whole by the network's own ``compress``: CompressAI's entropy models and its rANS coder
(``compressai.ans``). The payload holds what ``compress`` returns, ``{"strings", "shape"}``, for
one image (big-endian)::

    offset  size   field
    0       1      S, the number of string groups (CompressAI's ``strings`` list: 1 for the
                   factorized prior [y]; 2 with a hyperprior [y, z])
    1       2      latent height  (``shape``: the size of the last latent, y for the
    3       2      latent width    factorized prior, z with a hyperprior)
    5       4 * S  byte length of each group's rANS string
    5 + 4S  ...    the S strings, in order

The decoder knows the padded image size from the container header (height + pad_bottom, width
+ pad_right), so it refuses a payload whose group count or latent size does not match what
that image and this network imply, or whose lengths do not add up to the payload, before
anything is allocated or entropy-decoded. The reconstruction is cropped to the header's size
and rounded to the header's bit depth (:func:`codeczoo.intensity.from_unit`).
"""

from __future__ import annotations

import struct
from typing import Protocol

import numpy as np
import torch

from .. import intensity
from ..bitstream import Header
from ..errors import BitstreamError
from ..intensity import ImageSpec
from .tiles import pad_to_multiple

_HEAD = struct.Struct(">BHH")
_LENGTH = struct.Struct(">I")


class EntropyCodedNetwork(Protocol):
    """What this format needs of a network (a CompressAI ``CompressionModel``)."""

    latent_strings: int
    training: bool

    @property
    def downsampling_factor(self) -> int: ...

    def compress(self, x: torch.Tensor) -> dict: ...

    def decompress(self, strings, shape) -> dict: ...

    def train(self, mode: bool = True): ...

    def parameters(self): ...


def _evaluating(model: EntropyCodedNetwork):
    """Context: eval mode and no grad, the previous mode restored afterwards."""
    class _Mode:
        def __enter__(self):
            self.was = model.training
            model.train(False)
            self.grad = torch.no_grad()
            self.grad.__enter__()

        def __exit__(self, *exc):
            self.grad.__exit__(*exc)
            model.train(self.was)
    return _Mode()


def pack(strings: list[bytes], shape: tuple[int, int]) -> bytes:
    """The payload of one image's string groups and latent ``shape``."""
    if not 1 <= len(strings) <= 255 or not all(0 <= int(s) < 1 << 16 for s in shape):
        raise ValueError(f"cannot pack {len(strings)} strings of latent shape {tuple(shape)}")
    head = _HEAD.pack(len(strings), int(shape[0]), int(shape[1]))
    return head + b"".join(_LENGTH.pack(len(s)) for s in strings) + b"".join(strings)


def unpack(payload: bytes, groups: int, shape: tuple[int, int]) -> list[bytes]:
    """The string groups of a payload, checked against the ``groups`` and latent ``shape``
    the decoder expects (:class:`BitstreamError` on any mismatch)."""
    if len(payload) < _HEAD.size:
        raise BitstreamError("payload too short for an entropy-coded latent")
    count, height, width = _HEAD.unpack_from(payload)
    if count != groups:
        raise BitstreamError(f"payload holds {count} string groups, this network codes {groups}")
    if (height, width) != tuple(shape):
        raise BitstreamError(f"payload declares a {height}x{width} latent, the header's image "
                             f"size implies {shape[0]}x{shape[1]}")
    table_end = _HEAD.size + _LENGTH.size * count
    if len(payload) < table_end:
        raise BitstreamError("payload string table is truncated")
    lengths = [_LENGTH.unpack_from(payload, _HEAD.size + _LENGTH.size * i)[0]
               for i in range(count)]
    if table_end + sum(lengths) != len(payload):
        raise BitstreamError(f"payload strings add up to {table_end + sum(lengths)} bytes, "
                             f"the payload has {len(payload)}")
    offsets = np.cumsum([table_end] + lengths)
    return [payload[offsets[i]:offsets[i + 1]] for i in range(count)]


def encode(model: EntropyCodedNetwork, values: np.ndarray, spec: ImageSpec
           ) -> tuple[bytes, tuple[int, int]]:
    """The payload of unsigned ``values`` (H x W) and the padding (bottom, right) added."""
    padded, pads = pad_to_multiple(values, model.downsampling_factor)
    device = next(model.parameters()).device
    with _evaluating(model):
        out = model.compress(intensity.to_unit(padded, spec.bits_stored).to(device))
    strings = [group[0] for group in out["strings"]]  # one image: item 0 of each group
    return pack(strings, tuple(out["shape"])), pads


def decode(model: EntropyCodedNetwork, payload: bytes, header: Header) -> np.ndarray:
    """Unsigned integers (H x W) from a payload written by :func:`encode`."""
    spec = header.spec
    ds = model.downsampling_factor
    ph, pw = spec.height + header.pad_bottom, spec.width + header.pad_right
    if ph % ds or pw % ds or header.pad_bottom >= ds or header.pad_right >= ds:
        raise BitstreamError(f"padded size {ph}x{pw} is not the image padded to a multiple of {ds}")
    strings = unpack(payload, model.latent_strings, (ph // ds, pw // ds))
    with _evaluating(model):
        x_hat = model.decompress([[s] for s in strings], (ph // ds, pw // ds))["x_hat"]
    return intensity.from_unit(x_hat[..., :spec.height, :spec.width], spec.bits_stored)
