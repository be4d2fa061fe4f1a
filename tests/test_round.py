"""``codeczoo round`` / ``scripts/gpu_round.sh``: the GPU round, run in its CPU smoke mode.

The smoke round runs the whole chain for real (budgeted fit from the shipped weights, export
--fp16, eval --card, summary and tarball) on tiny settings; CI runs it too
(``scripts/gpu_round.sh 3 OUT --smoke``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from codeczoo.errors import CodeczooError
from codeczoo.registry import file_sha256, packaged_registry
from codeczoo.training.round import missing_modules, run_round, shipped_learned_codecs

REPO = Path(__file__).resolve().parent.parent
PACKAGED = packaged_registry()


def test_round_plans_every_shipped_learned_codec_and_refuses_bad_setups(tmp_path, data_dir):
    assert shipped_learned_codecs() == ["sushmit2019-rnnconv", "toderici2017-lstm-oneshot-small"]
    assert missing_modules() == []
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(CodeczooError, match="not empty"):
        run_round(1, tmp_path / "full", smoke=True, data_root=str(data_dir))
    assert (tmp_path / "full" / "x").read_text() == "keep me"
    with pytest.raises(CodeczooError, match="no cxr/train"):
        run_round(1, tmp_path / "out", smoke=True, data_root=str(tmp_path))
    with pytest.raises(CodeczooError, match="has no recipes"):
        run_round(1, tmp_path / "out", smoke=True, data_root=str(data_dir), codecs=["jpeg2000"])


@pytest.mark.slow
def test_smoke_round_trains_exports_evaluates_and_packs_inside_its_budget(tmp_path, data_dir):
    name = "sushmit2019-rnnconv"
    out = tmp_path / "round"
    env = dict(os.environ, PYTHON=sys.executable, CODECZOO_DATA=str(data_dir))
    proc = subprocess.run([str(REPO / "scripts" / "gpu_round.sh"), "5", str(out), "--smoke",
                           "--codecs", name], env=env, capture_output=True, text=True,
                          timeout=420)
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = sorted(p.name for p in out.iterdir())
    assert files == ["round.tar.gz", "summary.json", "summary.md"]  # at most 8 files
    summary = json.loads((out / "summary.json").read_text())
    assert summary["round"]["within_budget"] and summary["round"]["wall_s"] <= 300
    entry = summary["codecs"][name]
    assert entry["exit_codes"] == {"fit": 0, "export": 0, "eval": 0}
    assert entry["steps_this_run"] > 0 and entry["time_budget"]["max_steps"] > 0

    home = tmp_path / "home"
    with tarfile.open(out / "round.tar.gz") as tar:
        tar.extractall(home, filter="data")
    folder = home / "registry" / name
    manifest = json.loads((folder / "weights.json").read_text())["weights"]
    shipped_manifest = json.loads((PACKAGED / name / "weights.json").read_text())["weights"]
    shipped = json.loads((PACKAGED / name / "training.json").read_text())
    new, training = manifest[0], json.loads((folder / "training.json").read_text())
    # the new weights first, every shipped entry kept after them (older bitstreams decode)
    assert [e["file"] for e in manifest[1:]] == [e["file"] for e in shipped_manifest]
    assert file_sha256(folder / new["file"]) == new["sha256"] and new["dtype"] == "float16"
    assert not (folder / shipped_manifest[0]["file"]).exists()  # the shipped file stays home
    assert training["continued_from"]["weights"] == shipped_manifest[0]["file"]
    assert training["steps"] == shipped["steps"] + training["steps_this_run"]
    assert len(training["history"]) == len(shipped["history"]) + 1
    assert training["time_budget"]["max_steps"] >= training["steps_this_run"]
    # what `codeczoo eval --record` writes, measured on these very weights
    (evaluation,) = training["evaluations"]
    assert evaluation["weights_hash"] == new["weights_hash"] == training["weights_hash"]
    assert evaluation["command"].startswith(
        f"codeczoo eval ../shared/data/cxr/val --codec {name} --quality 1 --record "
        f"-o results/val/{name}.json")
    result = json.loads((home / "results" / "val" / f"{name}.json").read_text())
    assert result["codec"]["weights_hash"] == new["weights_hash"]
    assert result["results"]["bpp"][0] > 0
    assert entry["evaluation"]["points"][0]["shipped_psnr"] > 0  # compared with the shipped
    # the weights load through the registry (sha256 checked) and code an image
    env = dict(os.environ, CODECZOO_REGISTRY=str(home / "registry"))
    check = subprocess.run([sys.executable, "-c", (
        "import codeczoo, numpy as np;"
        f"m = codeczoo.load('{name}', pretrained=True);"
        "x = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64);"
        "print(m.decode(m.encode(x, 1)).shape)")], env=env, capture_output=True, text=True,
        timeout=120)
    assert check.stdout.strip() == "(64, 64)", check.stderr[-1000:]
