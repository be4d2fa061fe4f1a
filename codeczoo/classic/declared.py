"""What a classic codestream declares about its image, read from its header without decoding it.

A decoder must not trust a payload's own idea of the image size: a damaged or hostile codestream
can declare a huge image and make the library allocate it. Every classic codec therefore reads
the size (and sample precision) its payload declares with the parsers here, compares it with the
codeczoo container header (which the container itself bounds), and only then calls the decoding
library (:func:`check_declared`). The parsers read a few dozen bytes; they never allocate pixels.

=========== ================================================ =====================================
format      where the size is                                parser
=========== ================================================ =====================================
JPEG 2000   SIZ marker segment right after SOC (ISO/IEC      :func:`j2k_size` (Part 1 and HTJ2K,
            15444-1 A.5.1): Xsiz-XOsiz, Ysiz-YOsiz, Ssiz     Part 15, share it)
JPEG-LS     SOF55 frame header (ISO/IEC 14495-1 C.2.2):      :func:`jpegls_size`
            P, Y, X, Nf
JPEG XL     SizeHeader after the 0xFF0A signature (ISO/IEC   :func:`jxl_size` (bare or in its
            18181-1, libjxl ``SizeHeader``)                  container's jxlc/jxlp box)
AVIF        ``ispe`` property in ``meta/iprp/ipco``          :func:`avif_size`
            (ISO/IEC 23008-12), ``pixi`` for the depth
=========== ================================================ =====================================
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import BitstreamError
from ..intensity import ImageSpec
from .codestream import read_siz


@dataclass(frozen=True)
class Declared:
    """An image as a codestream header declares it (``precision``/``components`` 0 if unknown)."""

    height: int
    width: int
    precision: int = 0
    components: int = 1
    signed: bool = False


def _need(data: bytes, end: int, what: str) -> None:
    if len(data) < end:
        raise BitstreamError(f"{what} payload is truncated (its header is incomplete)")


def j2k_size(data: bytes) -> Declared:
    """JPEG 2000 / HTJ2K codestream: the SIZ marker segment right after SOC
    (:func:`codeczoo.classic.codestream.read_siz`)."""
    siz = read_siz(data)
    return Declared(siz.height, siz.width, siz.precision, siz.components, siz.signed)


def j2k_check_complete(data: bytes) -> None:
    """Refuse a truncated JPEG 2000 / HTJ2K codestream: the main header's marker segments are
    walked by their lengths, then every tile-part by its SOT's Psot, and the last must end
    exactly at the EOC marker. (OpenJPH decodes a truncated stream without complaint.)"""
    pos = 2  # after SOC
    while True:
        _need(data, pos + 4, "JPEG 2000 main")
        marker = data[pos:pos + 2]
        if marker == b"\xff\x90":  # SOT: the tile-parts begin
            break
        if marker[0] != 0xFF:
            raise BitstreamError("JPEG 2000 codestream: main header is damaged")
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        pos += 2 + length
    while data[pos:pos + 2] == b"\xff\x90":
        _need(data, pos + 10, "JPEG 2000 tile-part")
        (psot,) = struct.unpack(">I", data[pos + 6:pos + 10])
        if psot == 0:  # the last tile-part runs to EOC
            pos = len(data) - 2
            break
        pos += psot
    if pos != len(data) - 2 or data[pos:pos + 2] != b"\xff\xd9":
        raise BitstreamError("JPEG 2000 codestream is truncated or has trailing bytes "
                             "(its tile-parts do not end at the EOC marker)")


def jpegls_size(data: bytes) -> Declared:
    """JPEG-LS: the SOF55 frame header (marker segments before it are skipped by length)."""
    _need(data, 2, "JPEG-LS")
    if data[:2] != b"\xff\xd8":
        raise BitstreamError("JPEG-LS payload does not start with an SOI marker")
    pos = 2
    while True:
        _need(data, pos + 4, "JPEG-LS")
        if data[pos] != 0xFF:
            raise BitstreamError("JPEG-LS payload: marker expected before the frame header")
        marker = data[pos + 1]
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if marker == 0xF7:  # SOF55
            _need(data, pos + 10, "JPEG-LS SOF55")
            precision = data[pos + 4]
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            if height == 0 or width == 0:
                raise BitstreamError("JPEG-LS frame header declares an empty image (or a DNL "
                                     "marker, which codeczoo does not accept)")
            return Declared(height, width, precision, data[pos + 9])
        if marker in (0xDA, 0xD9) or length < 2:
            raise BitstreamError("JPEG-LS payload has no SOF55 frame header")
        pos += 2 + length


class _Bits:
    """LSB-first bit reader (JPEG XL's bit order)."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def read(self, count: int) -> int:
        value = 0
        for i in range(count):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise BitstreamError("JPEG XL payload is truncated (its size header is incomplete)")
            value |= ((self.data[byte] >> (self.pos & 7)) & 1) << i
            self.pos += 1
        return value

    def u32_size(self) -> int:
        """libjxl's ``U32(BitsOffset(9, 1), BitsOffset(13, 1), BitsOffset(18, 1), BitsOffset(30, 1))``."""
        return self.read((9, 13, 18, 30)[self.read(2)]) + 1


#: JPEG XL's aspect ratios (SizeHeader ``ratio`` 1..7): width = height * num // den.
_JXL_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}


JXL_CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"


def jxl_size(data: bytes) -> Declared:
    """JPEG XL: the SizeHeader after the ``FF 0A`` signature of the codestream, bare or in the
    ISO BMFF container (its ``jxlc`` box, or the first ``jxlp`` part; libjxl uses the container
    for codestream level 10, e.g. more than 12 bits)."""
    if data[:12] == JXL_CONTAINER:
        for kind, begin, end in _boxes(data, 0, len(data)):
            if kind in (b"jxlc", b"jxlp"):
                data = data[begin + (4 if kind == b"jxlp" else 0):end]
                break
        else:
            raise BitstreamError("JPEG XL container holds no codestream box")
    _need(data, 2, "JPEG XL")
    if data[:2] != b"\xff\x0a":
        raise BitstreamError("JPEG XL payload has no codestream signature (FF0A)")
    bits = _Bits(data[2:])
    small = bits.read(1)
    height = 8 * (bits.read(5) + 1) if small else bits.u32_size()
    ratio = bits.read(3)
    if ratio:
        num, den = _JXL_RATIOS[ratio]
        width = height * num // den
    else:
        width = 8 * (bits.read(5) + 1) if small else bits.u32_size()
    return Declared(height, width)


def _boxes(data: bytes, start: int, end: int):
    """ISO BMFF boxes in ``data[start:end]``: ``(type, payload_start, payload_end)``."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1:
            _need(data, pos + 16, "ISO BMFF box")
            (size,) = struct.unpack(">Q", data[pos + 8:pos + 16])
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise BitstreamError("ISO BMFF box structure is damaged")
        yield kind, pos + header, pos + size
        pos += size


def _child(data: bytes, start: int, end: int, kind: bytes, skip: int = 0) -> tuple[int, int]:
    for box, begin, stop in _boxes(data, start, end):
        if box == kind:
            return begin + skip, stop
    raise BitstreamError(f"AVIF payload has no {kind.decode()} box")


def avif_size(data: bytes) -> Declared:
    """AVIF (HEIF): the ``ispe`` (size) and ``pixi`` (bits per channel) item properties."""
    meta = _child(data, 0, len(data), b"meta", skip=4)  # FullBox: version and flags
    iprp = _child(data, *meta, b"iprp")
    ipco = _child(data, *iprp, b"ipco")
    ispe = _child(data, *ipco, b"ispe", skip=4)
    _need(data, ispe[0] + 8, "AVIF ispe")
    width, height = struct.unpack(">II", data[ispe[0]:ispe[0] + 8])
    precision = components = 0
    for box, begin, stop in _boxes(data, *ipco):
        if box == b"pixi" and stop >= begin + 6:
            components = data[begin + 4]
            precision = data[begin + 5] if components else 0
            break
    if height == 0 or width == 0:
        raise BitstreamError("AVIF ispe declares an empty image")
    return Declared(height, width, precision, components or 1)


def check_declared(declared: Declared, spec: ImageSpec, codec: str, precision: int | None = None
                   ) -> None:
    """Refuse a payload whose declared image is not the one the container header describes
    (size, one component, and ``precision`` when given), before anything is decoded."""
    if (declared.height, declared.width) != (spec.height, spec.width):
        raise BitstreamError(
            f"{codec} payload declares {declared.height}x{declared.width} pixels, the container "
            f"header says {spec.height}x{spec.width}")
    if declared.components != 1:
        raise BitstreamError(f"{codec} payload declares {declared.components} components, expected 1")
    if precision is not None and declared.precision and declared.precision != precision:
        raise BitstreamError(
            f"{codec} payload declares {declared.precision}-bit samples, expected {precision}")
