"""The byte layer every codeczoo codec shares: NumPy image in, container bytes out, and back.

A codec has two layers (see ``docs/architecture.md``):

* the **tensor layer**, CompressAI's contract: ``compress(x) -> {"strings", "shape"}`` and
  ``decompress(strings, shape) -> {"x_hat"}`` on float tensors in [0, 1];
* the **byte layer**, this class: ``encode(image, quality) -> bytes`` and ``decode(bytes) ->
  image`` on 2-D integer images of any size and any bit depth from 1 to 16, returning exactly the
  original shape and dtype, wrapped in the self-describing container of :mod:`codeczoo.bitstream`.

A codec subclasses :class:`Codec` (learned codecs also subclass
``compressai.models.CompressionModel``) and implements :meth:`Codec.encode_values` and
:meth:`Codec.decode_values`, which see only unsigned integers in ``[0, 2**bits - 1]``: validation,
signedness and bit depth are handled here and in :mod:`codeczoo.intensity`, never in a codec.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar, Sequence

import numpy as np

from . import bitstream, intensity
from .bitstream import NO_WEIGHTS, Header
from .errors import BitstreamError, CodecMismatchError, CodeczooError
from .intensity import ImageSpec


class Codec:
    """Byte-layer mixin: container handling and validation around a codec's own coding.

    What a codec declares (class attributes, read by evaluation, training and export instead of
    probing with ``hasattr``):
        codec_name: registry name (set by :func:`codeczoo.registry.register_codec` and by
            :func:`codeczoo.registry.build` for each entry, variants included).
        codec_version: bumped whenever the payload format changes; a bitstream written by another
            version is refused instead of mis-decoded, unless listed in ``reads_codec_versions``.
        reads_codec_versions: earlier versions whose payloads this version still decodes.
        qualities: the valid rate settings, lowest rate first.
        default_quality: used when ``encode`` is called without ``quality``.
        eval_qualities: the rates evaluation sweeps by default (empty: chosen from
            ``qualities``); demo_qualities: the rates ``codeczoo demo`` shows.
        learned: the codec has trained weights (a ``torch.nn.Module``); encoding with untrained
            ones is refused by the command line and :func:`codeczoo.encode`.
        progressive: quality is a number of coding iterations of one recurrent network, which
            has ``encode_codes`` / ``decode_codes`` / ``max_iterations`` (training unrolls it).
        spatial_multiple: the networks' downsampling; crops for training and tests are
            multiples of it (1 for classic codecs).
        model_per_quality: every quality is a separately trained network (CompressAI's zoo:
            one model per rate-distortion trade-off). Such a codec takes a ``quality``
            constructor argument, its registry holds one weights entry per quality (the
            entry's ``arguments["quality"]``), ``codeczoo.load(name, quality=q)`` builds that
            quality's network, and an instance codes its own quality only:
            :meth:`for_quality` gives the instance for another one.
        lmbda: the rate-distortion trade-off this network is trained for (CompressAI's
            ``lmbda``: ``lmbda * 255**2 * MSE + bpp``); ``None`` for codecs without one.
            ``CodecModule`` trains with it unless told otherwise.
    """

    codec_name: str = ""
    codec_version: ClassVar[str] = "1"
    reads_codec_versions: ClassVar[tuple[str, ...]] = ()
    qualities: Sequence[int] = ()
    default_quality: int = 1
    eval_qualities: Sequence[int] = ()
    demo_qualities: Sequence[int] = ()
    learned: ClassVar[bool] = False
    progressive: ClassVar[bool] = False
    spatial_multiple: int = 1
    model_per_quality: ClassVar[bool] = False
    lmbda: float | None = None

    # -- what a codec implements -------------------------------------------------------------
    def encode_values(self, values: np.ndarray, spec: ImageSpec, quality: int
                      ) -> tuple[bytes, tuple[int, int]]:
        """Code unsigned integers (``uint16``, H x W, < 2**spec.bits_stored).

        Returns the payload and the padding ``(bottom, right)`` the codec added.
        """
        raise NotImplementedError

    def decode_values(self, payload: bytes, header: Header) -> np.ndarray:
        """Inverse of :meth:`encode_values`: unsigned integers of the original H x W."""
        raise NotImplementedError

    def is_lossless(self, quality: int) -> bool:
        """Whether ``quality`` reproduces every stored integer exactly."""
        return False

    def weights_hash(self) -> bytes:
        """First 8 bytes of the sha256 of the codec's weights (zeros for codecs without)."""
        return NO_WEIGHTS

    def for_quality(self, quality: int) -> "Codec":
        """The instance that codes ``quality``: this one, unless every quality is its own
        network (``model_per_quality``), in which case that quality's network is loaded."""
        self.check_quality(quality)
        return self

    def rate_table(self) -> list[dict]:
        """quality -> what it means in bits (for cards and docs); empty if not tabulated."""
        return []

    # torch.nn.Module provides these for learned codecs; classic codecs have nothing to move.
    def to(self, *args, **kwargs):
        return self

    def eval(self):
        return self

    # -- the shared byte layer -----------------------------------------------------------------
    def check_quality(self, quality: int | None) -> int:
        quality = self.default_quality if quality is None else quality
        if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)):
            raise CodeczooError(f"{self.codec_name}: quality must be an integer, got {quality!r}")
        if self.qualities and int(quality) not in self.qualities:
            raise CodeczooError(
                f"{self.codec_name}: quality {quality} not supported "
                f"(choose from {min(self.qualities)}..{max(self.qualities)})")
        return int(quality)

    def default_eval_qualities(self, count: int = 8) -> list[int]:
        """The qualities evaluation sweeps when none are given: ``eval_qualities`` if declared,
        else every quality if there are at most ``count``, else ``count`` of them spaced
        geometrically from the lowest to the highest."""
        if self.eval_qualities:
            return sorted({self.check_quality(int(q)) for q in self.eval_qualities})
        qualities = sorted(int(q) for q in self.qualities)
        if not qualities:
            return [self.check_quality(None)]
        if len(qualities) <= count:
            return qualities
        picks = np.unique(np.round(np.geomspace(1, len(qualities), count)).astype(int) - 1)
        return [qualities[i] for i in picks]

    def encode(self, image: np.ndarray, quality: int | None = None, *,
               bits_stored: int | None = None, photometric: str = "MONOCHROME2",
               metadata: bytes = b"", metadata_kind: str = "none") -> bytes:
        """Compress a 2-D integer image into a self-describing codeczoo bitstream.

        ``metadata`` (e.g. a DICOM data set without pixel data, ``metadata_kind="dicom"``) travels
        in the container untouched, so a decoder can restore the original file format.
        """
        if not self.codec_name:
            raise CodeczooError(
                f"{type(self).__name__} has no registered name: build it with "
                "codeczoo.load(name) (or register the class with codeczoo.register_codec)")
        if metadata and metadata_kind == "none":
            raise CodeczooError("metadata given without a metadata_kind")
        spec = intensity.describe(image, bits_stored, photometric)
        quality = self.check_quality(quality)
        payload, (pad_bottom, pad_right) = self.encode_values(
            intensity.to_unsigned(image, spec), spec, quality)
        header = Header(self.codec_name, self.codec_version, self.weights_hash(), quality, spec,
                        pad_bottom, pad_right, len(payload), metadata_kind, bytes(metadata))
        return bitstream.pack(header, payload)

    def check_header(self, header: Header) -> None:
        """Refuse a bitstream written by another codec, version or set of weights."""
        if header.codec != self.codec_name:
            raise CodecMismatchError(
                f"bitstream was written by codec {header.codec!r}, not {self.codec_name!r}")
        if header.codec_version not in (self.codec_version, *self.reads_codec_versions):
            raise CodecMismatchError(
                f"bitstream was written by {header.codec} version {header.codec_version}; "
                f"this codeczoo has version {self.codec_version}")
        mine = self.weights_hash()
        if header.weights_hash != mine:
            raise CodecMismatchError(
                f"bitstream was written with {header.codec} weights {header.weights_hex}, "
                f"these weights are {mine.hex()}")
        if self.qualities and header.quality not in self.qualities:
            raise BitstreamError(f"header holds an invalid quality {header.quality}")

    def decode_payload(self, header: Header, payload: bytes) -> np.ndarray:
        """Decode an already parsed and verified container (see :func:`bitstream.unpack`)."""
        self.check_header(header)
        try:
            values = self.decode_values(payload, header)
        except CodeczooError:
            raise
        except Exception as exc:  # a payload the CRC passed but the codec cannot parse
            raise BitstreamError(f"{header.codec} payload could not be decoded ({exc})") from exc
        spec = header.spec
        if values.shape != (spec.height, spec.width):
            raise BitstreamError(
                f"decoded {values.shape[0]}x{values.shape[1]}, header says {spec.height}x{spec.width}")
        return intensity.from_unsigned(values, spec)

    def decode_with_header(self, data: bytes) -> tuple[np.ndarray, Header]:
        header, payload = bitstream.unpack(data)
        return self.decode_payload(header, payload), header

    def decode(self, data: bytes) -> np.ndarray:
        """Decompress a codeczoo bitstream back to the original shape and dtype."""
        return self.decode_with_header(data)[0]


def state_dict_hash(state_dict) -> bytes:
    """sha256 over a module's tensors (sorted names, float32 little-endian), first 8 bytes.

    Two models with this hash decode each other's bitstreams identically; it is what the
    container records as the weights hash of a learned codec.
    """
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key]
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(
            tensor.detach().cpu().float().numpy(), dtype="<f4").tobytes())
    return digest.digest()[:8]


def cached_weights_hash(module) -> bytes:
    """:func:`state_dict_hash` of a ``torch.nn.Module``, cached on the module until one of its
    tensors changes (replaced, resized or modified in place)."""
    state = module.state_dict()
    key = tuple((name, t.data_ptr(), t._version, tuple(t.shape), t.dtype)
                for name, t in state.items())
    cached = module.__dict__.get("_weights_hash_cache")
    if cached is None or cached[0] != key:
        cached = (key, state_dict_hash(state))
        module.__dict__["_weights_hash_cache"] = cached
    return cached[1]
