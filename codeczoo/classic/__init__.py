"""Classical codecs behind the codeczoo contract (importing this registers them)."""

from .jpeg2000 import Jpeg2000

__all__ = ["Jpeg2000"]
