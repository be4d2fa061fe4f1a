"""What a JPEG 2000 codestream declares, read from its SIZ marker before any decoder sees it.

ISO/IEC 15444-1, Annex A.5.1: a codestream starts with ``SOC`` (``FF 4F``) and the image and tile
size marker ``SIZ`` (``FF 51``)::

    Lsiz u16   marker segment length, 38 + 3 * Csiz
    Rsiz u16   capabilities
    Xsiz, Ysiz, XOsiz, YOsiz          u32  reference grid size and image offset
    XTsiz, YTsiz, XTOsiz, YTOsiz      u32  tile size and tile grid offset
    Csiz u16   number of components
    per component: Ssiz u8 (bit 7 signed, bits 0-6 precision - 1), XRsiz u8, YRsiz u8

The image is ``(Xsiz - XOsiz) x (Ysiz - YOsiz)``, cut into
``ceil((Xsiz - XTOsiz) / XTsiz) * ceil((Ysiz - YTOsiz) / YTsiz)`` tiles. OpenJPEG allocates from
these numbers, so a codestream whose SIZ disagrees with the codeczoo header (one changed byte
can declare a 12,779,776 x 256 image inside a 38 KB file) must be refused here, before it is
handed to OpenJPEG: :func:`check_codestream`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import BitstreamError

SOC, SIZ, EOC = b"\xff\x4f", b"\xff\x51", b"\xff\xd9"
_SIZ_FIXED = struct.Struct(">HHIIIIIIIIH")  # Lsiz .. Csiz (38 bytes)


@dataclass(frozen=True)
class SizMarker:
    """The fields of a SIZ marker segment that decide what a decoder allocates."""

    width: int
    height: int
    tiles_across: int
    tiles_down: int
    components: int
    precision: int  # of the first component
    signed: bool
    subsampling: tuple[int, int]  # (XRsiz, YRsiz) of the first component

    @property
    def tiles(self) -> int:
        return self.tiles_across * self.tiles_down


def read_siz(codestream: bytes) -> SizMarker:
    """Parse ``SOC`` + ``SIZ``; a malformed or inconsistent marker is a :class:`BitstreamError`."""
    data = bytes(codestream[:4 + _SIZ_FIXED.size + 3])
    if data[:2] != SOC or data[2:4] != SIZ:
        raise BitstreamError("JPEG 2000 payload does not start with the SOC and SIZ markers")
    if len(data) < 4 + _SIZ_FIXED.size + 3:
        raise BitstreamError("JPEG 2000 payload is truncated inside its SIZ marker")
    (lsiz, _rsiz, xsiz, ysiz, xosiz, yosiz, xtsiz, ytsiz, xtosiz, ytosiz,
     csiz) = _SIZ_FIXED.unpack_from(data, 4)
    if csiz < 1 or lsiz != 38 + 3 * csiz or len(codestream) < 4 + lsiz:
        raise BitstreamError(
            f"JPEG 2000 SIZ marker is malformed (length {lsiz}, {csiz} components)")
    if not (xosiz < xsiz and yosiz < ysiz and xtsiz > 0 and ytsiz > 0
            and xtosiz <= xosiz and ytosiz <= yosiz
            and xtsiz + xtosiz > xosiz and ytsiz + ytosiz > yosiz):
        raise BitstreamError("JPEG 2000 SIZ marker declares an impossible image or tile grid")
    ssiz, xrsiz, yrsiz = data[4 + _SIZ_FIXED.size:4 + _SIZ_FIXED.size + 3]
    return SizMarker(
        width=xsiz - xosiz, height=ysiz - yosiz,
        tiles_across=-(-(xsiz - xtosiz) // xtsiz), tiles_down=-(-(ysiz - ytosiz) // ytsiz),
        components=csiz, precision=(ssiz & 0x7F) + 1, signed=bool(ssiz & 0x80),
        subsampling=(xrsiz, yrsiz))


def check_codestream(codestream: bytes, height: int, width: int,
                     precisions: int | tuple[int, ...]) -> SizMarker:
    """Refuse a codestream whose SIZ marker is not what codeczoo writes for this image.

    codeczoo's JPEG 2000 payload is one unsigned, unsubsampled component, one tile, ``height`` x
    ``width`` pixels, with a sample precision among ``precisions`` (``docs/bitstream.md``: the
    image's bits stored; files written before that rule carry 8 or 16 bits). Anything else is a
    :class:`BitstreamError` naming the disagreement, raised before a decoder allocates anything.
    """
    precisions = (precisions,) if isinstance(precisions, int) else tuple(precisions)
    siz = read_siz(codestream)
    if (siz.height, siz.width) != (height, width):
        raise BitstreamError(
            f"JPEG 2000 codestream declares a {siz.height}x{siz.width} image, the header says "
            f"{height}x{width}")
    if siz.components != 1 or siz.subsampling != (1, 1):
        raise BitstreamError(
            f"JPEG 2000 codestream declares {siz.components} component(s) subsampled "
            f"{siz.subsampling[0]}x{siz.subsampling[1]}; codeczoo writes one, not subsampled")
    if siz.precision not in precisions or siz.signed:
        raise BitstreamError(
            f"JPEG 2000 codestream declares {'signed' if siz.signed else 'unsigned'} "
            f"{siz.precision}-bit samples, the header {' or '.join(map(str, precisions))}-bit "
            "unsigned")
    if siz.tiles != 1:
        raise BitstreamError(
            f"JPEG 2000 codestream declares {siz.tiles_across}x{siz.tiles_down} tiles; "
            "codeczoo writes one")
    return siz
