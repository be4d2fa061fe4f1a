"""The command line as a user drives it: real files in, real files out, one-line errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codeczoo.cli import main
from codeczoo.io import read_image

SAMPLES = Path(__file__).resolve().parent.parent / "codeczoo" / "samples"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codeczoo", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture()
def sample_folder(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(SAMPLES / "chest_1_8bit.png", folder / "a.png")
    shutil.copy(SAMPLES / "chest_dx_16bit.png", folder / "sub" / "b.png")
    return folder


def test_folder_round_trip_lossless(sample_folder, tmp_path, capsys):
    before = {p: p.read_bytes() for p in sample_folder.rglob("*.png")}
    assert main(["compress", str(sample_folder), "-o", str(tmp_path / "packed"),
                 "--codec", "jpeg2000", "--quality", "1"]) == 0
    packed = sorted((tmp_path / "packed").rglob("*.czoo"))
    assert [p.relative_to(tmp_path / "packed").as_posix() for p in packed] == ["a.czoo", "sub/b.czoo"]
    assert main(["decompress", str(tmp_path / "packed"), "-o", str(tmp_path / "out")]) == 0
    for name in ("a.png", "sub/b.png"):
        original, restored = read_image(sample_folder / name), read_image(tmp_path / "out" / name)
        assert restored.pixels.dtype == original.pixels.dtype
        assert np.array_equal(restored.pixels, original.pixels)
    assert {p: p.read_bytes() for p in sample_folder.rglob("*.png")} == before  # inputs untouched
    assert main(["info", str(packed[1])]) == 0
    out = capsys.readouterr().out
    assert "jpeg2000" in out and "uint16" in out


def test_never_overwrites_without_force(sample_folder, tmp_path, capsys):
    target = tmp_path / "one.czoo"
    args = ["compress", str(sample_folder / "a.png"), "-o", str(target), "--quality", "20"]
    assert main(args) == 0
    first, stamp = target.read_bytes(), target.stat().st_mtime_ns
    # the same command again: the finished output is kept, nothing is rewritten
    assert main(args) == 0
    assert "1 file(s) already done" in capsys.readouterr().out
    assert target.read_bytes() == first and target.stat().st_mtime_ns == stamp
    # other settings, or a file that is not this job's output: refused without --force
    assert main(args[:-1] + ["10"]) == 1
    assert "exists and was written with other settings" in capsys.readouterr().err
    assert target.read_bytes() == first
    target.write_bytes(b"user data")
    assert main(args) == 1
    assert "is not a complete codeczoo bitstream" in capsys.readouterr().err
    assert target.read_bytes() == b"user data"
    assert main(args + ["--force"]) == 0
    assert target.read_bytes() == first
    # an output may never be the input itself
    assert main(["compress", str(sample_folder / "a.png"), "-o", str(sample_folder / "a.png"),
                 "--force"]) == 1
    assert Image.open(sample_folder / "a.png").size == (256, 256)


@pytest.mark.parametrize("args,needle", [
    (["compress", "does-not-exist.png", "-o", "x.czoo"], "not found"),
    (["compress", "{garbage}", "-o", "{out}"], "codeczoo: error"),
    (["decompress", "{corrupt}", "-o", "{out}"], "codeczoo: error"),
    (["compress", "{sample}", "-o", "{out}", "--codec", "nope"], "unknown codec"),
    (["compress", "{sample}", "-o", "{out}", "--quality", "0"], "quality"),
    (["info", "{corrupt}"], "codeczoo: error"),
])
def test_bad_input_is_one_line_and_nonzero(tmp_path, capsys, args, needle):
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    corrupt = tmp_path / "corrupt.czoo"
    corrupt.write_bytes(b"CZOO\x01" + bytes(30))
    names = {"garbage": garbage, "corrupt": corrupt, "out": tmp_path / "out.czoo",
             "sample": SAMPLES / "chest_1_8bit.png"}
    code = main([a.format(**names) for a in args])
    err = capsys.readouterr().err
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], err


@pytest.mark.slow
def test_module_entry_point_lists_codecs_and_errors_cleanly(tmp_path):
    result = run_cli("list")
    assert result.returncode == 0 and "jpeg2000" in result.stdout and not result.stderr
    bad = run_cli("decompress", str(tmp_path / "missing.czoo"), "-o", str(tmp_path / "x.png"))
    assert bad.returncode == 1 and bad.stderr.startswith("codeczoo: error:")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_demo_runs_on_bundled_samples(tmp_path, capsys):
    assert main(["demo", "--codecs", "jpeg2000", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "chest_dx_16bit.png" in out and "lossless" in out
    assert len(list(tmp_path.glob("*.czoo"))) >= 4
