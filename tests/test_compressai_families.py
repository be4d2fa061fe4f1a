"""CompressAI's own families as zoo members: thin one-channel registrations, their byte layer,
one network per quality, and CompressAI's loss, optimizer helper and plot tool on them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from compressai.losses import RateDistortionLoss as CompressAIRateDistortionLoss
from compressai.models import (FactorizedPrior, JointAutoregressiveHierarchicalPriors,
                               MeanScaleHyperprior, ScaleHyperprior)
from compressai.optimizers import net_aux_optimizer
from compressai.registry import MODELS
from compressai.zoo.image import cfgs

import codeczoo
from codeczoo.bitstream import unpack
from codeczoo.coding import compressai_payload
from codeczoo.errors import BitstreamError, CodeczooError, WeightsError
from codeczoo.io import read_image
from codeczoo.metrics import psnr
from codeczoo.models.compressai_families import LAMBDAS
from codeczoo.registry import (REGISTRY_ENV, current_weights, entry_arguments, read_training,
                               trained_qualities)
from codeczoo.training.module import CodecModule

FAMILIES = {
    "bmshj2018-factorized": FactorizedPrior,
    "bmshj2018-hyperprior": ScaleHyperprior,
    "mbt2018-mean": MeanScaleHyperprior,
    "mbt2018": JointAutoregressiveHierarchicalPriors,
}
TINY = {"N": 8, "M": 8}
SHIPPED = "bmshj2018-hyperprior-small-cxr"


def tiny(family: str, quality: int = 4):
    return codeczoo.load(f"{family}-small-cxr", quality, pretrained=False, **TINY)


@pytest.fixture(scope="module")
def xray(cxr_val_images) -> np.ndarray:
    """A 200 x 180 crop of a real validation chest X-ray (8-bit), not a multiple of 64."""
    return np.ascontiguousarray(read_image(cxr_val_images[0]).pixels[150:350, 200:380])


# -- thin registrations ------------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_is_the_compressai_class_with_one_channel(family):
    model = tiny(family)
    assert isinstance(model, FAMILIES[family])
    assert model.g_a[0].in_channels == 1 and model.g_s[-1].out_channels == 1
    rgb = FAMILIES[family](8, 8)  # CompressAI's own: same layers, same state-dict keys
    assert model.state_dict().keys() == rgb.state_dict().keys()
    for key, tensor in rgb.state_dict().items():
        if key not in ("g_a.0.weight", "g_s.6.weight", "g_s.6.bias") and not key.endswith(
                ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")):
            assert model.state_dict()[key].shape == tensor.shape, key
    # two entries per family: CompressAI's published widths per quality, and the CPU variant
    assert entry_arguments(f"{family}-cxr")["N"] is None  # None: compressai.zoo's per quality
    assert {k: entry_arguments(f"{family}-small-cxr")[k] for k in "NM"} == {"N": 64, "M": 96}
    built = MODELS[f"{family}-small-cxr"](quality=2, **TINY)  # CompressAI's registry builds it
    assert type(built) is type(model) and built.quality == 2 and built.lmbda == LAMBDAS[2]


def test_published_widths_follow_compressai_per_quality():
    for quality in (5, 6):  # the step from 128 / 192 to 192 / 320
        model = codeczoo.registry.build("bmshj2018-hyperprior-cxr", quality=quality)
        assert (model.N, model.M) == cfgs["bmshj2018-hyperprior"][quality]
        assert model.lmbda == LAMBDAS[quality] and model.default_quality == quality
    assert [(r["N"], r["M"]) for r in model.rate_table()] == \
        [cfgs["bmshj2018-hyperprior"][q] for q in range(1, 9)]
    with pytest.raises(CodeczooError, match="CompressAI's ladder"):
        codeczoo.registry.build("bmshj2018-hyperprior-cxr", quality=9)


# -- byte layer ----------------------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_byte_layer_round_trip_on_a_real_xray(family, xray):
    model = tiny(family, 3)
    xray = np.ascontiguousarray(xray[:100, :90])  # small: mbt2018 decodes latent by latent
    data = model.encode(xray, bits_stored=8)
    header, payload = unpack(data)
    assert header.quality == 3 and header.codec == f"{family}-small-cxr"
    multiple = 16 if family == "bmshj2018-factorized" else 64
    assert (xray.shape[0] + header.pad_bottom) % multiple == 0 and header.pad_bottom < multiple
    restored = model.decode(data)
    assert restored.shape == xray.shape and restored.dtype == xray.dtype
    # the payload's strings are CompressAI's own compress() output for the padded image
    groups = 1 if family == "bmshj2018-factorized" else 2
    assert payload[0] == groups


def test_high_bit_depths_and_decode_from_the_header_alone():
    yy, xx = np.mgrid[0:40, 0:50]
    image = (yy * 60 + xx * 20).astype(np.uint16)  # a 12-bit ramp
    name = "bmshj2018-factorized-small-cxr"
    data = codeczoo.load(name, 2, pretrained=False).encode(image, bits_stored=12)
    restored = codeczoo.decode(data)  # untrained: seeded weights of quality 2's network
    assert restored.shape == image.shape and restored.dtype == np.uint16
    assert int(restored.max()) < 2 ** 12
    model = tiny("bmshj2018-hyperprior")
    signed = (image.astype(np.int32) - 2048).astype(np.int16)
    back = model.decode(model.encode(signed, bits_stored=12))
    assert back.shape == signed.shape and back.dtype == np.int16 and back.min() >= -2048


def test_payload_sizes_are_checked_before_decoding():
    payload = compressai_payload.pack([b"abc", b"de"], (2, 3))
    assert compressai_payload.unpack(payload, 2, (2, 3)) == [b"abc", b"de"]
    with pytest.raises(BitstreamError, match="string groups"):
        compressai_payload.unpack(payload, 1, (2, 3))
    with pytest.raises(BitstreamError, match="2x3 latent"):
        compressai_payload.unpack(payload, 2, (2, 4))
    with pytest.raises(BitstreamError, match="add up"):
        compressai_payload.unpack(payload + b"x", 2, (2, 3))
    with pytest.raises(BitstreamError, match="add up"):
        compressai_payload.unpack(payload[:-1], 2, (2, 3))
    with pytest.raises(BitstreamError, match="too short"):
        compressai_payload.unpack(b"\x02", 2, (2, 3))


def test_a_payload_declaring_a_huge_latent_is_refused(xray):
    import dataclasses

    from codeczoo import bitstream

    model = tiny("bmshj2018-hyperprior")
    header, payload = unpack(model.encode(xray, bits_stored=8))
    forged = bytes([2]) + (60000).to_bytes(2, "big") * 2 + payload[5:]
    data = bitstream.pack(dataclasses.replace(header, payload_length=len(forged)), forged)
    with pytest.raises(BitstreamError, match="60000x60000 latent"):
        model.decode(data)


# -- one network per quality ------------------------------------------------------------------------
def test_an_instance_codes_its_own_quality_and_hands_over_the_others(xray):
    model = tiny("bmshj2018-factorized", 3)
    with pytest.raises(CodeczooError, match="quality 3's network"):
        model.encode(xray, 5, bits_stored=8)
    other = model.for_quality(5)  # untrained, like this one: the seeded network of quality 5
    assert other.quality == 5 and other.lmbda == LAMBDAS[5] and (other.N, other.M) == (8, 8)
    assert unpack(other.encode(xray, 5, bits_stored=8))[0].quality == 5
    assert model.for_quality(3) is model
    foreign = tiny("bmshj2018-factorized", 3)
    with torch.no_grad():
        foreign.g_a[0].weight.add_(1.0)  # weights no registry holds
    with pytest.raises(CodeczooError, match="weights no registry holds"):
        foreign.for_quality(5)


@pytest.mark.slow
def test_quality_selects_the_shipped_network_and_eval_sweeps_the_trained_ladder(xray):
    qualities = trained_qualities(SHIPPED)
    assert len(qualities) >= 3, "ship a quality ladder of at least three networks"
    hashes, sizes = set(), []
    for quality in qualities:
        model = codeczoo.load(SHIPPED, quality=quality)
        located = current_weights(SHIPPED, quality)
        assert model.quality == quality and located.entry.arguments["quality"] == quality
        assert model.weights_hash().hex() == located.entry.weights_hash
        assert read_training(SHIPPED, quality)["lmbda"] == LAMBDAS[quality]
        hashes.add(located.entry.weights_hash)
        # a file written at this quality decodes by its header with this quality's network
        data = model.encode(xray, bits_stored=8)
        assert psnr(xray, codeczoo.decode(data), 8) > 25.0
        sizes.append(len(data))
    assert len(hashes) == len(qualities)
    assert sizes == sorted(sizes)  # the ladder's rates rise with quality
    assert codeczoo.load(SHIPPED).default_eval_qualities() == qualities


def test_decoding_with_a_weights_file_uses_the_headers_quality(xray, tmp_path):
    from safetensors.torch import save_file

    quality = max(trained_qualities(SHIPPED))  # not the default quality
    model = codeczoo.load(SHIPPED, quality)
    data = model.encode(xray, bits_stored=8)
    own = tmp_path / "mine.safetensors"  # the same weights, as a user's own file
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(own))
    assert np.array_equal(codeczoo.decode(data, weights=own), model.decode(data))


def test_a_quality_without_weights_is_refused_for_files(monkeypatch, tmp_path):
    monkeypatch.setenv(REGISTRY_ENV, str(tmp_path))
    missing = next(q for q in range(1, 9) if q not in trained_qualities(SHIPPED))
    with pytest.raises(WeightsError, match=f"no trained weights for quality {missing}"):
        codeczoo.encode(np.zeros((64, 64), np.uint8), SHIPPED, missing)
    with pytest.raises(WeightsError, match=f"quality {missing}"):
        codeczoo.load(SHIPPED, missing, pretrained=True)


# -- the CompressAI contract beyond tensors -----------------------------------------------------------
def test_compressai_loss_and_optimizer_helper_train_a_zoo_member():
    torch.manual_seed(0)
    model = tiny("mbt2018-mean", 2).train()
    optimizer, aux_optimizer = net_aux_optimizer(
        model, {"net": {"type": "Adam", "lr": 1e-3}, "aux": {"type": "Adam", "lr": 1e-2}}).values()
    assert {id(p) for g in aux_optimizer.param_groups for p in g["params"]} == \
        {id(model.entropy_bottleneck.quantiles)}
    criterion = CompressAIRateDistortionLoss(lmbda=model.lmbda)
    x = torch.rand(2, 1, 64, 64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = criterion(model(x), x)
    assert set(out) >= {"loss", "bpp_loss", "mse_loss"} and out["bpp_loss"] > 0
    optimizer.zero_grad()
    out["loss"].backward()
    optimizer.step()
    aux = model.aux_loss()
    assert aux.requires_grad
    aux_optimizer.zero_grad()
    aux.backward()
    aux_optimizer.step()
    after = model.state_dict()
    assert not torch.equal(before["g_a.0.weight"], after["g_a.0.weight"])
    assert not torch.equal(before["entropy_bottleneck.quantiles"],
                           after["entropy_bottleneck.quantiles"])


def test_from_state_dict_rebuilds_the_registered_network_exactly():
    quality = trained_qualities(SHIPPED)[0]
    shipped = codeczoo.load(SHIPPED, quality)
    rebuilt = type(shipped).from_state_dict(shipped.state_dict())
    assert rebuilt.codec_name == SHIPPED and rebuilt.quality == quality
    assert rebuilt.weights_hash() == shipped.weights_hash()
    # weights no registry holds: widths from their shapes, the quality as told
    own = tiny("bmshj2018-hyperprior", 6)
    with torch.no_grad():
        own.g_a[0].weight.mul_(2.0)
    again = type(own).from_state_dict(own.state_dict(), quality=6)
    assert (again.N, again.M, again.quality) == (8, 8, 6)
    assert again.weights_hash() == own.weights_hash()


def test_cdf_tables_of_other_sizes_load_directly_and_through_a_parent_module():
    trained = tiny("bmshj2018-hyperprior")
    with torch.no_grad():
        trained.entropy_bottleneck.quantiles.mul_(3.0)  # wider tails: larger CDF tables
    trained.update(force=True)
    fresh = tiny("bmshj2018-hyperprior")
    assert fresh.entropy_bottleneck._quantized_cdf.shape != \
        trained.entropy_bottleneck._quantized_cdf.shape
    fresh.load_state_dict(trained.state_dict())
    assert fresh.weights_hash() == trained.weights_hash()
    parent, source = torch.nn.ModuleDict({"model": tiny("bmshj2018-hyperprior")}), \
        torch.nn.ModuleDict({"model": trained})
    parent.load_state_dict(source.state_dict())  # what resuming a Lightning checkpoint does
    assert parent["model"].weights_hash() == trained.weights_hash()


def test_codec_module_trains_at_the_quality_lambda():
    module = CodecModule(f"{SHIPPED}", codec_args={"quality": 6, **TINY})
    assert module.lmbda == LAMBDAS[6] and module.rd_loss.lmbda == LAMBDAS[6] and module.has_aux
    with pytest.raises(CodeczooError, match="choose the quality"):
        CodecModule(SHIPPED, codec_args={"quality": 6, **TINY}, lmbda=0.01)


@pytest.mark.slow
def test_compressai_plot_reads_eval_json_of_a_family(xray, tmp_path, cxr_val_images):
    from compressai.utils.plot.__main__ import main as plot_main

    from codeczoo.evaluation.evaluate import evaluate, write_results

    image = read_image(cxr_val_images[1]).pixels[100:300, 100:300]  # >= 176 px: MS-SSIM
    result = evaluate(SHIPPED, [image], trained_qualities(SHIPPED)[:2])
    assert result["codec"]["pretrained"] is True
    assert len(set(result["codec"]["weights_hashes"])) == 2
    path = write_results(result, tmp_path / "family.json")
    for metric in ("psnr", "ms-ssim"):
        plot_main(["-f", str(path), "-m", metric, "-o", str(tmp_path / f"{metric}.png")])
        assert (tmp_path / f"{metric}.png").stat().st_size > 1000
    assert json.loads(path.read_text())["results"]["ms-ssim"][0] > 0.5
