"""Classical codecs behind the codeczoo contract.

A new classical codec is one module here that calls :func:`codeczoo.register_codec` with its
card: every module of this package is imported (and so registered) when codeczoo is.
"""

import importlib
import pkgutil

from .jpeg2000 import Jpeg2000

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Jpeg2000"]
