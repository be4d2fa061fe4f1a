"""JPEG-LS (ISO/IEC 14495-1, ITU-T T.87): lossless and near-lossless, through CharLS.

LOCO-I (Weinberger, Seroussi and Sapiro, IEEE TIP 2000) as standardised in JPEG-LS: context
modelling of prediction residuals with Golomb coding. In near-lossless mode every reconstructed
sample is within ``NEAR`` of the original (an l-infinity bound). DICOM carries it as JPEG-LS
Lossless (1.2.840.10008.1.2.4.80) and JPEG-LS Lossy (Near-Lossless) (1.2.840.10008.1.2.4.81).

Coding is done by CharLS (https://github.com/team-charls/charls) through ``pyjpegls``, pydicom's
own CharLS binding, because it writes the sample precision P equal to the stored bits (a 12-bit
image is a P=12 codestream: the JPEG-LS thresholds follow MAXVAL = 2^P - 1, and DICOM wants the
codestream's precision consistent with Bits Stored, PS3.5 8.2.3). Payload: the bare codestream
(SOI ... EOI), exactly a ``.jls`` file and exactly a DICOM frame.

Rate setting: ``quality = NEAR + 1``; quality 1 is lossless, quality ``q`` bounds every error
by ``q - 1``. JPEG-LS has no rate control: the rate follows from the bound.
"""

from __future__ import annotations

import numpy as np

from ..cards import CodecCard, InputFormat, Paper
from ..errors import BitstreamError, CodeczooError
from ..intensity import ImageSpec
from ..registry import register_codec
from .base import LibraryCodec, binding
from .declared import check_declared, jpegls_size

#: JPEG-LS allows NEAR up to min(255, MAXVAL / 2) (ISO/IEC 14495-1 C.2.4.1.1).
MAX_NEAR = 255
LOSSLESS, NEAR_LOSSLESS = "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"


def max_near(bits_stored: int) -> int:
    return min(MAX_NEAR, ((1 << bits_stored) - 1) // 2)


def _charls():
    return binding("jpeg_ls", "pyjpegls==1.4.0", "jpegls")


CARD = CodecCard(
    description="JPEG-LS (ISO/IEC 14495-1, LOCO-I) through CharLS (pyjpegls): lossless or "
                "near-lossless with every error at most NEAR, 2 to 16 bit.",
    paper=Paper(title="The LOCO-I lossless image compression algorithm: principles and "
                      "standardization into JPEG-LS",
                authors=("Marcelo J. Weinberger", "Gadiel Seroussi", "Guillermo Sapiro"),
                venue="IEEE Transactions on Image Processing 9(8), 2000",
                url="https://github.com/team-charls/charls"),
    related=(Paper(title="ISO/IEC 14495-1 | ITU-T T.87: JPEG-LS lossless and near-lossless "
                         "compression of continuous-tone still images", venue="ISO/IEC"),),
    input=InputFormat(bit_depths=(2, 16)),
    rate="quality = NEAR + 1: 1 = lossless, q = every stored integer within q - 1 "
         "(near-lossless); no rate control, the rate follows from the bound",
    license="codeczoo: Apache-2.0; CharLS: BSD-3-Clause; pyjpegls: MIT",
    intended_use="lossless archiving and bounded-error (near-lossless) radiology storage; the "
                 "payload is the codestream DICOM's JPEG-LS transfer syntaxes (.80/.81) carry",
)


@register_codec("jpegls", CARD)
class JpegLs(LibraryCodec):
    """JPEG-LS via CharLS: quality 1 lossless, quality ``q`` near-lossless with NEAR = ``q - 1``.

    Args:
        bits: bit depth of the tensor layer's integers (see :class:`LibraryCodec`).
    """

    codec_version = "1"
    qualities = range(1, MAX_NEAR + 2)
    default_quality = 1
    #: NEAR 0 (lossless), 1, 2, 4, 8, 16, 32: the bounds radiology papers report.
    eval_qualities = (1, 2, 3, 5, 9, 17, 33)
    demo_qualities = (1, 3, 9)
    dicom_method = "ISO_14495_1"

    def is_lossless(self, quality: int) -> bool:
        return int(quality) == 1

    def dicom_transfer_syntax(self, quality: int) -> str:
        return LOSSLESS if self.is_lossless(quality) else NEAR_LOSSLESS

    def _encode(self, values: np.ndarray, spec: ImageSpec, quality: int) -> bytes:
        near = int(quality) - 1
        if spec.bits_stored < 2:
            raise CodeczooError("jpegls: JPEG-LS needs at least 2 bits per sample (1-bit images: "
                                "use jpeg2000 or jpegxl)")
        if near > max_near(spec.bits_stored):
            raise CodeczooError(
                f"jpegls: quality {quality} (NEAR {near}) is too large for {spec.bits_stored}-bit "
                f"data; at most {max_near(spec.bits_stored) + 1}")
        data = values.astype(values.dtype.newbyteorder("<"), copy=False).tobytes()
        try:
            return bytes(_charls().encode_buffer(data, spec.height, spec.width, 1,
                                                 spec.bits_stored, lossy_error=near))
        except CodeczooError:
            raise
        except Exception as exc:
            raise CodeczooError(f"jpegls: CharLS could not encode ({exc})") from None

    def _decode(self, payload: bytes, spec: ImageSpec) -> np.ndarray:
        check_declared(jpegls_size(payload), spec, "jpegls", precision=spec.bits_stored)
        try:
            data, info = _charls().decode_buffer(payload)
        except CodeczooError:
            raise
        except Exception as exc:
            raise BitstreamError(f"jpegls payload could not be decoded (CharLS: {exc})") from None
        dtype = np.uint8 if int(info.get("bits_per_sample", spec.bits_stored)) <= 8 else np.dtype("<u2")
        values = np.frombuffer(bytes(data), dtype=dtype)
        if values.size != spec.pixels:
            raise BitstreamError(f"jpegls payload decoded to {values.size} samples, expected {spec.pixels}")
        return values.reshape(spec.height, spec.width)
