"""The exceptions codeczoo raises.

Every failure a user can cause (a bad file, a corrupt bitstream, a wrong codec) raises a
subclass of :class:`CodeczooError` with a one-line message; the command line prints that line
and exits non-zero instead of showing a traceback.
"""


class CodeczooError(Exception):
    """Base class of every error codeczoo raises on purpose."""


class BitstreamError(CodeczooError):
    """The bytes are not a valid codeczoo bitstream (magic, version, length, CRC...)."""


class CodecMismatchError(CodeczooError):
    """The bitstream was written by another codec, codec version or set of weights."""


class ImageFormatError(CodeczooError):
    """An image (array or file) that codeczoo cannot represent or read."""


class WeightsError(CodeczooError):
    """Pretrained weights missing, or their hash does not match the codec card."""


class UnknownCodecError(CodeczooError):
    """No codec of that name is registered."""


class OutputError(CodeczooError):
    """An output could not be written: existing file, read-only folder, full disk, ..."""


class PixelLimitError(CodeczooError):
    """A bitstream declares an image larger than the pixel limit (a decompression-bomb guard)."""


def one_line(text: str) -> str:
    """``text`` on one line: lines joined with ``"; "`` and runs of blanks collapsed.

    Libraries below codeczoo (OpenJPEG through glymur, pydicom) report multi-line messages; the
    command line promises one line per error.
    """
    lines = [" ".join(line.split()) for line in str(text).splitlines()]
    return "; ".join(line for line in lines if line)
