"""Find the OpenJPEG library (``libopenjp2``) for glymur, without writing any file.

glymur is a ctypes wrapper around OpenJPEG (https://www.openjpeg.org, the ISO/IEC 15444-1
reference implementation). At import it looks for ``libopenjp2`` through its ``glymurrc`` file
(current folder, ``$XDG_CONFIG_HOME/glymur`` or ``~/.config/glymur``) and ``ctypes.util.find_library``.
A fresh machine after ``pip install`` often has neither; the Pillow wheel, however, bundles a
private copy (``pillow.libs/libopenjp2-<hash>.so.2.5.x`` on Linux, ``PIL/.dylibs`` on macOS).

:func:`ensure_openjpeg` resolves the library in this order and hands it to glymur in-process:

1. ``CODECZOO_OPENJP2=/path/to/libopenjp2.so`` if set (an explicit choice wins);
2. the library glymur found by itself (system package or the user's ``glymurrc``);
3. the copy bundled with Pillow.

Steps 1 and 3 re-run glymur's library module with a throw-away ``glymurrc`` (see :func:`_install`):
nothing is written to the user's home or configuration folders and nothing persists after the
call. A real 8-pixel encode/decode then proves the library works before any codec uses it.
If nothing is found a :class:`~codeczoo.errors.CodeczooError` names the fix.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np

from ..errors import CodeczooError

ENV_VAR = "CODECZOO_OPENJP2"
MIN_VERSION = (2, 3, 0)
_FIX = ("install OpenJPEG (e.g. `apt install libopenjp2-7`, `conda install openjpeg`) or "
        "`pip install pillow` (its wheel bundles libopenjp2), or set "
        f"{ENV_VAR}=/path/to/libopenjp2.so")

_lock = threading.Lock()
_state: dict[str, str] = {}


def pillow_openjp2_candidates() -> list[Path]:
    """Copies of ``libopenjp2`` bundled with the installed Pillow wheel (may be empty)."""
    spec = importlib.util.find_spec("PIL")
    if spec is None or not spec.submodule_search_locations:
        return []
    pil_dir = Path(next(iter(spec.submodule_search_locations)))
    folders = [pil_dir.parent / "pillow.libs", pil_dir.parent / "Pillow.libs", pil_dir / ".dylibs"]
    found: list[Path] = []
    for folder in folders:
        if folder.is_dir():
            found += sorted(folder.glob("libopenjp2*.so*")) + sorted(folder.glob("libopenjp2*.dylib"))
            found += sorted(folder.glob("openjp2*.dll"))
    return found


def _install(path: Path) -> None:
    """Make the already imported glymur load the OpenJPEG library ``path``.

    glymur reads its library location only while ``glymur.lib.openjp2`` is executed, and it lays
    out its ctypes structures for the library version it finds then, so the module must be run
    again, not merely handed a new handle. We use glymur's documented configuration file
    (``[library] openjp2 = ...`` in ``$XDG_CONFIG_HOME/glymur/glymurrc``), written to a temporary
    folder that ``XDG_CONFIG_HOME`` names only while the two modules are re-run; the folder is
    removed and the variable restored right after. Nothing persists and nothing touches ``$HOME``.
    """
    import glymur.lib.openjp2 as opj2
    import glymur.version as gversion

    with tempfile.TemporaryDirectory(prefix="codeczoo-glymurrc-") as tmp:
        config_dir = Path(tmp) / "glymur"
        config_dir.mkdir()
        (config_dir / "glymurrc").write_text(f"[library]\nopenjp2: {path}\n")
        saved = os.environ.get("XDG_CONFIG_HOME")
        os.environ["XDG_CONFIG_HOME"] = tmp
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # glymur warns when a path does not load
                importlib.reload(opj2)
                importlib.reload(gversion)
        finally:
            if saved is None:
                del os.environ["XDG_CONFIG_HOME"]
            else:
                os.environ["XDG_CONFIG_HOME"] = saved
    if opj2.OPENJP2 is None or opj2.version() == "0.0.0":
        hint = " (a ./glymurrc in the current folder takes precedence)" if Path("glymurrc").exists() else ""
        raise CodeczooError(f"OpenJPEG library {path} could not be loaded by glymur{hint}; {_FIX}")


def _self_test() -> None:
    """Encode and decode a tiny 16-bit image losslessly: proves the library really works."""
    import glymur

    values = np.arange(8, dtype=np.uint16).reshape(2, 4) * 4099
    with tempfile.TemporaryDirectory(prefix="codeczoo-opj-") as tmp:
        path = os.path.join(tmp, "probe.j2c")
        glymur.Jp2k(path, data=values, numres=1)
        back = glymur.Jp2k(path)[:]
    if not np.array_equal(back, values):
        raise CodeczooError("OpenJPEG library failed a lossless round-trip self-test; " + _FIX)


def ensure_openjpeg() -> str:
    """Make glymur usable and return a line saying which OpenJPEG it uses.

    Idempotent and thread-safe; the first call costs a few milliseconds.
    """
    with _lock:
        if "description" in _state:
            return _state["description"]
        try:
            import glymur.lib.openjp2 as opj2
        except ImportError as exc:  # pragma: no cover - glymur is a hard dependency
            raise CodeczooError(f"JPEG 2000 needs glymur: pip install glymur ({exc})") from None
        explicit = os.environ.get(ENV_VAR)
        if explicit:
            _install(Path(explicit))
            origin = f"{ENV_VAR}={explicit}"
        elif opj2.OPENJP2 is not None:
            origin = "found by glymur"
        else:
            candidates = pillow_openjp2_candidates()
            if not candidates:
                raise CodeczooError(f"JPEG 2000 needs the OpenJPEG library libopenjp2, none found: {_FIX}")
            _install(candidates[-1])
            origin = f"bundled with Pillow ({candidates[-1].name})"
        version = tuple(int(x) for x in opj2.version().split(".")[:3])
        if version < MIN_VERSION:
            raise CodeczooError(
                f"OpenJPEG {opj2.version()} ({origin}) is too old: codeczoo needs >= "
                f"{'.'.join(map(str, MIN_VERSION))}; {_FIX}")
        _self_test()
        _state["description"] = f"OpenJPEG {opj2.version()} ({origin})"
        return _state["description"]
