"""The zoo as users meet it: shipped weights found, untrained codecs refused, old bitstreams
decodable, user weights supplied by file, recipes by name (issue 11.1-11.3)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import codeczoo
from codeczoo.cli import main
from codeczoo.errors import CodecMismatchError, CodeczooError, WeightsError
from codeczoo.io import read_image
from codeczoo.registry import is_installed_location, load, packaged_registry
from codeczoo.training.recipes import list_recipes, resolve_recipe

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "codeczoo" / "samples" / "chest_1_8bit.png"
BITSTREAMS = REPO / "tests" / "data" / "bitstreams"
UNTRAINED = "toderici2017-lstm-oneshot"  # published size: no weights ship for it


def test_committed_bitstreams_of_the_shipped_weights_decode():
    """Written by the weights that shipped when they were made; later weights must keep them
    decodable (older entries stay in weights.json) or regenerate them on purpose."""
    streams = sorted(BITSTREAMS.glob("*.czoo"))
    assert {s.name.rsplit("-q", 1)[0] for s in streams} >= set(codeczoo.list_codecs(pretrained=True))
    for stream in streams:
        expected = read_image(stream.with_suffix(".png")).pixels
        decoded = codeczoo.decode(stream.read_bytes())
        assert decoded.dtype == expected.dtype and decoded.shape == expected.shape
        assert np.abs(decoded.astype(int) - expected).max() <= 1, stream.name


def test_untrained_learned_codec_is_refused_by_encode_and_cli(tmp_path, capsys):
    image = read_image(SAMPLE).pixels
    with pytest.raises(WeightsError, match=f"{UNTRAINED}.*no trained weights"):
        codeczoo.encode(image, UNTRAINED, bits_stored=8)
    target = tmp_path / "x.czoo"
    assert main(["compress", str(SAMPLE), "-o", str(target), "--codec", UNTRAINED]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no trained weights" in err[0] and "--untrained-weights" in err[0]
    assert not target.exists()


def test_untrained_weights_on_request_are_seeded_and_decodable(tmp_path):
    """--untrained-weights writes files this codeczoo decodes (seeded initialisation)."""
    crop = read_image(SAMPLE).pixels[:64, :64]
    data = codeczoo.encode(crop, "toderici2017-lstm-additive", 1, bits_stored=8,
                           allow_untrained=True)
    assert codeczoo.load("toderici2017-lstm-additive", pretrained=False).weights_hash() == \
        codeczoo.read_header(data).weights_hash
    assert codeczoo.decode(data).shape == crop.shape
    # research use stays open in Python: load(pretrained=False) encodes without a flag
    assert load(UNTRAINED, pretrained=False).encode(crop, 1, bits_stored=8)


def test_bitstream_of_user_weights_names_them_and_decodes_with_the_file(tmp_path, capsys):
    from safetensors.torch import save_file

    name = "toderici2017-lstm-oneshot-small"
    model = codeczoo.load(name)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.01)  # "fine-tuned" weights no registry holds
    weights = tmp_path / "mine.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    crop = read_image(SAMPLE).pixels[:64, :64]
    data = model.encode(crop, 2, bits_stored=8)
    with pytest.raises(CodecMismatchError, match=model.weights_hash().hex()):
        codeczoo.decode(data)
    decoded = codeczoo.decode(data, weights=weights)
    assert np.array_equal(decoded, model.decode(data))
    packed = tmp_path / "mine.czoo"
    packed.write_bytes(data)
    assert main(["decompress", str(packed), "-o", str(tmp_path / "out.png")]) == 1
    assert model.weights_hash().hex() in capsys.readouterr().err
    assert main(["decompress", str(packed), "-o", str(tmp_path / "out.png"),
                 "--weights", str(weights)]) == 0
    assert np.array_equal(read_image(tmp_path / "out.png").pixels, decoded)


def test_user_registry_is_searched_first_and_export_never_writes_into_a_package(tmp_path,
                                                                               monkeypatch):
    monkeypatch.setenv("CODECZOO_REGISTRY", str(tmp_path / "mine"))
    assert codeczoo.registry.registry_roots()[0] == tmp_path / "mine"
    assert packaged_registry() in codeczoo.registry.registry_roots()
    assert is_installed_location(Path("/usr/lib/python3/site-packages/codeczoo/_registry"))
    assert not is_installed_location(REPO / "registry")
    from codeczoo.training.export import export_checkpoint

    with pytest.raises(CodeczooError, match="installed package"):
        export_checkpoint(tmp_path / "none.ckpt", "sushmit2019-rnnconv",
                          registry="/tmp/x/site-packages/codeczoo/_registry")


def test_pretrained_auto_true_false():
    name = "sushmit2019-rnnconv"
    shipped = json.loads((packaged_registry() / name / "weights.json").read_text())["weights"][0]
    assert codeczoo.load(name).weights_hash().hex() == shipped["weights_hash"]  # "auto"
    assert codeczoo.load(name, pretrained=False).weights_hash().hex() != shipped["weights_hash"]
    assert codeczoo.load(UNTRAINED).learned  # auto without weights: untrained, no error
    with pytest.raises(WeightsError):
        codeczoo.load(UNTRAINED, pretrained=True)
    with pytest.raises(CodeczooError, match="pretrained must be"):
        codeczoo.load(name, pretrained="yes")


def test_recipes_by_name(capsys):
    names = list_recipes()
    assert "sushmit2019-rnnconv/cxr-64-cpu" in names
    assert Path(resolve_recipe("sushmit2019-rnnconv/cxr-64-cpu")).is_file()
    assert Path(resolve_recipe("recipes/sushmit2019-rnnconv/cxr-64-cpu.yaml")).is_file()
    with pytest.raises(CodeczooError, match="no packaged recipe"):
        resolve_recipe("sushmit2019-rnnconv/nope")
    assert main(["list", "--recipes"]) == 0
    assert capsys.readouterr().out.split() == names
    assert main(["fit", "--config", "nope/nope"]) == 1
    assert "no packaged recipe" in capsys.readouterr().err


def test_list_shows_weights_and_whole_descriptions(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "sushmit2019-rnnconv" in out and "pretrained" in out and "no weights" in out
    assert "published size)." in out  # the small Toderici's description, to its last word
    assert main(["info", "sushmit2019-rnnconv", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["paper"]["arxiv"] == "1904.12271" and card["weights"]["sha256"]
    assert card["rate_table"][0]["bpp_raw"] == 0.125
