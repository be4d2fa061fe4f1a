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
from typing import TYPE_CHECKING, ClassVar, Sequence

import numpy as np

from . import bitstream, intensity
from .bitstream import NO_WEIGHTS, Header
from .errors import BitstreamError, CodecMismatchError, CodeczooError, one_line
from .intensity import ImageSpec

if TYPE_CHECKING:
    from .cards import CodecCard
from .limits import check_pixels


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
        coding_options: byte-layer options of :meth:`configure_coding` (an entropy stage, a
            rate control) that change how files are written, not the weights; decoding needs
            none of them (the payload records what the encoder chose).
        dicom_method: DICOM's defined term for the codec's lossy method, Lossy Image Compression
            Method (0028,2114), where DICOM defines one (JPEG 2000: ``ISO_15444_1``); ``None``
            for codecs DICOM does not know (see :func:`codeczoo.io.lossy_method_for`).
        card: the card of a codec registered from another package (an entry point or a class
            path); zoo codecs pass theirs to :func:`~codeczoo.registry.register_codec`.
        model_per_quality: every quality is a separately trained network (CompressAI's zoo:
            one model per rate-distortion trade-off). Such a codec takes a ``quality``
            constructor argument, its registry holds one weights entry per quality (the
            entry's ``arguments["quality"]``), ``codeczoo.load(name, quality=q)`` builds that
            quality's network, and an instance codes its own quality only:
            :meth:`for_quality` gives the instance for another one.
        lmbda: the rate-distortion trade-off this network is trained for (CompressAI's
            ``lmbda``: ``lmbda * 255**2 * MSE + bpp``); ``None`` for codecs without one.
            ``CodecModule`` trains with it unless told otherwise.

    A codec whose payload is a codestream of a DICOM transfer syntax also overrides
    :meth:`dicom_transfer_syntax`; ``codeczoo compress --format dicom`` then writes it
    encapsulated (:mod:`codeczoo.encapsulation`).
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
    dicom_method: ClassVar[str | None] = None
    card: ClassVar["CodecCard | None"] = None
    model_per_quality: ClassVar[bool] = False
    lmbda: float | None = None
    coding_options: ClassVar[tuple[str, ...]] = ()

    # -- coding options ------------------------------------------------------------------------
    def configure_coding(self, **options) -> "Codec":
        """Set the byte layer's options this codec declares in :attr:`coding_options` (e.g.
        the entropy stage); ``codeczoo.load`` passes them from ``NAME@option=value``."""
        if options:
            raise CodeczooError(f"{self.codec_name} has no coding options "
                                f"({', '.join(sorted(options))} given)")
        return self

    def coding_state(self) -> dict:
        """The coding options in effect where they differ from the defaults, with what they
        depend on (e.g. the learned entropy model's hash): recorded by ``codeczoo eval`` so a
        result is never reused for other settings (empty by default)."""
        return {}

    @property
    def label(self) -> str:
        """The codec as ``codeczoo.load`` takes it back: its name, plus coding options that
        differ from the defaults (``NAME@option=value``); what tables and plots show."""
        return self.codec_name

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

    def dicom_transfer_syntax(self, quality: int) -> str | None:
        """The DICOM transfer syntax UID whose encapsulated frames are this codec's payloads at
        ``quality``, or ``None`` when there is none (learned codecs, formats DICOM lacks)."""
        return None

    def integer_decoding(self, quality: int) -> bool:
        """Whether decoding at ``quality`` uses integer arithmetic only, so every machine decodes
        the same integers (the residual layer relies on it; default: lossless qualities)."""
        return self.is_lossless(quality)

    #: :meth:`decode_unit_values` gives the decoder's float reconstruction before rounding
    unit_values: ClassVar[bool] = False

    def decode_unit_values(self, payload: bytes, header: Header) -> np.ndarray:
        """The decoder's float32 reconstruction (H, W) in [0, 1] before rounding, for codecs that
        declare :attr:`unit_values` (the residual layer rounds it stably across machines)."""
        raise NotImplementedError(f"{self.codec_name} does not expose unrounded values")

    @classmethod
    def describe_payload(cls, payload: bytes) -> dict:
        """What ``codeczoo info`` shows of a payload beyond its header (empty by default)."""
        return {}

    def derivation_description(self, header: Header, payload: bytes) -> str:
        """DICOM Derivation Description (0008,2111) of a lossy decode: codec, version, quality
        and weights (codecs add what else defines their output, e.g. an error bound)."""
        weights = "" if not any(header.weights_hash) else f", weights {header.weights_hex}"
        return (f"lossy compression by codeczoo {header.codec} (codec version "
                f"{header.codec_version}, quality {header.quality}{weights})")

    def fp16_effect(self, arguments: dict, state_fp16: dict) -> dict | None:
        """What storing the weights in fp16 costs, for ``codeczoo export --fp16``: notes for the
        weights entry, or ``None`` for export's generic check (reconstructions of the sample)."""
        return None

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
        payload, pads = self.encode_values(intensity.to_unsigned(image, spec), spec, quality)
        return self._container(spec, quality, payload, pads, metadata_kind, bytes(metadata))

    def _container(self, spec: ImageSpec, quality: int, payload: bytes, pads: tuple[int, int],
                   metadata_kind: str = "none", metadata: bytes = b"") -> bytes:
        header = Header(self.codec_name, self.codec_version, self.weights_hash(), quality, spec,
                        pads[0], pads[1], len(payload), metadata_kind, metadata)
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

    def decode_payload(self, header: Header, payload: bytes, *, max_pixels: int | None = None
                       ) -> np.ndarray:
        """Decode an already parsed and verified container (see :func:`bitstream.unpack`);
        images above the pixel limit (:mod:`codeczoo.limits`) are refused before any work."""
        check_pixels(header.spec.height + header.pad_bottom, header.spec.width + header.pad_right,
                     max_pixels)
        self.check_header(header)
        try:
            values = self.decode_values(payload, header)
        except CodeczooError:
            raise
        except Exception as exc:  # a payload the CRC passed but the codec cannot parse
            raise BitstreamError(
                f"{header.codec} payload could not be decoded ({one_line(str(exc))})") from exc
        spec = header.spec
        if values.shape != (spec.height, spec.width):
            raise BitstreamError(
                f"decoded {values.shape[0]}x{values.shape[1]}, header says {spec.height}x{spec.width}")
        return intensity.from_unsigned(values, spec)

    def decode_with_header(self, data: bytes, *, max_pixels: int | None = None
                           ) -> tuple[np.ndarray, Header]:
        header, payload = bitstream.unpack(data)
        return self.decode_payload(header, payload, max_pixels=max_pixels), header

    def decode(self, data: bytes, *, max_pixels: int | None = None) -> np.ndarray:
        """Decompress a codeczoo bitstream back to the original shape and dtype.

        ``max_pixels`` overrides the pixel limit (``CODECZOO_MAX_PIXELS``, default 2**26).
        """
        return self.decode_with_header(data, max_pixels=max_pixels)[0]

    # -- several images at once ------------------------------------------------------------------
    def encode_values_batch(self, values: Sequence[np.ndarray], specs: Sequence[ImageSpec],
                            quality: int) -> list[tuple[bytes, tuple[int, int]]]:
        """:meth:`encode_values` of several images; learned codecs override it to share network
        batches (the default codes them one by one)."""
        return [self.encode_values(v, s, quality) for v, s in zip(values, specs)]

    def decode_values_batch(self, payloads: Sequence[bytes], headers: Sequence[Header]
                            ) -> list[np.ndarray]:
        """:meth:`decode_values` of several payloads (the default decodes them one by one)."""
        return [self.decode_values(p, h) for p, h in zip(payloads, headers)]

    def encode_batch(self, images: Sequence[np.ndarray], quality: int | None = None, *,
                     bits_stored: int | None = None, photometric: str = "MONOCHROME2"
                     ) -> list[bytes]:
        """:meth:`encode` of several images at one quality (no metadata): one bitstream each,
        readable by :meth:`decode`; learned codecs code the images' tiles together."""
        if not self.codec_name:
            raise CodeczooError(f"{type(self).__name__} has no registered name: build it with "
                                "codeczoo.load(name)")
        specs = [intensity.describe(image, bits_stored, photometric) for image in images]
        quality = self.check_quality(quality)
        coded = self.encode_values_batch(
            [intensity.to_unsigned(image, spec) for image, spec in zip(images, specs)], specs,
            quality)
        return [self._container(spec, quality, payload, pads)
                for spec, (payload, pads) in zip(specs, coded)]

    def decode_batch(self, datas: Sequence[bytes], *, max_pixels: int | None = None
                     ) -> list[np.ndarray]:
        """:meth:`decode` of several bitstreams of this codec (every one checked first)."""
        parsed = [bitstream.unpack(data) for data in datas]
        for header, _ in parsed:
            check_pixels(header.spec.height + header.pad_bottom,
                         header.spec.width + header.pad_right, max_pixels)
            self.check_header(header)
        try:
            values = self.decode_values_batch([p for _, p in parsed], [h for h, _ in parsed])
        except CodeczooError:
            raise
        except Exception as exc:  # a payload the CRC passed but the codec cannot parse
            raise BitstreamError(f"{self.codec_name} payload could not be decoded "
                                 f"({one_line(str(exc))})") from exc
        out = []
        for (header, _), v in zip(parsed, values):
            spec = header.spec
            if v.shape != (spec.height, spec.width):
                raise BitstreamError(f"decoded {v.shape[0]}x{v.shape[1]}, header says "
                                     f"{spec.height}x{spec.width}")
            out.append(intensity.from_unsigned(v, spec))
        return out


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
