"""High-Throughput JPEG 2000 (HTJ2K, ISO/IEC 15444-15) through OpenJPH, behind the codeczoo contract.

HTJ2K keeps JPEG 2000's wavelets, code-blocks and codestream but replaces the EBCOT bit-plane
coder by a much faster block coder (FBCOT; Taubman et al., ICIP 2019), giving up a few percent of
compression for an order of magnitude in speed. DICOM carries it as HTJ2K Lossless
(1.2.840.10008.1.2.4.201), HTJ2K Lossless RPCL (.202) and HTJ2K (.203). Coding is done by
OpenJPH (https://github.com/aous72/OpenJPH) through ``imagecodecs`` (2026.1.1 is its first
release with HTJ2K).

Rate setting (``quality``), the same meaning as :mod:`codeczoo.classic.jpeg2000`'s: the target
compression ratio relative to the **stored** bit depth, ``bits_stored * H * W / (8 * bytes)``.

* ``quality=1``: lossless, reversible 5/3 wavelet;
* ``quality=r >= 2``: irreversible 9/7 wavelet. OpenJPH has no rate control (its only lossy
  setting is the base quantisation step ``qstep``), so :meth:`Htj2k._encode` searches ``qstep``
  by bisection over its logarithm (``SEARCH_STEPS`` encodes) for the finest quantisation whose
  codestream fits ``bits_stored * H * W / (8 r)`` bytes. The rate is then at or below the target
  (a ratio the coarsest step cannot reach gives that step's larger stream); real rates are
  always measured from the bytes.

Sample precision: the binding writes 8-bit components for 1-8 stored bits and 16-bit ones
above; for 9-15-bit images the codestream therefore declares 16 bits. That changes neither the
integers a decoder returns nor lossless coding much, but a DICOM frame must declare Bits Stored
(PS3.5 8.2.4), so ``codeczoo compress --format dicom`` writes HTJ2K only for 8- and 16-bit images.

Payload: the bare codestream (SOC ... EOC), what a ``.j2c`` file holds.
"""

from __future__ import annotations

import numpy as np

from ..cards import CodecCard, Paper
from ..errors import BitstreamError, CodeczooError
from ..intensity import ImageSpec
from ..registry import register_codec
from .base import LibraryCodec, binding, sample_dtype
from .declared import check_declared, j2k_check_complete, j2k_size
from .jpeg2000 import MAX_RATIO

#: log2 of the quantisation step searched for a target ratio (relative to full scale).
QSTEP_LOG2_RANGE = (-24.0, 0.0)
SEARCH_STEPS = 12
LOSSLESS, LOSSY = "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.203"
REQUIREMENT = "imagecodecs>=2026.1.1"


def _imagecodecs():
    return binding("imagecodecs", REQUIREMENT, "htj2k", attribute="HTJ2K")


def codestream_precision(bits_stored: int) -> int:
    """The component precision the binding writes for ``bits_stored``-bit data (8 or 16)."""
    return 8 * sample_dtype(bits_stored).itemsize


CARD = CodecCard(
    description="High-Throughput JPEG 2000 (ISO/IEC 15444-15) through OpenJPH (imagecodecs): "
                "lossless (reversible 5/3) or lossy at a target ratio, 1 to 16 bit.",
    paper=Paper(title="High throughput JPEG 2000 (HTJ2K): Algorithm, performance and potential",
                authors=("David Taubman", "Aous Naman", "Reji Mathew", "Michael Smith",
                         "Osamu Watanabe", "Pierre-Anthony Lemieux"),
                venue="ITU-T T.814 | ISO/IEC 15444-15 white paper, 2019",
                url="https://github.com/aous72/OpenJPH"),
    related=(Paper(title="ISO/IEC 15444-15 | ITU-T T.814: High-Throughput JPEG 2000",
                   venue="ISO/IEC"),),
    argument_notes={"numres": "resolution levels (decompositions + 1), 6 as for jpeg2000; at "
                              "least 2"},
    rate="quality = target compression ratio relative to the stored bit depth, as jpeg2000's "
         "(reached by a bisection over OpenJPH's quantisation step, at or below the target); "
         "1 = lossless",
    license="codeczoo: Apache-2.0; OpenJPH: BSD-2-Clause; imagecodecs: BSD-3-Clause",
    intended_use="fast JPEG 2000 for archives and streaming; the payload is the codestream "
                 "DICOM's HTJ2K transfer syntaxes (.201/.203) carry (8- and 16-bit images)",
)


@register_codec("htj2k", CARD)
class Htj2k(LibraryCodec):
    """HTJ2K via OpenJPH: quality 1 lossless, else a target compression ratio.

    Args:
        numres: resolution levels (wavelet decompositions + 1).
        bits: bit depth of the tensor layer's integers (see :class:`LibraryCodec`).
    """

    codec_version = "1"
    qualities = range(1, MAX_RATIO + 1)
    default_quality = 1
    eval_qualities = (1, 4, 8, 10, 16, 32, 64)  # jpeg2000's sweep, for side-by-side curves
    demo_qualities = (1, 10, 40)
    dicom_method = "ISO_15444_15"

    def __init__(self, numres: int = 6, bits: int = 8):
        super().__init__(bits)
        if not 2 <= numres <= 33:  # the binding reads 0 decompositions as its default (5)
            raise CodeczooError(f"htj2k: numres must be 2..33, got {numres}")
        self.numres = numres

    def is_lossless(self, quality: int) -> bool:
        return int(quality) == 1

    def dicom_transfer_syntax(self, quality: int) -> str:
        return LOSSLESS if self.is_lossless(quality) else LOSSY

    def _code(self, values: np.ndarray, qstep: float | None) -> bytes:
        lib = _imagecodecs()
        options = {"resolutions": self.numres - 1}  # the binding's "resolutions" = decompositions
        options.update({"reversible": True} if qstep is None else
                       {"reversible": False, "level": float(qstep)})
        try:
            return bytes(lib.htj2k_encode(values, **options))
        except Exception as exc:
            raise CodeczooError(f"htj2k: OpenJPH could not encode ({exc})") from None

    def _encode(self, values: np.ndarray, spec: ImageSpec, quality: int) -> bytes:
        if self.is_lossless(quality):
            return self._code(values, None)
        budget = spec.bits_stored * spec.pixels / (8.0 * quality)
        fine, coarse = QSTEP_LOG2_RANGE
        best = self._code(values, 2.0 ** coarse)
        if len(best) > budget:
            return best  # the target is below what the coarsest step reaches
        for _ in range(SEARCH_STEPS):
            middle = (fine + coarse) / 2
            data = self._code(values, 2.0 ** middle)
            if len(data) <= budget:
                coarse, best = middle, data
            else:
                fine = middle
        return best

    def _decode(self, payload: bytes, spec: ImageSpec) -> np.ndarray:
        declared = j2k_size(payload)
        check_declared(declared, spec, "htj2k")
        j2k_check_complete(payload)
        if declared.signed or declared.precision > 16:
            raise BitstreamError(f"htj2k payload declares {declared.precision}-bit "
                                 f"{'signed' if declared.signed else 'unsigned'} samples")
        try:
            return np.asarray(_imagecodecs().htj2k_decode(payload))
        except CodeczooError:
            raise
        except Exception as exc:
            raise BitstreamError(f"htj2k payload could not be decoded (OpenJPH: {exc})") from None

