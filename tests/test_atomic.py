"""The one atomic writer (codeczoo.atomic): complete files or nothing, and nothing left behind."""

from __future__ import annotations

import os

import pytest

from codeczoo.atomic import remove_stale_partials, write_atomically, write_bytes, write_text
from codeczoo.errors import ImageFormatError, OutputError


def test_a_failing_writer_leaves_the_target_and_no_temporary_file(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("precious")

    def half_then_fail(tmp):
        with open(tmp, "w") as handle:
            handle.write("half")
        raise ImageFormatError("encoder gave up")

    with pytest.raises(ImageFormatError, match="gave up"):
        write_atomically(target, half_then_fail, overwrite=True)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, lambda tmp: (_ for _ in ()).throw(KeyboardInterrupt()),
                         overwrite=True)
    assert target.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_refusals_and_permissions(tmp_path):
    target = write_text(tmp_path / "a" / "b" / "x.json", "{}")  # parents are created
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    with pytest.raises(OutputError, match="already exists"):
        write_bytes(target, b"other")
    os.chmod(target, 0o640)
    write_bytes(target, b"other", overwrite=True)
    assert target.read_bytes() == b"other"
    assert target.stat().st_mode & 0o777 == 0o640, "replacing a file keeps its permissions"
    with pytest.raises(OutputError, match="is a folder"):
        write_bytes(tmp_path / "a", b"x", overwrite=True)


def test_leftovers_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    dead = tmp_path / ".x.czoo.999999999-0a0b0c0d.partial"  # no such process
    dead_other = tmp_path / ".y.png.999999998-0e0f0a0b.partial"
    live = tmp_path / f".x.czoo.{os.getpid()}-0c0d0e0f.partial"  # this process: a write in flight
    unknown = tmp_path / ".notes.partial"  # not named by codeczoo: not ours to remove
    for path in (dead, dead_other, live, unknown):
        path.write_bytes(b"half")
    assert sorted(remove_stale_partials(tmp_path)) == sorted([dead, dead_other])
    write_bytes(tmp_path / "x.czoo", b"done")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, unknown.name, "x.czoo"])
