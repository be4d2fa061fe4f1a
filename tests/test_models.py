"""Learned recurrent codecs: CompressAI contract, byte layer, rate, training (real crops)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from PIL import Image

import codeczoo
from codeczoo import bitstream
from codeczoo.bitstream import unpack
from codeczoo.errors import CodecMismatchError, CodeczooError, WeightsError
from codeczoo.coding import recurrent_payload
from codeczoo.coding.recurrent_payload import (LAYOUT_SINGLE, LAYOUTS, POSITION_MAJOR,
                                               pack_codes, pack_payload, tile_codes, unpack_codes)
from codeczoo.models import Sushmit2019RnnConv, Toderici2017
from codeczoo.models.base import Binarizer

LEARNED = ["sushmit2019-rnnconv", "toderici2017-lstm-oneshot", "toderici2017-lstm-additive",
           "toderici2017-lstm-oneshot-small"]

# Tiny constructor arguments: the architectures of the registered codecs at a few channels.
TINY_SUSHMIT = dict(front_channels=4, encoder_channels=(8, 8, 8), code_channels=8,
                    decoder_first_channels=8, decoder_channels=(8, 8, 8, 4), max_iterations=4,
                    default_quality=2, tile_size=64)
TINY_TODERICI = dict(stem_channels=4, encoder_channels=(8, 8, 8), code_channels=8,
                     decoder_first_channels=8, decoder_channels=(8, 8, 8, 8), max_iterations=4,
                     default_quality=2, tile_size=64)


def tiny(kind: str, seed: int = 0):
    torch.manual_seed(seed)
    if kind == "sushmit":
        return Sushmit2019RnnConv(**TINY_SUSHMIT).eval()
    return Toderici2017(**TINY_TODERICI).eval()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def crops(request) -> torch.Tensor:
    """64 real 32x32 crops from 8 training chest X-rays, in [0, 1], (64, 1, 32, 32)."""
    paths = request.getfixturevalue("cxr_train_images")[:8]
    rng = np.random.default_rng(0)
    out = []
    for path in paths:
        img = np.asarray(Image.open(path).convert("L"))
        for _ in range(8):
            i, j = rng.integers(0, img.shape[0] - 32), rng.integers(0, img.shape[1] - 32)
            out.append(img[i:i + 32, j:j + 32])
    return torch.from_numpy(np.stack(out).astype(np.float32) / 255.0)[:, None]


# -- registry and CompressAI ----------------------------------------------------------------------
@pytest.mark.parametrize("name", LEARNED)
def test_compressai_registry_builds_each_codec(name):
    from compressai.models import CompressionModel
    from compressai.registry import MODELS

    assert name in codeczoo.list_codecs()
    model = MODELS[name]()
    assert isinstance(model, CompressionModel) and isinstance(model, codeczoo.Codec)
    assert model.codec_name == name
    assert model.downsampling == 16 and model.code_channels == 32
    assert model.bpp_per_iteration == 0.125
    assert model.qualities == tuple(range(1, model.max_iterations + 1))
    assert model.default_quality in model.qualities
    aux = model.aux_loss()
    assert float(aux.detach()) == 0.0
    aux.backward()  # CompressAI trainers call it: zero gradients, no error
    model.update()  # no entropy bottleneck: must not fail


def test_published_toderici_sizes():
    full = codeczoo.load("toderici2017-lstm-oneshot")
    n_full = sum(p.numel() for p in full.parameters())
    assert 35e6 < n_full < 36e6
    assert full.gamma == 0.0 and codeczoo.load("toderici2017-lstm-additive").gamma == 1.0
    small = codeczoo.load("toderici2017-lstm-oneshot-small")
    assert sum(p.numel() for p in small.parameters()) < n_full / 10
    paper = codeczoo.load("sushmit2019-rnnconv")
    assert sum(p.numel() for p in paper.parameters()) < 1_000_000


@pytest.mark.slow
def test_full_size_toderici_forward_on_a_real_crop(crops):
    model = codeczoo.load("toderici2017-lstm-oneshot")
    with torch.no_grad():
        out = model(crops[:1], iterations=2)
    assert out["x_hat"].shape == (1, 1, 32, 32)
    assert out["residuals"].shape == (2, 1, 1, 32, 32)
    assert out["likelihoods"]["codes"].shape == (1, 64, 2, 2)


# -- tensor layer ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sushmit", "toderici"])
def test_forward_shapes_and_likelihood_bpp(kind):
    model = tiny(kind).train()
    x = torch.rand(2, 1, 32, 48)
    out = model(x, iterations=3)
    assert out["x_hat"].shape == x.shape and out["x_hat"].dtype == torch.float32
    assert out["residuals"].shape == (3, 2, 1, 32, 48)
    torch.testing.assert_close(out["residuals"][-1], x - out["x_hat"])
    n, _, h, w = x.shape
    bpp = sum(torch.log(l).sum() for l in out["likelihoods"].values()) / (-math.log(2) * n * h * w)
    assert float(bpp) == pytest.approx(3 * model.bpp_per_iteration, rel=1e-6)
    # quality means the same in both modes (issue 13: quality= held in train mode)
    assert model(x)["residuals"].shape[0] == model.default_quality
    assert model.eval()(x)["residuals"].shape[0] == model.default_quality


def test_forward_rejects_sizes_off_the_grid():
    model = tiny("sushmit")
    with pytest.raises(ValueError, match="multiples of 16"):
        model(torch.rand(1, 1, 30, 32))
    with pytest.raises(ValueError, match="iterations"):
        model(torch.rand(1, 1, 32, 32), iterations=5)


def test_binarizer_stochastic_in_training_sign_in_eval():
    torch.manual_seed(0)
    binarizer = Binarizer(1, 1)
    with torch.no_grad():
        binarizer.conv.weight.fill_(1.0)
    x = torch.full((1, 1, 200, 200), 0.5493, requires_grad=True)  # tanh -> 0.5
    bits = binarizer(x)
    assert set(bits.unique().tolist()) == {-1.0, 1.0}
    assert float(bits.detach().mean()) == pytest.approx(0.5, abs=0.03)  # E[b] = tanh(y)
    bits.sum().backward()  # straight through: d b / d y = 1, so grad = 1 - tanh^2
    torch.testing.assert_close(x.grad, torch.full_like(x, 0.75), atol=1e-3, rtol=0)
    binarizer.eval()
    assert torch.equal(binarizer(x), torch.ones_like(x))
    assert torch.equal(binarizer(-x), -torch.ones_like(x))


@pytest.mark.parametrize("kind", ["sushmit", "toderici"])
def test_compress_decompress_equals_eval_forward(kind, crops):
    model = tiny(kind)
    x = crops[:3]
    enc = model.compress(x, iterations=3)
    assert enc["shape"] == (2, 2, 3)
    assert len(enc["strings"]) == 1 and len(enc["strings"][0]) == 3
    assert all(isinstance(s, bytes) for s in enc["strings"][0])
    dec = model.decompress(enc["strings"], enc["shape"])
    with torch.no_grad():
        ref = model(x, iterations=3)["x_hat"].clamp(0, 1)
    assert torch.equal(dec["x_hat"], ref)


# -- byte layer -----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 1), (37, 1001), (64, 64)])
@pytest.mark.parametrize("bits", [8, 12, 16])
def test_byte_layer_shape_and_dtype_exact(shape, bits):
    model = tiny("sushmit")
    rng = np.random.default_rng(bits)
    dtype = np.uint8 if bits == 8 else np.uint16
    image = rng.integers(0, 2 ** bits, size=shape).astype(dtype)
    data = model.encode(image, quality=2, bits_stored=bits)
    header, _ = unpack(data)
    assert (header.pad_bottom, header.pad_right) == ((-shape[0]) % 16, (-shape[1]) % 16)
    out = model.decode(data)
    assert out.shape == shape and out.dtype == image.dtype
    assert int(out.max()) < 2 ** bits


def test_signed_dicom_style_input():
    model = tiny("toderici")
    image = np.random.default_rng(0).integers(-2048, 2048, size=(40, 20)).astype(np.int16)
    out = model.decode(model.encode(image, bits_stored=12))
    assert out.dtype == np.int16 and out.shape == image.shape
    assert out.min() >= -2048 and out.max() <= 2047


def test_same_image_gives_identical_bytes(val_image):
    model = tiny("sushmit")
    first = model.encode(val_image, quality=3)
    assert model.encode(val_image, quality=3) == first
    twin = Sushmit2019RnnConv.from_state_dict(model.state_dict(), tile_size=64).eval()
    assert twin.encode(val_image, quality=3) == first
    np.testing.assert_array_equal(twin.decode(first), model.decode(first))


def test_more_iterations_more_bytes(val_image):
    # the shipped weights: an untrained model's later iterations may repeat its first codes,
    # which DEFLATE then stores almost for free
    model = codeczoo.load("sushmit2019-rnnconv", pretrained=True)
    sizes = [len(model.encode(val_image, quality=q)) for q in (1, 2, 4)]
    assert sizes[0] < sizes[1] < sizes[2]
    # Before gzip each iteration costs code_channels bits per 16x16 block.
    blocks = (128 // 16) * (160 // 16)
    assert sizes[2] - sizes[0] <= 3 * blocks * model.code_channels // 8 + 64


def test_tiling_and_every_payload_layout_decode(val_image):
    model = tiny("toderici")  # tile_size 64: a 128x160 image is a 2x3 tile grid
    data = model.encode(val_image, quality=2)
    header, payload = unpack(data)
    assert payload[2:8] == bytes([0, 64, 0, 2, 0, 3])
    decoded = model.decode_values(payload, header)
    # Re-pack the same codes in every layout: the image must come back identical, and the
    # encoder must have written the smallest of them.
    codes, grid, _ = tile_codes(model, val_image.astype(np.uint16), header.spec, 2)
    assert grid == (2, 3) and len(codes) == 6
    payloads = {kind: pack_payload(codes, 2, 64, 2, 3, layout=kind) for kind in LAYOUTS}
    assert payloads[payload[0]] == payload
    assert len(payload) == min(len(p) for p in payloads.values())
    for kind, repacked in payloads.items():
        assert repacked[0] == kind
        np.testing.assert_array_equal(model.decode_values(repacked, header), decoded)
    # the two code orders really differ on the wire
    assert payloads[LAYOUT_SINGLE][8:] != payloads[LAYOUT_SINGLE | POSITION_MAJOR][8:]


def test_version_1_streams_still_decode_and_cannot_claim_new_layouts(val_image):
    """Files written before position-major order (codec version 1, layouts 0 and 1) and before
    the learned stage and iteration maps (version 2) decode; neither may claim what came later."""
    model = tiny("toderici")
    header, payload = unpack(model.encode(val_image, quality=2))
    assert header.codec_version == "3"
    v2 = bitstream.pack(dataclasses.replace(header, codec_version="2"), payload)
    np.testing.assert_array_equal(model.decode(v2), model.decode(bitstream.pack(header, payload)))
    for flag in (recurrent_payload.LEARNED, recurrent_payload.ADAPTIVE):
        claimed = bytes([payload[0] | flag]) + payload[1:]
        with pytest.raises(CodeczooError, match="unknown payload layout"):
            model.decode(bitstream.pack(dataclasses.replace(header, codec_version="2"), claimed))
    codes, _, _ = tile_codes(model, val_image.astype(np.uint16), header.spec, 2)
    old_header = dataclasses.replace(header, codec_version="1")
    old = bitstream.pack(old_header, pack_payload(codes, 2, 64, 2, 3, layout=LAYOUT_SINGLE))
    np.testing.assert_array_equal(model.decode(old), model.decode(bitstream.pack(header, payload)))
    claimed = bitstream.pack(old_header, pack_payload(
        codes, 2, 64, 2, 3, layout=LAYOUT_SINGLE | POSITION_MAJOR))
    with pytest.raises(CodeczooError, match="unknown payload layout"):
        model.decode(claimed)


def test_pack_codes_orders_round_trip():
    codes = np.sign(np.random.default_rng(0).standard_normal((3, 8, 2, 5))).astype(np.float32)
    for position_major in (False, True):
        data = pack_codes(codes, position_major=position_major)
        assert len(data) == codes.size // 8
        np.testing.assert_array_equal(unpack_codes(data, codes.shape, position_major), codes)
    # position-major puts one position's channel bits in one byte
    first = np.unpackbits(np.frombuffer(pack_codes(codes), np.uint8))[:8]
    np.testing.assert_array_equal(first, codes[0, :, 0, 0] > 0)


def test_bad_quality_and_corrupt_payload_are_clear_errors(val_image):
    model = tiny("sushmit")
    with pytest.raises(CodeczooError, match="quality"):
        model.encode(val_image, quality=5)
    header, payload = unpack(model.encode(val_image, quality=2))
    with pytest.raises(CodeczooError):
        model.decode_values(payload[:8] + payload[8:][:-3], header)
    with pytest.raises(CodeczooError):
        model.decode_values(bytes([7]) + payload[1:], header)


def test_wrong_codec_or_weights_is_refused(val_image):
    model = tiny("sushmit", seed=0)
    data = model.encode(val_image, quality=2)
    with pytest.raises(CodecMismatchError, match="codec"):
        tiny("toderici").decode(data)
    with pytest.raises(CodecMismatchError, match="weights"):
        tiny("sushmit", seed=1).decode(data)


def test_weights_hash_follows_training():
    model = tiny("sushmit").train()
    before = model.weights_hash()
    assert model.weights_hash() == before  # cached, stable
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.residual_loss(model(torch.rand(2, 1, 32, 32), iterations=2)).backward()
    opt.step()
    after = model.weights_hash()
    assert after != before
    fresh = tiny("sushmit")
    fresh.load_state_dict(model.state_dict())
    assert fresh.weights_hash() == after


@pytest.mark.parametrize("kind", ["sushmit", "toderici"])
def test_from_state_dict_round_trip(kind):
    model = tiny(kind)
    rebuilt = type(model).from_state_dict(model.state_dict()).eval()
    assert rebuilt.weights_hash() == model.weights_hash()
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(rebuilt(x, iterations=2)["x_hat"], model(x, iterations=2)["x_hat"])


def test_pretrained_without_weights_is_a_weights_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CODECZOO_REGISTRY", str(tmp_path))  # an empty user registry
    with pytest.raises(WeightsError, match="no trained weights"):
        codeczoo.load("toderici2017-lstm-oneshot", pretrained=True)


# -- training on real crops -----------------------------------------------------------------------
def test_training_lowers_loss_and_more_iterations_lower_error(crops):
    """20 Adam steps on real crops: held-out loss drops, and the 4th iteration beats the 1st."""
    torch.manual_seed(0)
    model = Sushmit2019RnnConv(front_channels=8, encoder_channels=(8, 16, 16), code_channels=8,
                               decoder_first_channels=16, decoder_channels=(16, 16, 8, 8),
                               max_iterations=4, default_quality=4)
    train, held = crops[:48], crops[48:]

    def held_errors():
        model.eval()
        with torch.no_grad():
            residuals = model(held, iterations=4)["residuals"]
        model.train()
        return residuals.abs().mean(dim=(1, 2, 3, 4))

    before = held_errors()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(20):
        idx = torch.randint(0, len(train), (16,))
        loss = model.residual_loss(model(train[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = held_errors()
    assert after.sum() < 0.8 * before.sum(), (before, after)
    assert after[-1] < after[0], after
    # The trained model through the byte layer: more iterations, lower error, more bytes.
    model.eval()
    image = (held[:4, 0].reshape(4 * 32, 32).numpy() * 255).round().astype(np.uint8)
    errors, sizes = [], []
    for q in (1, 4):
        data = model.encode(image, quality=q)
        sizes.append(len(data))
        errors.append(np.abs(model.decode(data).astype(float) - image).mean())
    assert sizes[0] < sizes[1] and errors[1] < errors[0], (sizes, errors)


# -- cards ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", LEARNED)
def test_card_is_declared_beside_the_class(name):
    """The typed card names the paper, notes only real arguments, and its entry builds."""
    card = codeczoo.get_card(name)
    assert card.name == name and card.paper.arxiv in ("1608.05148", "1904.12271")
    assert card.description.endswith(".") and card.rate and card.intended_use
    arguments = codeczoo.registry.entry_arguments(name)
    assert set(card.argument_notes) <= set(arguments), "a note for an argument that does not exist"
    model = codeczoo.registry.build(name)
    assert model.codec_name == name and model.learned and model.progressive
    assert model.rate_table()[-1]["bpp_raw"] == model.max_iterations * 0.125
    if card.weights is not None:  # the weights' own arguments rebuild their architecture
        trained = codeczoo.load(name)
        assert trained.weights_hash().hex() == card.weights.weights_hash


def test_variants_are_argument_sets_of_one_class():
    small = codeczoo.registry.build("toderici2017-lstm-oneshot-small")
    additive = codeczoo.registry.build("toderici2017-lstm-additive")
    assert type(small) is type(additive) is Toderici2017
    assert additive.gamma == 1.0 and small.gamma == 0.0
    assert small.encoder.stem.out_channels == 16 and additive.encoder.stem.out_channels == 64
    assert small.codec_name == "toderici2017-lstm-oneshot-small"


@pytest.mark.parametrize("name", ["sushmit2019-rnnconv", "toderici2017-lstm-oneshot-small"])
def test_from_state_dict_rebuilds_the_registered_architecture(name):
    """CompressAI's from_state_dict on shipped weights gives exactly the registered model."""
    from safetensors.torch import load_file

    located = codeczoo.registry.current_weights(name)
    cls = codeczoo.registry.codec_class(name)
    model = cls.from_state_dict(load_file(str(located.path)))
    assert model.codec_name == name
    assert model.max_iterations == located.entry.arguments["max_iterations"] == 8
    assert model.weights_hash().hex() == located.entry.weights_hash


def test_quality_holds_in_train_mode():
    model = tiny("sushmit").train()
    model.default_quality = 2
    x = torch.rand(1, 1, 32, 32)
    assert model(x)["residuals"].shape[0] == 2
    assert model(x, iterations=4)["residuals"].shape[0] == 4
    loaded = codeczoo.load("sushmit2019-rnnconv", quality=3).train()
    assert loaded(x)["residuals"].shape[0] == 3
