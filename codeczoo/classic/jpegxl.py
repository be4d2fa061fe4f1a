"""JPEG XL (ISO/IEC 18181-1) through libjxl, behind the codeczoo contract.

JPEG XL's two modes both serve radiographs: *modular* mode (lossless: MA-tree context modelling
of predicted residuals, which wins most lossless radiograph comparisons) and *VarDCT* (lossy:
variable-size DCT in the XYB space with adaptive quantisation; Alakuijala et al., SPIE 2019).
Coding is done by libjxl (https://github.com/libjxl/libjxl), the reference implementation,
through ``imagecodecs``; the codestream declares exactly the stored bits (1 to 16).

Rate setting (``quality``), cjxl's ``-q``:

* ``quality=100``: lossless (modular mode), every stored integer returned exactly;
* ``quality=q < 100``: lossy at the Butteraugli *distance* libjxl derives from ``q``
  (``JxlEncoderDistanceFromQuality``: ``0.1 + (100 - q) * 0.09`` for ``q >= 30``, a quadratic
  below), e.g. q 90 = distance 1.0 ("visually lossless" on displays), q 75 = 2.35. The distance
  is perceptual, so the bits a given ``q`` costs depend on the image.

Payload: what libjxl writes without asking for a container: the bare codestream (``FF 0A``
signature) up to 12 bits, the ISO BMFF container with a ``jxll`` level box above (codestream
level 10); either is exactly a ``.jxl`` file. DICOM added JPEG
XL transfer syntaxes in 2024 (Supplement 232), but none of the DICOM tools here (pydicom 3.0,
dcmtk 3.6.7, dicom3tools) reads them yet, so ``--format dicom`` does not write JPEG XL.
"""

from __future__ import annotations

import numpy as np

from ..cards import CodecCard, Paper
from ..errors import BitstreamError, CodeczooError
from ..intensity import ImageSpec
from ..registry import register_codec
from .base import LibraryCodec, binding
from .declared import check_declared, jxl_size

LOSSLESS_QUALITY = 100
REQUIREMENT = "imagecodecs>=2025.3.30"


def distance_for(quality: int) -> float:
    """libjxl's ``JxlEncoderDistanceFromQuality`` (encode.cc), the mapping cjxl's ``-q`` uses."""
    q = float(quality)
    if q >= 100:
        return 0.0
    if q >= 30:
        return 0.1 + (100.0 - q) * 0.09
    return 53.0 / 3000.0 * q * q - 23.0 / 20.0 * q + 25.0


def _imagecodecs():
    return binding("imagecodecs", REQUIREMENT, "jpegxl", attribute="JPEGXL")


CARD = CodecCard(
    description="JPEG XL (ISO/IEC 18181-1) through libjxl (imagecodecs): lossless (modular) or "
                "lossy (VarDCT) at cjxl's quality scale, 1 to 16 bit.",
    paper=Paper(title="JPEG XL next-generation image compression architecture and coding tools",
                authors=("Jyrki Alakuijala", "Ruud van Asseldonk", "Sami Boukortt",
                         "Martin Bruse", "Iulia-Maria Comșa", "Moritz Firsching", "Thomas Fischbacher",
                         "Evgenii Kliuchnikov", "Sebastian Gomez", "Robert Obryk", "Krzysztof Potempa",
                         "Alexander Rhatushnyak", "Jon Sneyers", "Zoltan Szabadka", "Lode Vandevenne",
                         "Luca Versari", "Jan Wassenberg"),
                venue="Proc. SPIE 11137, Applications of Digital Image Processing XLII, 2019",
                url="https://github.com/libjxl/libjxl"),
    related=(Paper(title="ISO/IEC 18181-1: JPEG XL image coding system, Part 1: Core coding "
                         "system", venue="ISO/IEC"),),
    argument_notes={"effort": "libjxl effort 1-10; 7 is cjxl's default (9 gains ~1 % lossless "
                              "at several times the time)",
                    "threads": "libjxl worker threads; 1 keeps benchmarks on one core"},
    rate="quality = cjxl -q: 100 = lossless, q < 100 = Butteraugli distance "
         "0.1 + (100 - q) * 0.09 (q >= 30); e.g. 90 = distance 1.0",
    license="codeczoo: Apache-2.0; libjxl: BSD-3-Clause; imagecodecs: BSD-3-Clause",
    intended_use="the strongest lossless classic codec on radiographs, and a perceptual lossy "
                 "codec; no DICOM output yet (see the module notes)",
)


@register_codec("jpegxl", CARD)
class JpegXl(LibraryCodec):
    """JPEG XL via libjxl: quality 100 lossless, else cjxl's quality scale (a distance).

    Args:
        effort: libjxl's encoder effort (1 fastest .. 10 slowest).
        threads: libjxl worker threads.
        bits: bit depth of the tensor layer's integers (see :class:`LibraryCodec`).
    """

    codec_version = "1"
    qualities = range(1, LOSSLESS_QUALITY + 1)
    default_quality = LOSSLESS_QUALITY
    eval_qualities = (10, 30, 50, 70, 80, 90, 95, 100)
    demo_qualities = (100, 90, 60)

    def __init__(self, effort: int = 7, threads: int = 1, bits: int = 8):
        super().__init__(bits)
        if not 1 <= effort <= 10:
            raise CodeczooError(f"jpegxl: effort must be 1..10, got {effort}")
        if threads < 1:
            raise CodeczooError(f"jpegxl: threads must be >= 1, got {threads}")
        self.effort, self.threads = effort, threads

    def is_lossless(self, quality: int) -> bool:
        return int(quality) >= LOSSLESS_QUALITY

    def _encode(self, values: np.ndarray, spec: ImageSpec, quality: int) -> bytes:
        options = {"effort": self.effort, "bitspersample": spec.bits_stored,
                   "usecontainer": False, "numthreads": self.threads}
        if self.is_lossless(quality):
            options["lossless"] = True
        else:
            options["distance"] = distance_for(quality)
        try:
            return bytes(_imagecodecs().jpegxl_encode(values, **options))
        except CodeczooError:
            raise
        except Exception as exc:
            raise CodeczooError(f"jpegxl: libjxl could not encode ({exc})") from None

    def _decode(self, payload: bytes, spec: ImageSpec) -> np.ndarray:
        check_declared(jxl_size(payload), spec, "jpegxl")
        try:
            values = np.asarray(_imagecodecs().jpegxl_decode(payload, numthreads=self.threads))
        except CodeczooError:
            raise
        except Exception as exc:
            raise BitstreamError(f"jpegxl payload could not be decoded (libjxl: {exc})") from None
        if values.ndim == 3 and values.shape[-1] == 1:
            values = values[..., 0]
        return values
