"""JPEG 2000 (ISO/IEC 15444-1) through glymur and OpenJPEG, behind the codeczoo contract.

The classical baseline of Sushmit et al. (2019) and of most X-ray compression work; DICOM's own
lossless and lossy JPEG 2000 transfer syntaxes use the same coding system. Coding is done by
OpenJPEG (https://www.openjpeg.org), the reference implementation, via glymur's ctypes wrapper;
:mod:`codeczoo.classic.openjpeg` finds the library.

Rate setting (``quality``): the target compression ratio relative to the **stored** bit depth,
``bits_stored * H * W / (8 * bytes)``:

* ``quality=1``: lossless, reversible 5/3 integer wavelet, every stored integer returned exactly;
* ``quality=r >= 2``: irreversible 9/7 wavelet, one quality layer, OpenJPEG's rate allocation
  aiming at ``r``.
* ``bpp=b`` (constructor option or ``encode(..., bpp=b)``): aim at ``b`` bits per pixel instead;
  the header then records the nearest integer ratio (at least 2) as its rate setting.

Sample precision: the codestream declares exactly ``bits_stored`` bits (a 12-bit image is a
12-bit codestream), as DICOM asks of a JPEG 2000 frame (PS3.5 8.2.4: the pixel attributes shall
be consistent with the compressed data stream) and as every decoder expects. Glymur itself only
writes 8- or 16-bit components, so :func:`_precision_writer` sets the component precision in
glymur's component parameters before OpenJPEG encodes; with a glymur that lacks that hook the
codestream falls back to 8/16 bits and the ratio handed to OpenJPEG is scaled by
``precision / bits_stored`` to keep ``r`` relative to the stored bits. Payloads of either kind
decode the same (codeczoo before this change wrote 16-bit codestreams for 9-15-bit images).

Payload: the bare JPEG 2000 codestream (what a ``.j2c`` file holds: SOC ... EOC markers, no JP2
boxes), because the codeczoo container already records what the boxes would. Use
:meth:`Jpeg2000.write_jp2` for a standalone ``.jp2`` file. Real rates are always measured from the
bytes written; OpenJPEG's rate control is approximate (headers, a final truncation point).
"""

from __future__ import annotations

import math
import numbers
import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from .. import intensity
from ..atomic import write_bytes
from ..bitstream import Header
from ..codec import Codec
from ..errors import BitstreamError, CodeczooError, one_line
from ..intensity import ImageSpec
from ..cards import CodecCard, Paper
from ..registry import register_codec
from .codestream import EOC, check_codestream
from .declared import j2k_check_complete
from .openjpeg import ensure_openjpeg

MAX_RATIO = 1000


def container_precision(bits_stored: int) -> int:
    """Sample type glymur is handed for ``bits_stored``-bit data (8 or 16 bits)."""
    return 8 if bits_stored <= 8 else 16


def _precision_writer(bits_stored: int):
    """A ``glymur.Jp2k`` that writes ``bits_stored``-bit components, and the precision it writes.

    Glymur fills OpenJPEG's component parameters (``_populate_comptparms``) with 8 or 16 bits
    from the array type; this subclass then sets the precision to the stored bits. Without that
    hook (another glymur) it is glymur's own class and 8/16-bit precision.
    """
    import glymur

    if not hasattr(glymur.Jp2k, "_populate_comptparms"):
        return glymur.Jp2k, container_precision(bits_stored)

    class ExactPrecisionJp2k(glymur.Jp2k):
        def _populate_comptparms(self, img_array):
            super()._populate_comptparms(img_array)
            for component in self._comptparms:
                component.prec = component.bpp = bits_stored

    return ExactPrecisionJp2k, bits_stored


def number_of_resolutions(height: int, width: int, wanted: int = 6) -> int:
    """Wavelet levels + 1 that OpenJPEG accepts for this size (it needs ``min(H, W) >> (n-1) >= 1``)."""
    return max(1, min(wanted, int(math.floor(math.log2(min(height, width)))) + 1))


def _write_codestream(path: str, values: np.ndarray, bits_stored: int, ratio: float | None,
                      numres: int, reversible: bool = False) -> None:
    """Encode unsigned ``values`` to ``path`` (``.j2c`` codestream or ``.jp2`` file).

    ``ratio=None`` is lossless (5/3); otherwise the 9/7 wavelet (the 5/3 one if ``reversible``)
    at compression ratio ``ratio`` relative to ``bits_stored``.
    """
    writer, precision = _precision_writer(bits_stored)
    data = np.ascontiguousarray(values, dtype=np.uint8 if bits_stored <= 8 else np.uint16)
    levels = number_of_resolutions(*data.shape, wanted=numres)
    kwargs: dict = {"numres": levels}
    if ratio is not None:
        kwargs.update(irreversible=not reversible,
                      cratios=[float(ratio) * precision / bits_stored])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # encoder chatter; the decode below is checked
            writer(path, data=data, **kwargs)
    except Exception as exc:
        raise CodeczooError(
            f"JPEG 2000 encoding failed ({type(exc).__name__}: {one_line(str(exc))})") from exc
    # OpenJPEG does not report failed writes (a full disk, a file size limit): it leaves a
    # truncated file and returns. A codestream always ends with EOC (FF D9), which byte
    # stuffing keeps out of the coded data, so a file without it was cut short.
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 2))
            tail = handle.read(2)
    except OSError as exc:
        raise CodeczooError(f"JPEG 2000 encoding failed ({exc.strerror})") from None
    if tail != EOC:
        raise CodeczooError(
            f"JPEG 2000 encoding failed: OpenJPEG wrote an incomplete codestream ({size} bytes, "
            f"no EOC marker); is the disk of {os.path.dirname(path) or '.'} full?")


def _read_codestream(payload: bytes, height: int, width: int, bits_stored: int) -> np.ndarray:
    """Decode a bare codestream; any OpenJPEG error or warning is a :class:`BitstreamError`.

    The SIZ marker is checked against the expected size and sample precision first
    (:func:`~codeczoo.classic.codestream.check_codestream`), so OpenJPEG never allocates for a
    size the caller did not expect.
    """
    import glymur

    check_codestream(payload, height, width, (bits_stored, container_precision(bits_stored)))
    with tempfile.TemporaryDirectory(prefix="codeczoo-j2k-") as tmp:
        path = os.path.join(tmp, "payload.j2c")
        try:
            with open(path, "wb") as handle:
                handle.write(payload)
        except OSError as exc:  # not the payload's fault: say what failed
            raise CodeczooError(
                f"cannot write OpenJPEG's temporary input in {tmp}: {exc.strerror}") from None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                values = glymur.Jp2k(path)[:]
            except Exception as exc:
                raise BitstreamError(
                    f"JPEG 2000 payload could not be decoded ({one_line(str(exc))})") from None
    problems = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    if problems:
        raise BitstreamError(f"JPEG 2000 payload is damaged (OpenJPEG: {one_line(problems[0])})")
    if values.ndim != 2:
        raise BitstreamError(f"JPEG 2000 payload holds {values.shape[-1]} components, expected 1")
    return values


CARD = CodecCard(
    description="JPEG 2000 (ISO/IEC 15444-1) through glymur and OpenJPEG: lossless (reversible "
                "5/3) or lossy (irreversible 9/7) at a target ratio, 1 to 16 bit.",
    paper=Paper(title="ISO/IEC 15444-1: JPEG 2000 image coding system, Part 1: Core coding "
                      "system", venue="ISO/IEC", url="https://www.openjpeg.org"),
    rate="quality = target compression ratio relative to the stored bit depth (quality 10 on a "
         "12-bit image = 1.2 bpp); 1 = lossless; or bpp= in Python",
    argument_notes={"reversible": "lossy rates with the 5/3 wavelet instead of the 9/7: a little "
                                  "worse rate-distortion, but integer decoding on every machine "
                                  "(the residual layer's default base)"},
    license="codeczoo: Apache-2.0; OpenJPEG: BSD-2-Clause",
    intended_use="the classical reference: archives (lossless) and diagnostic-grade lossy "
                 "compression; the payload is the bare codestream DICOM's JPEG 2000 transfer "
                 "syntaxes carry",
)


@register_codec("jpeg2000", CARD)
class Jpeg2000(Codec):
    """JPEG 2000 (ISO/IEC 15444-1) via glymur/OpenJPEG: lossless (quality 1) or a target ratio.

    Args:
        bpp: if set, aim at this many bits per pixel instead of the ratio ``quality``.
        numres: number of resolution levels (wavelet decompositions + 1), reduced automatically
            for small images. 6 is OpenJPEG's default.
        bits: bit depth of the integers the tensor layer (:meth:`compress`) codes its [0, 1]
            floats as.
        reversible: code lossy rates with the reversible 5/3 wavelet (truncated to the rate)
            instead of the 9/7 one: about 0.3-0.6 dB lower PSNR, but OpenJPEG then decodes with
            integer arithmetic only, so every machine reconstructs the same integers (what the
            bounded-error residual layer, :mod:`codeczoo.residual`, wants from its base).
    """

    codec_version = "1"
    qualities = range(1, MAX_RATIO + 1)
    default_quality = 1
    #: ratios the evaluation tools sweep by default (1 = lossless; 2, 4, 8 as in the paper).
    eval_qualities = (1, 2, 4, 8, 10, 16, 32, 64)
    demo_qualities = (1, 10, 40)  # lossless, a diagnostic-grade ratio, an aggressive one
    #: DICOM's defined term for JPEG 2000 lossy compression (PS3.3 C.7.6.1.1.5.1).
    dicom_method = "ISO_15444_1"

    def __init__(self, bpp: float | None = None, numres: int = 6, bits: int = 8,
                 reversible: bool = False):
        if not 1 <= numres <= 32:
            raise CodeczooError(f"jpeg2000: numres must be 1..32, got {numres}")
        if not 1 <= bits <= 16:
            raise CodeczooError(f"jpeg2000: bits must be 1..16, got {bits}")
        self.bpp = bpp
        self.numres = numres
        self.bits = bits
        self.reversible = bool(reversible)
        self._ratio_override: float | None = None
        self.openjpeg = ensure_openjpeg()

    # -- the byte layer ---------------------------------------------------------------------
    def is_lossless(self, quality: int) -> bool:
        return int(quality) == 1

    def dicom_transfer_syntax(self, quality: int) -> str:
        """JPEG 2000 Image Compression (Lossless Only) for quality 1, else JPEG 2000."""
        return "1.2.840.10008.1.2.4.90" if self.is_lossless(quality) else "1.2.840.10008.1.2.4.91"

    def integer_decoding(self, quality: int) -> bool:
        """Whether the decoder uses integer arithmetic only (lossless, or the 5/3 wavelet)."""
        return self.is_lossless(quality) or self.reversible

    def _ratio(self, spec: ImageSpec, quality: int) -> float | None:
        if self._ratio_override is not None:
            return self._ratio_override
        return None if quality == 1 else float(quality)

    def encode_values(self, values: np.ndarray, spec: ImageSpec, quality: int
                      ) -> tuple[bytes, tuple[int, int]]:
        with tempfile.TemporaryDirectory(prefix="codeczoo-j2k-") as tmp:
            path = os.path.join(tmp, "payload.j2c")
            _write_codestream(path, values, spec.bits_stored, self._ratio(spec, quality),
                              self.numres, self.reversible)
            return Path(path).read_bytes(), (0, 0)

    def decode_values(self, payload: bytes, header: Header) -> np.ndarray:
        spec = header.spec
        if header.pad_bottom or header.pad_right:
            raise BitstreamError("header records padding; codeczoo's JPEG 2000 payload has none")
        j2k_check_complete(payload)  # OpenJPEG may decode a cut stream with a warning only
        values = _read_codestream(payload, spec.height, spec.width, spec.bits_stored)
        return values.astype(np.uint16, copy=False)

    def _resolve_bpp(self, quality: int | None, bpp: float | None) -> float | None:
        """An explicit ``bpp`` excludes ``quality``; the constructor's ``bpp`` yields to ``quality``."""
        if bpp is not None and quality is not None:
            raise CodeczooError("jpeg2000: give either quality or bpp, not both")
        return self.bpp if bpp is None and quality is None else bpp

    @contextmanager
    def _bpp_target(self, bpp: float | None, bits_stored: int):
        """Within the block, code at ``bits_stored / bpp`` instead of the integer quality."""
        if bpp is None:
            yield None
            return
        if isinstance(bpp, bool) or not isinstance(bpp, numbers.Real) or not 0 < bpp < bits_stored:
            raise CodeczooError(
                f"jpeg2000: bpp must be in (0, {bits_stored}) for {bits_stored}-bit data, got {bpp!r}"
                " (use quality=1 for lossless)")
        self._ratio_override = bits_stored / float(bpp)
        try:
            yield max(2, min(MAX_RATIO, round(self._ratio_override)))
        finally:
            self._ratio_override = None

    def encode(self, image: np.ndarray, quality: int | None = None, *, bpp: float | None = None,
               bits_stored: int | None = None, photometric: str = "MONOCHROME2",
               **container) -> bytes:
        """Compress ``image``; ``quality`` = compression ratio (1 lossless) or ``bpp`` = bits/pixel.

        ``container`` options (``metadata``, ``metadata_kind``) go to :meth:`Codec.encode`.
        """
        bpp = self._resolve_bpp(quality, bpp)
        if bpp is None:
            return super().encode(image, quality, bits_stored=bits_stored,
                                  photometric=photometric, **container)
        spec = intensity.describe(image, bits_stored, photometric)
        with self._bpp_target(bpp, spec.bits_stored) as header_quality:
            return super().encode(image, header_quality, bits_stored=bits_stored,
                                  photometric=photometric, **container)

    def write_jp2(self, path: str | os.PathLike, image: np.ndarray, quality: int | None = None, *,
                  bpp: float | None = None, bits_stored: int | None = None,
                  overwrite: bool = False) -> int:
        """Write ``image`` as a standalone ``.jp2`` file (JP2 boxes + codestream); return its size.

        For comparisons with JPEG 2000 as users store it on disk. Refuses to replace an existing
        file unless ``overwrite``.
        """
        path = Path(path)
        if path.suffix.lower() != ".jp2":
            raise CodeczooError(f"write_jp2 writes .jp2 files, not {path.name}")
        if path.exists() and not overwrite:
            raise CodeczooError(f"{path} exists (pass overwrite=True to replace it)")
        spec = intensity.describe(image, bits_stored)
        values = intensity.to_unsigned(image, spec)
        bpp = self._resolve_bpp(quality, bpp)
        with self._bpp_target(bpp, spec.bits_stored) as bpp_quality:
            ratio = self._ratio(spec, self.check_quality(quality if bpp is None else bpp_quality))
            with tempfile.TemporaryDirectory(prefix="codeczoo-jp2-") as tmp:
                encoded = os.path.join(tmp, "image.jp2")  # glymur picks the format by suffix
                _write_codestream(encoded, values, spec.bits_stored, ratio, self.numres,
                                  self.reversible)
                write_bytes(path, Path(encoded).read_bytes(), overwrite=overwrite)
        return path.stat().st_size

    # -- the CompressAI-style tensor layer -----------------------------------------------------
    def compress(self, x: torch.Tensor) -> dict:
        """Code float images ``(B, 1, H, W)`` in [0, 1] as ``self.bits``-bit JPEG 2000 codestreams.

        Uses ``default_quality`` (set by ``codeczoo.load(..., quality=...)``) or ``bpp``.
        Returns ``{"strings": [[codestream per item]], "shape": (H, W)}``.
        """
        if x.dim() != 4 or x.shape[1] != 1:
            raise CodeczooError(f"jpeg2000.compress expects (B, 1, H, W), got {tuple(x.shape)}")
        height, width = x.shape[-2:]
        spec = ImageSpec(int(height), int(width), "uint8" if self.bits <= 8 else "uint16", self.bits)
        strings = []
        with self._bpp_target(self.bpp, self.bits):
            for item in x:
                values = intensity.from_unit(item, self.bits)
                strings.append(self.encode_values(values, spec, self.default_quality)[0])
        return {"strings": [strings], "shape": (int(height), int(width))}

    def decompress(self, strings, shape) -> dict:
        """Inverse of :meth:`compress`: ``{"x_hat": (B, 1, H, W)}`` float in [0, 1]."""
        items = []
        height, width = (int(v) for v in shape)
        for payload in strings[0]:
            values = _read_codestream(payload, height, width, self.bits)
            values = np.minimum(values.astype(np.uint16), (1 << self.bits) - 1)
            items.append(intensity.to_unit(values, self.bits)[0])
        return {"x_hat": torch.stack(items)}
