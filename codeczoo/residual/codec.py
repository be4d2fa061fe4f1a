"""Bounded-error coding for any codec: lossy base + learned residual, ``|x - x_rec| <= K``.

Lossy plus residual coding after Bai et al. (CVPR 2021, arXiv:2103.17015; TPAMI 2024,
arXiv:2209.04847): a zoo codec (the *base*: JPEG 2000 or a learned codec) codes the image lossy;
the residual against its reconstruction is coded with the learned conditional model of
:mod:`codeczoo.residual.model`, quantized with step ``2K + 1`` so that **every pixel** is within
``K`` of the original (``K = 0``: lossless).  One trained model serves every ``K`` and every
bit depth from 1 to 16.

:class:`ResidualCodec` is registered as the codec ``residual``: its container header records
``K`` as the rate setting and the residual model's weights hash; its payload carries the base's
complete codeczoo bitstream and the residual (layout below, and in ``docs/bitstream.md``)::

    offset size  field
    0      1     payload format (1)
    1      2     K, the bound (must equal the header's rate setting)
    3      1     base reconstruction: 0 integer decoder, 1 float decoder rounded stably here,
                 2 float decoder rounding inside (checked by CRC only)
    4      4     CRC-32 of the base reconstruction (unsigned values, uint16 little-endian)
    8      4     CRC-32 of the decoded image (unsigned values, uint16 little-endian)
    12     4     base bitstream length B
    16     B     base bitstream (a complete codeczoo container: header, payload, CRC)
    .      .     kind 1 only: u8 precision P, side information (flagged base values)
    .      .     four passes: side information, rANS chunks, raw low bits

**The guarantee.**  The decoder computes every integer from integers (decoded symbols, indices,
base reconstruction) with integer arithmetic; floats (the residual network, a learned base
decoder) only choose integers through *stable rounding* (:mod:`codeczoo.residual.stable`), so a
decoder whose floats differ from the encoder's by less than the margin reproduces ``x_rec`` bit
for bit.  The encoder checks ``|x - x_rec| <= K`` on every pixel before it returns, and the
decoder checks the CRC-32s of the base reconstruction and of ``x_rec``: whatever goes wrong on a
foreign machine is an error, never a silently wrong image.
"""

from __future__ import annotations

import struct
import zlib
from typing import ClassVar

import numpy as np
from torch import nn

from .. import bitstream
from ..bitstream import Header
from ..codec import Codec, state_dict_hash
from ..errors import BitstreamError, CodeczooError
from ..intensity import ImageSpec
from ..cards import CodecCard, Paper
from ..registry import load, register_codec
from . import stable
from ..entropy import rans
from .coder import MARGIN, decode_residual, encode_residual
from .model import ResidualModel

PAYLOAD_FORMAT = 1
_HEAD = struct.Struct(">BHBIII")
BASE_INTEGER, BASE_STABLE, BASE_FLOAT = 0, 1, 2
BASE_KINDS = ("integer decoder", "float decoder, rounded stably", "float decoder (CRC-checked)")
MAX_BOUND = 32767
#: precision (bits) at which a float base reconstruction is rounded stably; learned bases reach
#: 35-38 dB, so their lower bits are noise (see docs/bitstream.md)
BASE_PRECISION = 8
#: margin of the stable rounding of a float base (units of the 2**P - 1 grid)
BASE_MARGIN = 2.0 ** -10
#: base rate settings used when none is given (JPEG 2000: compression ratio; chosen by
#: benchmarks/residual.py --base-sweep on held-out images, see docs/results.md)
DEFAULT_BASE_QUALITY = {"jpeg2000": 80}


def _crc(values: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(values, dtype="<u2").tobytes())


def build_base(name: str, pretrained: bool | str = "auto") -> Codec:
    """The base codec ``name`` as the residual layer uses it: pretrained weights where they
    ship (``pretrained`` as in :func:`codeczoo.load`); JPEG 2000 with the reversible 5/3 wavelet
    (integer decoding on every machine)."""
    if name == ResidualCodec.codec_name:
        raise CodeczooError("the residual layer cannot be its own base")
    options = {"reversible": True} if name == "jpeg2000" else {}
    return load(name, pretrained=pretrained, **options)


CARD = CodecCard(
    description="Lossless and near-lossless coding with a guaranteed per-pixel bound "
                "|x - x_rec| <= K over any base codec: lossy base + residual coded with a learned "
                "conditional model and CompressAI's rANS.",
    paper=Paper(title="Learning Scalable l-infinity-constrained Near-lossless Image Compression "
                      "via Joint Lossy Image and Residual Compression",
                authors=("Yuanchao Bai", "Xianming Liu", "Wangmeng Zuo", "Yaowei Wang",
                         "Xiangyang Ji"),
                venue="IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR) 2021",
                arxiv="2103.17015"),
    related=(Paper(title="Deep Lossy Plus Residual Coding for Lossless and Near-lossless Image "
                         "Compression",
                   venue="IEEE Transactions on Pattern Analysis and Machine Intelligence 2024",
                   arxiv="2209.04847"),),
    argument_notes={
        "base": "any registered codec except residual (JPEG 2000 with the reversible 5/3 "
                "wavelet by default: integer decoding on every machine)",
        "base_quality": "the base's own rate setting; default for jpeg2000: ratio 80, chosen by "
                        "benchmarks/residual.py --base-sweep on training images",
        "channels": "what is ours: a small CPU-sized conditional model over the four 2x2 "
                    "phases, two levels, seven passes; one model of the unquantized residual "
                    "serves every K (bin probabilities are its CDF summed over the 2K+1 bin, "
                    "as in Bai et al.)",
        "margin": "stable-rounding margin that makes the bound hold across machines"},
    rate="the bound K: every decoded pixel is within K of the original (0 = lossless), "
         "0..32767; the payload holds the base's complete codeczoo bitstream and the residual "
         "(docs/bitstream.md)",
    intended_use="archiving and teleradiology where every pixel must stay within a stated "
                 "bound of the original (K = 0: lossless); see docs/results.md for where it "
                 "beats JPEG-LS and where it does not",
)


@register_codec("residual", CARD)
class ResidualCodec(nn.Module, Codec):
    """Lossless / near-lossless coding with a guaranteed per-pixel bound ``K`` over any base codec.

    The rate setting (``quality``) is the bound ``K``: every decoded pixel is within ``K`` of the
    original, ``K = 0`` is lossless.

    Args:
        base: the base codec: a registered name (built by :func:`build_base`) or a codec instance.
        base_quality: the base's rate setting (default: :data:`DEFAULT_BASE_QUALITY` for JPEG 2000,
            else the base's own default).
        channels, layers: size of the residual model (:class:`ResidualModel`).
        margin: stable-rounding margin of the residual model's table indices (index units).
        base_margin: stable-rounding margin of a float base reconstruction.
    """

    codec_version: ClassVar[str] = "1"
    learned: ClassVar[bool] = True
    qualities = range(0, MAX_BOUND + 1)
    default_quality = 0
    demo_qualities = (0, 2)
    eval_qualities = (0, 1, 2, 4, 8)

    def __init__(self, base: str | Codec = "jpeg2000", base_quality: int | None = None,
                 channels: int = 24, layers: int = 3, margin: float = MARGIN,
                 base_margin: float = BASE_MARGIN):
        super().__init__()
        self.model = ResidualModel(channels, layers)
        if not (0 <= margin < 0.5 and 0 <= base_margin < 0.5):
            raise CodeczooError("stable-rounding margins must be in [0, 0.5)")
        self.margin, self.base_margin = float(margin), float(base_margin)
        self.__dict__["_base"] = base       # not a submodule: its weights are not ours
        self.base_quality = base_quality
        self._bank: rans.TableBank | None = None
        self._hash_cache: tuple[tuple, bytes] | None = None
        #: statistics of the last encode (flagged positions), for benchmarks
        self.last_stats: dict = {}

    # -- base codec ------------------------------------------------------------------------------
    @property
    def base(self) -> Codec:
        if isinstance(self._base, str):
            self.__dict__["_base"] = build_base(self._base)
        return self._base

    @property
    def base_name(self) -> str:
        return self._base if isinstance(self._base, str) else self._base.codec_name

    def resolved_base_quality(self) -> int:
        if self.base_quality is not None:
            return int(self.base_quality)
        return DEFAULT_BASE_QUALITY.get(self.base_name, self.base.default_quality)

    def _base_decoder(self, inner: bytes, header: Header) -> Codec:
        """The codec that decodes the embedded base bitstream: ours if it wrote it, else the
        registry's (chosen from its header, weights checked)."""
        mine = self._base
        if (not isinstance(mine, str) and mine.codec_name == header.codec
                and mine.weights_hash() == header.weights_hash):
            return mine
        from .. import decoder_for

        return decoder_for(header)

    def _base_kind(self, base: Codec, quality: int) -> int:
        if base.integer_decoding(quality):
            return BASE_INTEGER
        if base.unit_values:
            return BASE_STABLE
        return BASE_FLOAT

    def _reconstruct_base(self, inner: bytes, kind: int, spec: ImageSpec, data: bytes | None,
                          pos: int) -> tuple[np.ndarray, bytes, int]:
        """Base reconstruction ``c0`` (int64, H x W) from the embedded bitstream.

        Kind 1: encoding (``data is None``) rounds stably and returns the side information;
        decoding reads it from ``data[pos:]``.  Returns ``(c0, side information, new pos)``.
        """
        header, base_payload = bitstream.unpack(inner)
        if (header.spec.height, header.spec.width, header.spec.bits_stored) != (
                spec.height, spec.width, spec.bits_stored) or header.spec.dtype != "uint16":
            raise BitstreamError("the embedded base bitstream describes another image")
        decoder = self._base_decoder(inner, header)
        if kind != BASE_STABLE:
            return decoder.decode(inner).astype(np.int64), b"", pos
        unit = decoder.decode_unit_values(base_payload, header)
        if unit.shape != (spec.height, spec.width):
            raise BitstreamError("the base decoder returned the wrong size")
        levels = (1 << BASE_PRECISION) - 1
        u = np.clip(unit.astype(np.float64), 0.0, 1.0) * levels
        if data is None:
            k, flagged = stable.round_flagged(u, self.base_margin)
            side = bytes([BASE_PRECISION]) + stable.pack_overrides(flagged, k)
        else:
            if pos >= len(data) or data[pos] != BASE_PRECISION:
                raise BitstreamError("unsupported base rounding precision")
            k, _ = stable.round_flagged(u, 0.0)
            positions, (values,), pos = stable.unpack_overrides(data, pos + 1, k.size, 1,
                                                                [(0, levels)])
            k.ravel()[positions] = values
            side = b""
        top = (1 << spec.bits_stored) - 1
        return (k * top + levels // 2) // levels, side, pos

    # -- residual model ------------------------------------------------------------------------
    def bank(self) -> rans.TableBank:
        if self._bank is None:
            self._bank = rans.TableBank(self.model.cdfs.cpu().numpy(),
                                        self.model.cdf_lengths.cpu().numpy())
        return self._bank

    def _apply(self, fn, *args, **kwargs):  # a new device / dtype / loaded state: rebuild lists
        self._bank = None
        return super()._apply(fn, *args, **kwargs)

    def load_state_dict(self, *args, **kwargs):
        self._bank = None
        return super().load_state_dict(*args, **kwargs)

    def weights_hash(self) -> bytes:
        state = self.state_dict()
        key = tuple((name, t.data_ptr(), t._version) for name, t in state.items())
        if self._hash_cache is None or self._hash_cache[0] != key:
            self._hash_cache = (key, state_dict_hash(state))
        return self._hash_cache[1]

    # -- byte layer ------------------------------------------------------------------------------
    def is_lossless(self, quality: int) -> bool:
        return int(quality) == 0

    def encode_values(self, values: np.ndarray, spec: ImageSpec, quality: int
                      ) -> tuple[bytes, tuple[int, int]]:
        bound = int(quality)
        base, base_quality = self.base, self.resolved_base_quality()
        inner = base.encode(values.astype(np.uint16), base_quality, bits_stored=spec.bits_stored)
        kind = self._base_kind(base, base.check_quality(base_quality))
        c0, side, _ = self._reconstruct_base(inner, kind, spec, None, 0)
        was_training = self.training
        self.eval()
        try:
            residual, x_rec, stats = encode_residual(self.model, values, c0, bound,
                                                     spec.bits_stored, self.bank(), self.margin)
        finally:
            self.train(was_training)
        worst = int(np.abs(x_rec - values.astype(np.int64)).max())
        if worst > bound:  # cannot happen by construction; refuse rather than emit a broken file
            raise CodeczooError(f"internal error: residual coding missed the bound ({worst} > {bound})")
        self.last_stats = {**stats, "base_bytes": len(inner), "base_side_bytes": len(side),
                           "residual_bytes": len(residual), "base_kind": kind}
        head = _HEAD.pack(PAYLOAD_FORMAT, bound, kind, _crc(c0), _crc(x_rec), len(inner))
        return head + inner + side + residual, (0, 0)

    def decode_values(self, payload: bytes, header: Header) -> np.ndarray:
        info = parse_head(payload)
        if info["max_error"] != header.quality:
            raise BitstreamError(f"header says bound {header.quality}, payload says "
                                 f"{info['max_error']}: the bitstream is inconsistent")
        spec, bound = header.spec, info["max_error"]
        start = _HEAD.size
        inner = payload[start:start + info["base_bytes"]]
        c0, _, pos = self._reconstruct_base(inner, info["base_kind"], spec, payload,
                                            start + info["base_bytes"])
        if _crc(c0) != info["base_crc"]:
            raise BitstreamError(
                "the base reconstruction differs from the encoder's (a float base decoder that "
                "computes differently on this machine): the error bound cannot be guaranteed")
        was_training = self.training
        self.eval()
        try:
            x_rec, pos = decode_residual(self.model, payload, pos, c0, bound, spec.bits_stored,
                                         self.bank())
        finally:
            self.train(was_training)
        if pos != len(payload):
            raise BitstreamError("residual payload has trailing bytes")
        if _crc(x_rec) != info["image_crc"]:
            raise BitstreamError("the decoded image fails its CRC-32 (damaged residual payload, "
                                 "or a residual model that computes differently beyond the margin)")
        return x_rec.astype(np.uint16)

    def fp16_effect(self, arguments: dict, state_fp16: dict) -> dict:
        """What fp16 weight storage costs (``codeczoo export --fp16``): real bytes of the
        package's sample X-ray at K = 0 and 2, fp32 against fp16-rounded weights."""
        from pathlib import Path

        from ..io import read_image

        sample = Path(__file__).resolve().parent.parent / "samples" / "chest_1_8bit.png"
        image = read_image(sample).pixels[:256, :256]
        rounded = type(self)(**{**arguments, "base": self._base})
        rounded.load_state_dict({k: v.float() if v.is_floating_point() else v
                                 for k, v in state_fp16.items()})
        rounded.eval()
        changes = []
        for bound in (0, 2):
            full, half = len(self.encode(image, bound)), len(rounded.encode(image, bound))
            if not np.abs(rounded.decode(rounded.encode(image, bound)).astype(np.int64)
                          - image).max() <= bound:
                raise CodeczooError("fp16 weights broke the bound (cannot happen)")
            changes.append((half - full) / full)
        return {"fp16_bytes_change": max(changes, key=abs),
                "fp16_check": f"fp16-stored vs fp32 weights on codeczoo/samples/{sample.name} "
                              "(256 x 256), K = 0 and 2: largest relative change of the coded "
                              "bytes (the bound holds either way)"}

    @classmethod
    def describe_payload(cls, payload: bytes) -> dict:
        """What ``codeczoo info`` shows: the bound, the base codec and the byte split."""
        info = parse_head(payload)
        inner = payload[_HEAD.size:_HEAD.size + info["base_bytes"]]
        base = bitstream.read_header(inner)
        return {"max_error": info["max_error"], "base_codec": base.codec,
                "base_quality": base.quality, "base_weights": base.weights_hex,
                "base_bytes": info["base_bytes"],
                "residual_bytes": len(payload) - _HEAD.size - info["base_bytes"],
                "base_reconstruction": BASE_KINDS[info["base_kind"]]}

    def derivation_description(self, header: Header, payload: bytes) -> str:
        """DICOM Derivation Description (0008,2111): the method, the bound and the base."""
        info = self.describe_payload(payload)
        kind = "lossless" if info["max_error"] == 0 else "near-lossless"
        return (f"{super().derivation_description(header, payload)}: residual coding ({kind}), "
                f"max abs error {info['max_error']} (base {info['base_codec']} quality "
                f"{info['base_quality']})")


def parse_head(payload: bytes) -> dict:
    """The fixed head of a ``residual`` payload, checked."""
    if len(payload) < _HEAD.size:
        raise BitstreamError("residual payload is too short")
    fmt, bound, kind, base_crc, image_crc, base_bytes = _HEAD.unpack_from(payload)
    if fmt != PAYLOAD_FORMAT:
        raise BitstreamError(f"residual payload format {fmt} is not supported (this codeczoo "
                             f"reads {PAYLOAD_FORMAT})")
    if kind >= len(BASE_KINDS) or _HEAD.size + base_bytes > len(payload):
        raise BitstreamError("residual payload head is invalid")
    return {"max_error": bound, "base_kind": kind, "base_crc": base_crc,
            "image_crc": image_crc, "base_bytes": base_bytes}


def bounded(base: str | Codec = "jpeg2000", base_quality: int | None = None, *,
            pretrained: bool | str = "auto", **options) -> ResidualCodec:
    """A :class:`ResidualCodec` over ``base`` with the shipped residual model (``pretrained`` as
    in :func:`codeczoo.load`; a base given by name gets the same choice).

    ``codec.encode(image, K)`` then guarantees ``|image - decode(data)| <= K`` on every pixel.
    """
    if isinstance(base, str):
        base = build_base(base, pretrained)
    return load(ResidualCodec.codec_name, pretrained=pretrained, base=base,
                base_quality=base_quality, **options)
