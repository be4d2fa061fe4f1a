"""A codec from outside the package goes through every command (issue 13, item 1).

A tiny rate-distortion codec lives in a temporary package that declares a ``codeczoo.codecs``
entry point (a real ``.dist-info`` on the path, as ``pip install`` would leave it); another
route reaches the same class by its class path.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import codeczoo
from codeczoo.cli import main
from codeczoo.io import read_image
from codeczoo.registry import _ZOO

SAMPLE = Path(__file__).resolve().parent.parent / "codeczoo" / "samples" / "chest_1_8bit.png"

CODEC_MODULE = '''
"""A user's codec: Balle et al.'s factorized prior at 4 channels, one channel in and out."""
import struct

import numpy as np
import torch
from compressai.entropy_models import EntropyBottleneck
from compressai.models import CompressionModel
from torch import nn

from codeczoo import Codec, CodecCard, intensity


class TinyUserCodec(CompressionModel, Codec):
    """Tiny factorized-prior codec shipped by a user package."""

    learned = True
    card = CodecCard(description="A user's tiny factorized prior (test).")

    def __init__(self, channels: int = 4):
        super().__init__()
        self.entropy_bottleneck = EntropyBottleneck(channels)
        self.g_a = nn.Sequential(nn.Conv2d(1, channels, 5, 2, 2), nn.ReLU(),
                                 nn.Conv2d(channels, channels, 5, 2, 2))
        self.g_s = nn.Sequential(nn.ConvTranspose2d(channels, channels, 5, 2, 2, 1), nn.ReLU(),
                                 nn.ConvTranspose2d(channels, 1, 5, 2, 2, 1))

    def forward(self, x):
        y_hat, likelihoods = self.entropy_bottleneck(self.g_a(x))
        return {"x_hat": self.g_s(y_hat), "likelihoods": {"y": likelihoods}}

    def _tables(self):
        if self.entropy_bottleneck._offset.numel() == 0:  # CDF tables of untrained weights
            self.entropy_bottleneck.update()

    def encode_values(self, values, spec, quality):
        self._tables()
        pads = ((-spec.height) % 4, (-spec.width) % 4)
        x = intensity.to_unit(np.pad(values, ((0, pads[0]), (0, pads[1])), mode="edge"),
                              spec.bits_stored)
        with torch.no_grad():
            y = self.g_a(x)
            string = self.entropy_bottleneck.compress(y)[0]
        return struct.pack(">HH", *y.shape[-2:]) + string, pads

    def decode_values(self, payload, header):
        h, w = struct.unpack(">HH", payload[:4])
        self._tables()
        with torch.no_grad():
            y_hat = self.entropy_bottleneck.decompress([payload[4:]], (h, w))
            x_hat = self.g_s(y_hat)
        spec = header.spec
        return intensity.from_unit(x_hat[..., :spec.height, :spec.width], spec.bits_stored)
'''


@pytest.fixture()
def user_package(tmp_path, monkeypatch):
    """``userpkg`` with a ``codeczoo.codecs`` entry point ``tiny-user``, on the path."""
    site = tmp_path / "site"
    (site / "userpkg").mkdir(parents=True)
    (site / "userpkg" / "__init__.py").write_text("")
    (site / "userpkg" / "codecs.py").write_text(CODEC_MODULE)
    dist = site / "userpkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: userpkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[codeczoo.codecs]\ntiny-user = userpkg.codecs:TinyUserCodec\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("CODECZOO_REGISTRY", str(tmp_path / "registry"))
    importlib.invalidate_caches()
    yield site
    for name in [n for n, e in _ZOO.items() if e.cls.__module__.startswith("userpkg")]:
        _ZOO.pop(name)
    for module in [m for m in sys.modules if m.startswith("userpkg")]:
        sys.modules.pop(module)


@pytest.mark.slow
def test_entry_point_codec_goes_through_every_command(user_package, tmp_path, data_dir,
                                                     capsys):
    assert "tiny-user" in codeczoo.list_codecs()
    assert main(["list"]) == 0 and "tiny-user" in capsys.readouterr().out
    # untrained: refused for writing files, like any learned codec without weights
    assert main(["compress", str(SAMPLE), "-o", str(tmp_path / "x.czoo"),
                 "--codec", "tiny-user"]) == 1
    assert "no trained weights" in capsys.readouterr().err
    # fit 2 steps, validate, test
    run = tmp_path / "run"
    common = ["--model", "codeczoo.training.module.CodecModule", "--model.codec", "tiny-user",
              "--model.lmbda", "0.01", "--data.data_root", str(data_dir),
              "--data.limit_images", "2", "--data.crop_size", "32", "--data.crops_per_image", "2",
              "--data.batch_size", "2", "--data.val_crop_size", "64",
              "--data.val_crops_per_image", "1", "--trainer.accelerator", "cpu",
              "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
              "--trainer.default_root_dir", str(run)]
    assert main(["fit", *common, "--trainer.max_steps", "2", "--trainer.limit_val_batches", "1",
                 "--data.init_args.num_workers", "0"]) == 0
    checkpoint = run / "checkpoints" / "last.ckpt"
    for stage in ("validate", "test"):
        assert main([stage, *common, "--ckpt_path", str(checkpoint),
                     "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1",
                     "--data.test_dir", "cxr/val"]) == 0
    # export into the user registry; then compress / decompress / eval / bench use the weights
    assert main(["export", str(checkpoint), "--name", "tiny-user"]) == 0
    manifest = json.loads((tmp_path / "registry" / "tiny-user" / "weights.json").read_text())
    assert manifest["weights"][0]["arguments"] == {"channels": 4}
    packed, restored = tmp_path / "a.czoo", tmp_path / "a.png"
    assert main(["compress", str(SAMPLE), "-o", str(packed), "--codec", "tiny-user"]) == 0
    # a fresh process decodes it: the header's name is found through the entry point
    proc = subprocess.run([sys.executable, "-m", "codeczoo", "decompress", str(packed), "-o",
                           str(restored)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert read_image(restored).pixels.shape == read_image(SAMPLE).pixels.shape
    assert main(["eval", str(SAMPLE), "--codec", "tiny-user", "-o",
                 str(tmp_path / "eval.json")]) == 0
    assert json.loads((tmp_path / "eval.json").read_text())["codec"]["pretrained"] is True
    assert main(["bench", str(SAMPLE), "--codecs", "tiny-user", "-o", str(tmp_path / "bench"),
                 "--quality", "jpeg2000=8,16"]) == 0
    assert "tiny-user" in (tmp_path / "bench" / "table.md").read_text()


def test_class_path_codec_and_header_never_imports(user_package, tmp_path, capsys):
    """A class path works wherever a name is given; decoding a file written by it needs the
    module imported explicitly (a header alone never imports code)."""
    model = codeczoo.load("userpkg.codecs:TinyUserCodec")
    assert model.codec_name == "tiny-user"  # the installed package's name for the class
    image = read_image(SAMPLE).pixels[:64, :64]
    data = model.encode(image, bits_stored=8)
    assert codeczoo.decode(data).shape == image.shape


def test_class_path_without_entry_point(tmp_path, monkeypatch, capsys):
    site = tmp_path / "site"
    (site / "plainpkg").mkdir(parents=True)
    (site / "plainpkg" / "__init__.py").write_text(CODEC_MODULE)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))
    importlib.invalidate_caches()
    try:
        packed = tmp_path / "p.czoo"
        assert main(["compress", str(SAMPLE), "-o", str(packed), "--codec",
                     "plainpkg:TinyUserCodec", "--untrained-weights"]) == 0
        assert codeczoo.read_header(packed.read_bytes()).codec == "plainpkg.TinyUserCodec"
        run = [sys.executable, "-m", "codeczoo"]
        args = ["decompress", str(packed), "-o", str(tmp_path / "p.png")]
        proc = subprocess.run(run + args, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 1 and "unknown codec 'plainpkg.TinyUserCodec'" in proc.stderr
        assert not (tmp_path / "p.png").exists()
        proc = subprocess.run(run + ["--import", "plainpkg"] + args, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr  # seeded untrained weights, same codeczoo
        assert read_image(tmp_path / "p.png").pixels.shape == read_image(SAMPLE).pixels.shape
    finally:
        for name in [n for n, e in _ZOO.items() if e.cls.__module__.startswith("plainpkg")]:
            _ZOO.pop(name)
        sys.modules.pop("plainpkg", None)


def test_register_codec_card_must_be_a_card():
    with pytest.raises(codeczoo.CodeczooError, match="CodecCard"):
        codeczoo.register_codec("test-bad-card", {"description": "x"})(codeczoo.Codec)
