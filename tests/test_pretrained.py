"""The shipped weights: verified by hash, refused when tampered with, and actually trained.

These tests cover every codec that ships weights in registry/ (``list_codecs(pretrained=True)``).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import codeczoo
from codeczoo.errors import WeightsError
from codeczoo.io import read_image
from codeczoo.metrics import psnr
from codeczoo.registry import (REGISTRY_ENV, current_weights, packaged_registry, read_training,
                               weights_quality)

PRETRAINED = codeczoo.list_codecs(pretrained=True)


def test_some_codecs_ship_weights():
    assert {"sushmit2019-rnnconv", "toderici2017-lstm-oneshot-small"} <= set(PRETRAINED)
    for name in PRETRAINED:  # shipped with codeczoo, not found in some user folder
        assert current_weights(name).root.resolve() == packaged_registry().resolve()


@pytest.mark.parametrize("name", PRETRAINED)
def test_weights_entry_describes_the_weights(name):
    network = weights_quality(name, None)  # where each quality is a network: load's default one
    located = current_weights(name, network)
    weights, training = located.entry, read_training(name, network)
    assert weights.sha256[:8] in weights.file
    assert located.path.stat().st_size == weights.size_bytes
    assert training["steps"] > 0 and training.get("recipe")
    # the hash .czoo headers carry, and the measured results belong to these very weights
    loaded_hash = codeczoo.load(name).weights_hash().hex()
    assert weights.weights_hash == loaded_hash == training["weights_hash"]
    assert training["evaluations"], "the shipped weights carry no evaluation"
    assert all(e["weights_hash"] == loaded_hash for e in training["evaluations"]), \
        "results measured on other weights"
    steps = [entry["steps"] for entry in training.get("history", [])] + [training["steps"]]
    assert steps == sorted(steps)


#: lossy codecs; the bounded-error ``residual`` layer has its own "really trained" test
#: (tests/test_residual.py: fewer bytes than its untrained self at the same bound)
LOSSY_PRETRAINED = [n for n in PRETRAINED if n != "residual"]


@pytest.mark.slow
@pytest.mark.parametrize("name", LOSSY_PRETRAINED)
def test_pretrained_codec_beats_its_untrained_self(name, cxr_val_images):
    """A crop of a validation X-ray at 4 iterations: trained weights must reconstruct it far
    better than freshly initialised ones (a stand-in for 'these weights were really trained')."""
    image = read_image(cxr_val_images[0]).pixels[128:384, 128:384]
    trained = codeczoo.load(name, pretrained=True)
    untrained = codeczoo.load(name, pretrained=False,
                              **dict(codeczoo.get_card(name).weights.arguments))
    scores = {}
    for label, codec in (("trained", trained), ("untrained", untrained)):
        data = codec.encode(image, 4, bits_stored=8)
        restored = codec.decode(data)
        assert restored.shape == image.shape and restored.dtype == image.dtype
        scores[label] = psnr(image, restored, 8)
    assert scores["trained"] > 25.0 and scores["trained"] > scores["untrained"] + 5.0, scores


@pytest.mark.parametrize("name", PRETRAINED[:1])
def test_tampered_weights_are_refused(name, tmp_path, monkeypatch):
    shutil.copytree(packaged_registry() / name, tmp_path / name)
    weights = tmp_path / name / current_weights(name, weights_quality(name, None)).entry.file
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF
    weights.write_bytes(bytes(raw))
    monkeypatch.setenv(REGISTRY_ENV, str(tmp_path))  # the user registry is searched first
    with pytest.raises(WeightsError, match="sha256"):
        codeczoo.load(name, pretrained=True)


@pytest.mark.parametrize("name", PRETRAINED[:1])
def test_decode_by_header_uses_registry_weights(name):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 4096, size=(48, 80)).astype(np.uint16)
    data = codeczoo.encode(image, codec=name, quality=2, bits_stored=12)
    assert codeczoo.read_header(data).weights_hash == codeczoo.load(name, 2).weights_hash()
    restored = codeczoo.decode(data)
    assert restored.shape == image.shape and restored.dtype == np.uint16
