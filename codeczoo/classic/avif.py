"""AVIF (AV1 intra frames in HEIF, ISO/IEC 23000-22) through libavif and libaom.

AVIF codes a still image as one AV1 key frame (Chen et al., PCS 2018: directional intra
prediction, recursive partitions, multiple transforms, CDEF and loop restoration filters) in a
HEIF container. Coding is done by libavif with the libaom AV1 encoder
(https://aomedia.googlesource.com/aom), through ``imagecodecs``. A grayscale radiograph is coded
as a monochrome (YUV 4:0:0) image, so no colour transform touches the stored integers.

AV1 codes 8, 10 or 12 bits per sample: images of 1-8 stored bits are coded as 8-bit samples,
9-10 as 10-bit, 11-12 as 12-bit, each with the bit depth passed explicitly to the encoder (the
stored integers are not rescaled); more than 12 stored bits is refused with one line.

Rate setting (``quality``): libavif's quality 0-100 (its ``--qcolor``), which libavif maps
linearly onto AV1's quantizer index ``((100 - q) * 63 + 50) // 100`` of 0-63; ``quality=100``
is lossless (quantizer 0 with the lossless transform), every stored integer returned exactly.

How the binding is driven: ``imagecodecs.avif_encode`` codes a 2-D (grayscale) array
losslessly whatever ``level`` says, so lossless coding hands it the 2-D image, and lossy coding
hands it the image as three equal channels with the 4:0:0 (monochrome) output format: libavif's
full-range RGB -> Y conversion of three equal values is the value itself (checked: a ramp of
every 8- and 10-bit value comes back exactly at quality 99), so only AV1's quantisation
changes the integers, and the file holds one (Y) plane.

Payload: the whole ``.avif`` file (HEIF boxes and the AV1 bitstream): an AVIF image has no
shorter standard form. There is no DICOM transfer syntax for AVIF.
"""

from __future__ import annotations

import numpy as np

from ..cards import CodecCard, InputFormat, Paper
from ..errors import BitstreamError, CodeczooError
from ..intensity import ImageSpec
from ..registry import register_codec
from .base import LibraryCodec, binding
from .declared import avif_size, check_declared

LOSSLESS_QUALITY = 100
MAX_BITS = 12
REQUIREMENT = "imagecodecs>=2025.3.30"


def av1_depth(bits_stored: int) -> int:
    """The AV1 sample depth (8, 10 or 12) that holds ``bits_stored`` bits."""
    if bits_stored > MAX_BITS:
        raise CodeczooError(
            f"avif: AV1 codes at most {MAX_BITS} bits per sample, this image has {bits_stored} "
            "(use jpegxl, jpegls, jpeg2000 or htj2k for it)")
    return 8 if bits_stored <= 8 else 10 if bits_stored <= 10 else 12


def quantizer_for(quality: int) -> int:
    """AV1 quantizer index (0-63) libavif uses for ``quality`` (``avif.h``'s quality mapping)."""
    return ((100 - int(quality)) * 63 + 50) // 100


def _imagecodecs():
    return binding("imagecodecs", REQUIREMENT, "avif", attribute="AVIF")


CARD = CodecCard(
    description="AVIF (AV1 intra frame, ISO/IEC 23000-22) through libavif + libaom "
                "(imagecodecs): lossless or lossy at libavif's quality 0-100, 1 to 12 bit.",
    paper=Paper(title="An overview of core coding tools in the AV1 video codec",
                authors=("Yue Chen", "Debargha Mukherjee", "Jingning Han", "Adrian Grange",
                         "Yaowu Xu", "Zoe Liu", "Sarah Parker", "Cheng Chen", "Hui Su",
                         "Urvang Joshi", "Ching-Han Chiang", "Yunqing Wang", "Paul Wilkins",
                         "Jim Bankoski", "Luc Trudeau", "Nathan Egge", "Jean-Marc Valin",
                         "Thomas Davies", "Steinar Midtskogen", "Andrey Norkin", "Peter de Rivaz"),
                venue="Picture Coding Symposium (PCS) 2018",
                url="https://aomediacodec.github.io/av1-avif/"),
    related=(Paper(title="AV1 Image File Format (AVIF)", venue="Alliance for Open Media, 2019",
                   url="https://aomediacodec.github.io/av1-avif/"),),
    input=InputFormat(bit_depths=(1, MAX_BITS)),
    argument_notes={"speed": "libaom speed 0 (slowest, best) .. 10; 6 is libavif's default",
                    "threads": "encoder/decoder threads; 1 keeps benchmarks on one core"},
    rate="quality = libavif quality 0-100 (AV1 quantizer ((100 - q) * 63 + 50) // 100); "
         "100 = lossless",
    license="codeczoo: Apache-2.0; libavif, libaom: BSD-2-Clause; imagecodecs: BSD-3-Clause",
    intended_use="the strongest lossy classic codec at low rates; images up to 12 bits; no "
                 "DICOM transfer syntax exists for it",
)


@register_codec("avif", CARD)
class Avif(LibraryCodec):
    """AVIF via libavif/libaom: quality 100 lossless, else libavif's quality (a quantizer).

    Args:
        speed: libaom encoder speed (0 slowest .. 10 fastest).
        threads: encoder and decoder threads.
        bits: bit depth of the tensor layer's integers (1-12, see :class:`LibraryCodec`).
    """

    codec_version = "1"
    qualities = range(0, LOSSLESS_QUALITY + 1)
    default_quality = LOSSLESS_QUALITY
    eval_qualities = (10, 25, 40, 55, 70, 85, 100)
    demo_qualities = (100, 80, 50)

    def __init__(self, speed: int = 6, threads: int = 1, bits: int = 8):
        super().__init__(bits)
        av1_depth(bits)
        if not 0 <= speed <= 10:
            raise CodeczooError(f"avif: speed must be 0..10, got {speed}")
        if threads < 1:
            raise CodeczooError(f"avif: threads must be >= 1, got {threads}")
        self.speed, self.threads = speed, threads

    def is_lossless(self, quality: int) -> bool:
        return int(quality) >= LOSSLESS_QUALITY

    def _encode(self, values: np.ndarray, spec: ImageSpec, quality: int) -> bytes:
        lib = _imagecodecs()
        depth = av1_depth(spec.bits_stored)
        if not self.is_lossless(quality):
            # imagecodecs codes a 2-D array losslessly whatever the level; three equal channels
            # with a 4:0:0 output format are coded at the level, and libavif's full-range
            # RGB -> Y conversion of equal channels is Y = the stored value (module docstring).
            values = np.repeat(values[..., None], 3, axis=-1)
        try:
            return bytes(lib.avif_encode(
                values, level=int(quality), speed=self.speed, bitspersample=depth,
                pixelformat=lib.AVIF.PIXEL_FORMAT.YUV400, codec=lib.AVIF.CODEC_CHOICE.AOM,
                numthreads=self.threads))
        except Exception as exc:
            raise CodeczooError(f"avif: libavif could not encode ({exc})") from None

    def _decode(self, payload: bytes, spec: ImageSpec) -> np.ndarray:
        check_declared(avif_size(payload), spec, "avif",
                       precision=av1_depth(spec.bits_stored))
        try:
            values = np.asarray(_imagecodecs().avif_decode(payload, numthreads=self.threads))
        except CodeczooError:
            raise
        except Exception as exc:
            raise BitstreamError(f"avif payload could not be decoded (libavif: {exc})") from None
        if values.ndim == 3 and values.shape[-1] == 1:
            values = values[..., 0]
        return values
