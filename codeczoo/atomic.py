"""The one way codeczoo writes a file: complete and durable, or not at all.

Every writer in the package (images, bitstreams, results, tables, plots, cards, weights) goes
through :func:`write_atomically`:

1. the content is written to a temporary file **in the target's folder**, named
   ``.<name>.<pid>-<random>.partial`` (hidden, so folder walkers never take it for an input);
2. the temporary file is flushed and ``fsync``-ed, given the permissions a plain ``open()`` would
   give (``0o666 & ~umask``; when replacing a file, that file's own permission bits), and
   renamed over the target with :func:`os.replace`, which is atomic on POSIX and Windows; the
   folder is then ``fsync``-ed too (best effort) so the rename survives a power cut;
3. on **any** error (a full disk, a file size limit, an interrupt, a failing encoder) the
   temporary file is removed and the target is left as it was.

A process killed in the middle (``SIGKILL``, a power cut) can leave only its ``.partial`` file,
never a half-written target. The first write of a later process into that folder removes such
leftovers when the process that made them is gone (the pid in the name tells); the others are
hidden and ignored by every folder walk.

Operating-system failures (a read-only folder, a parent that cannot be created, a path below a
file, ``ENOSPC``/``EFBIG``) become one-line :class:`~codeczoo.errors.OutputError`\\ s.
This module sits at the bottom of the package (it imports only :mod:`codeczoo.errors`), so every
layer can use it.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import threading
from pathlib import Path
from typing import Callable

from .errors import OutputError

PARTIAL_SUFFIX = ".partial"
_PARTIAL = re.compile(r"\..+\.(\d+)-[0-9a-f]{8}\.partial")
_umask_lock = threading.Lock()
_cleaned: set[str] = set()


def _umask() -> int:
    with _umask_lock:  # os.umask can only be read by setting it
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _reason(exc: OSError) -> str:
    return exc.strerror or errno.errorcode.get(exc.errno or 0, "") or type(exc).__name__


def ensure_folder(folder: str | os.PathLike) -> Path:
    """Create ``folder`` (and its parents) if needed; one-line :class:`OutputError` otherwise."""
    folder = Path(folder)
    if folder.is_dir():
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(
            f"cannot create folder {folder}: a file of that name is in the way") from None
    except OSError as exc:
        raise OutputError(f"cannot create folder {folder}: {_reason(exc)}") from None
    return folder


def partial_name(path: Path) -> str:
    """Prefix of the temporary files written for ``path`` (``.<name>.``)."""
    return f".{path.name}."


def remove_stale_partials(folder: str | os.PathLike) -> list[Path]:
    """Remove the ``.partial`` leftovers in ``folder`` whose writing process no longer runs.

    Only files named as :func:`write_atomically` names them (``.<name>.<pid>-<8 hex>.partial``)
    are considered, and those of a live process (a write in flight) are kept; the process check
    is local, so folders shared between machines may lose an in-flight temporary file of another
    machine (whose write then fails cleanly). Returns the files removed.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _PARTIAL.fullmatch(entry.name)
        if not match or _alive(int(match.group(1))):
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass  # not ours to fight over; it stays hidden and ignored
    return removed


def _clean_once(folder: Path) -> None:
    """Remove stale leftovers the first time this process writes into ``folder`` (a batch of
    thousands of files scans its folder once, not once a file)."""
    key = os.path.abspath(folder)
    with _umask_lock:
        if key in _cleaned:
            return
        _cleaned.add(key)
    remove_stale_partials(folder)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists, owned by someone else
        return True
    return True


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # e.g. Windows: folders cannot be opened; the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomically(path: str | os.PathLike, writer: Callable[[str], None], *,
                     overwrite: bool = False) -> Path:
    """Call ``writer(tmp_path)`` and move the finished file to ``path`` in one step.

    ``writer`` writes the whole file to the path it is given (a temporary name without the
    target's suffix: pass the format explicitly to writers that guess it from the name).
    An existing ``path`` is never replaced unless ``overwrite``. Refusals and operating-system
    failures raise :class:`OutputError`; whatever ``writer`` raises passes through unchanged
    (after the temporary file is removed). See the module docstring.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path} is a folder, not a file")
    if path.exists() and not overwrite:
        raise OutputError(f"{path} already exists (refusing to overwrite it)")
    ensure_folder(path.parent)
    _clean_once(path.parent)
    tmp = path.parent / f"{partial_name(path)}{os.getpid()}-{secrets.token_hex(4)}{PARTIAL_SUFFIX}"
    try:
        handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
    os.close(handle)
    try:
        writer(str(tmp))
        with open(tmp, "rb+") as done:
            os.fsync(done.fileno())
        try:
            mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
        except OSError:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
    except BaseException:
        _discard(tmp)
        raise
    _fsync_folder(path.parent)
    return path


def _discard(tmp: Path) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    except OSError:
        pass  # nothing more we can do; the name is hidden and cleaned by the next write


def write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`write_atomically`)."""
    def writer(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)

    return write_atomically(path, writer, overwrite=overwrite)


def write_text(path: str | os.PathLike, text: str, *, overwrite: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`write_atomically`)."""
    return write_bytes(path, text.encode("utf-8"), overwrite=overwrite)
