"""Codec cards: what a zoo entry is, declared in Python beside its class.

A card is to a codeczoo codec what timm's ``PretrainedCfg`` or a MONAI bundle's
``metadata.json`` is to a model: the paper, the constructor arguments of this entry (variants of
one class are entries with other arguments, not subclasses), the input format, what ``quality``
means, licence and intended use. It is passed to :func:`codeczoo.registry.register_codec`::

    @register_codec("my-codec", card=CodecCard(description="...", paper=Paper(...)))
    class MyCodec(CompressionModel, Codec): ...

Things that training produces are data, not card: the weights and their sha256
(:class:`WeightsEntry`, in ``registry/<name>/weights.json``) and the training record with its
history and evaluations (``registry/<name>/training.json``). :func:`codeczoo.get_card` returns
the declared card with the weights currently in use filled in.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Paper:
    """A publication or standard a codec comes from."""

    title: str
    authors: tuple[str, ...] = ()
    venue: str = ""
    arxiv: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class InputFormat:
    """What a codec accepts (MONAI's ``network_data_format.inputs``, for X-rays)."""

    channels: int = 1
    dtypes: tuple[str, ...] = ("uint8", "uint16", "int8", "int16")
    bit_depths: tuple[int, int] = (1, 16)
    value_range: str = ("stored integers [0, 2^bits - 1] (signed data offset by 2^(bits-1)); "
                        "MONOCHROME1/2 recorded, never applied")
    spatial: str = "any size"


@dataclass(frozen=True)
class WeightsEntry:
    """One weights file of a codec (a line of ``registry/<name>/weights.json``).

    Attributes:
        file: safetensors file name inside ``registry/<name>/``.
        sha256: of the file; weights whose file does not match are refused.
        weights_hash: the 16 hex digits a ``.czoo`` header carries for these weights (sha256 of
            the loaded float32 tensors), so a bitstream finds the weights that decode it.
        arguments: the complete constructor arguments the weights were trained with.
        dtype: storage dtype (``float16`` or ``float32``).
        size_bytes: file size.
        notes: measurements made at export (e.g. what fp16 storage changes).
    """

    file: str
    sha256: str
    weights_hash: str
    arguments: Mapping[str, Any]
    dtype: str = "float32"
    size_bytes: int = 0
    notes: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "arguments": dict(self.arguments),
                "notes": dict(self.notes)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "WeightsEntry":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown weights fields {sorted(unknown)}")
        return cls(**{k: data[k] for k in names if k in data})


@dataclass(frozen=True)
class CodecCard:
    """The declared description of one zoo entry.

    Attributes:
        description: one sentence (``codeczoo list`` shows it whole).
        paper: the publication or standard the codec implements.
        related: other references (e.g. the baseline a paper compares with).
        arguments: constructor arguments of this entry over the class defaults (a variant).
        argument_notes: why each non-obvious argument has its value (papers often omit sizes).
        input: accepted images.
        rate: what ``quality`` means for this codec.
        license: of the code / implementation used.
        intended_use: who should use it for what, and what not.
        name: filled in by registration.
        weights: the weights in use (filled in by :func:`codeczoo.get_card`), else ``None``.
    """

    description: str
    paper: Paper | None = None
    related: tuple[Paper, ...] = ()
    arguments: Mapping[str, Any] = field(default_factory=dict)
    argument_notes: Mapping[str, str] = field(default_factory=dict)
    input: InputFormat = InputFormat()
    rate: str = ""
    license: str = "Apache-2.0 (codeczoo)"
    intended_use: str = ""
    name: str = ""
    weights: WeightsEntry | None = None

    def replace(self, **changes) -> "CodecCard":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        """Plain JSON-able dict (``codeczoo info NAME --json``)."""
        out = dataclasses.asdict(self)
        out["arguments"] = dict(self.arguments)
        out["argument_notes"] = dict(self.argument_notes)
        out["weights"] = self.weights.to_json() if self.weights else None
        return out


TODERICI2017 = Paper(
    title="Full Resolution Image Compression with Recurrent Neural Networks",
    authors=("George Toderici", "Damien Vincent", "Nick Johnston", "Sung Jin Hwang",
             "David Minnen", "Joel Shor", "Michele Covell"),
    venue="IEEE Conference on Computer Vision and Pattern Recognition (CVPR) 2017",
    arxiv="1608.05148")

SUSHMIT2019 = Paper(
    title="X-Ray Image Compression Using Convolutional Recurrent Neural Networks",
    authors=("Asif Shahriyar Sushmit", "Shakib Uz Zaman", "Ahmed Imtiaz Humayun",
             "Taufiq Hasan", "Mohammed Imamul Hassan Bhuiyan"),
    venue="IEEE EMBS International Conference on Biomedical and Health Informatics (BHI) 2019",
    arxiv="1904.12271")
