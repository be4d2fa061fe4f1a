"""The learned entropy stage (codeczoo.entropy): rANS frames, the exact fixed-point context
model, the payload, damaged streams, the shipped models, CompressAI's rate term, training."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

import codeczoo
from codeczoo import bitstream, intensity
from codeczoo.cli import main
from codeczoo.coding import recurrent_payload
from codeczoo.entropy import binary_coder, learned_stage
from codeczoo.entropy.context_model import BinaryContextModel
from codeczoo.entropy.models import add_entry, entries
from codeczoo.errors import BitstreamError, CodecMismatchError, CodeczooError, WeightsError
from codeczoo.io import read_image
from codeczoo.models import Toderici2017

SAMPLE = "codeczoo/samples/chest_1_8bit.png"
RECURRENT = ["sushmit2019-rnnconv", "toderici2017-lstm-oneshot-small"]
TINY = dict(stem_channels=8, encoder_channels=(8, 16, 16), decoder_first_channels=16,
            decoder_channels=(16, 16, 8, 8), code_channels=8, max_iterations=4,
            default_quality=2, tile_size=64)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def skewed_codes(seed: int, shape, p: float = 0.2) -> np.ndarray:
    """Codes with structure a context model can learn nothing from but skew: uint8 {0, 1}."""
    return (np.random.default_rng(seed).random(shape) < p).astype(np.uint8)


def context_model(seed: int = 0, channels: int = 8, iterations: int = 4) -> BinaryContextModel:
    torch.manual_seed(seed)
    return BinaryContextModel(channels, iterations, hidden=16).eval()


@pytest.fixture
def tiny_learned(tmp_path, monkeypatch):
    """A tiny codec with a (random) context model registered for its weights."""
    monkeypatch.setenv("CODECZOO_REGISTRY", str(tmp_path / "registry"))
    torch.manual_seed(0)
    codec = Toderici2017(**TINY).eval()
    add_entry(tmp_path / "registry", codec.codec_name, context_model(),
              codec.weights_hash().hex(), {"note": "test"})
    return codec.configure_coding(entropy="learned")


def learned_only(codec, image: np.ndarray, quality: int) -> bytes:
    """The learned stage's bitstream even where gzip would be smaller (``encode`` writes the
    smaller of the two; the tiny codec's random context model usually loses)."""
    spec = intensity.describe(image, 8, "MONOCHROME2")
    values = intensity.to_unsigned(image, spec)
    codes, (rows, cols), pads, _ = recurrent_payload.tile_codes_and_errors(codec, values, spec,
                                                                           quality)
    payload = recurrent_payload.pack_learned_payload(codec, codes, quality, codec.tile_size,
                                                     rows, cols)
    return codec._container(spec, quality, payload, pads)


def test_frames_round_trip_in_pieces_and_cost_what_the_model_says():
    rng = np.random.default_rng(1)
    bins = rng.integers(0, binary_coder.BINS, 20000)
    bits = (rng.random(20000) < binary_coder.bin_probability_of_one(bins)).astype(np.uint8)
    frame = binary_coder.encode_frame(bits, bins)
    decoder = binary_coder.FrameDecoder(frame, 0, len(bits))
    out = np.concatenate([decoder.read(bins[:7]), decoder.read(bins[7:12000]), decoder.read(bins[12000:])])
    np.testing.assert_array_equal(out, bits)
    assert decoder.end == len(frame)
    ideal = binary_coder.bits_cost(bits, bins) / 8
    assert ideal < len(frame) < 1.01 * ideal + 24
    with pytest.raises(BitstreamError, match="more bits"):
        decoder.read(bins[:1])


def test_empty_and_tiny_frames_round_trip():
    for n in (0, 1, 3):
        frame = binary_coder.encode_frame(np.ones(n, np.uint8), np.full(n, 5))
        assert list(binary_coder.FrameDecoder(frame, 0, n).read(np.full(n, 5))) == [1] * n


def test_context_model_bins_are_exact_across_threads_batches_and_decoding():
    model = context_model(3)
    tiles = [skewed_codes(0, (4, 8, 9, 7)), skewed_codes(1, (4, 8, 9, 7)), skewed_codes(2, (2, 8, 4, 6))]
    torch.set_num_threads(1)
    one = [learned_stage.tile_bins(model, t) for t in tiles]
    torch.set_num_threads(2)
    two = [learned_stage.tile_bins(model, t) for t in tiles]
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    # the decoder batches the two same-shaped tiles and predicts pass by pass: same bins, or
    # the decoded bits would differ
    data = learned_stage.encode_tiles(model, tiles)
    decoded = learned_stage.decode_tiles(model, data, 0, [t.shape for t in tiles])
    for t, d in zip(tiles, decoded):
        np.testing.assert_array_equal(t, (d > 0).astype(np.uint8))


def test_fixed_point_weights_and_activations_are_on_their_grids():
    model = context_model(5)
    x = torch.from_numpy(skewed_codes(3, (4, 1, 8, 6, 6)).astype(np.float64) * 2 - 1)
    inputs = model.context(x, 2, 1, 2)
    first = model.layers[0]
    w, b = first.quantized(torch.float64)
    scaled = w * 2.0 ** first.exponent()
    assert torch.equal(scaled, scaled.round()) and scaled.abs().max() <= 127
    logits = model.logits(inputs)
    assert torch.equal(model.bins(logits), model.exact_bins(inputs))


def test_learned_payload_round_trip_same_reconstruction_as_gzip(tiny_learned, val_image):
    data = learned_only(tiny_learned, val_image, 3)
    header, payload = bitstream.unpack(data)
    assert header.codec_version == "3" and payload[0] == recurrent_payload.LEARNED
    gzip = tiny_learned.configure_coding(entropy="gzip").encode(val_image, 3)  # same network
    np.testing.assert_array_equal(tiny_learned.decode(data), tiny_learned.decode(gzip))


def test_the_encoder_never_writes_more_than_the_gzip_stage(tiny_learned, val_image):
    """A context model that predicts badly (this random one) loses to DEFLATE: ``encode``
    then writes the gzip payload, so ``--entropy learned`` never costs more than the paper's
    stage; the shipped model on a chest X-ray wins and is written."""
    forced = learned_only(tiny_learned, val_image, 3)
    written = tiny_learned.encode(val_image, 3)
    gzip = tiny_learned.configure_coding(entropy="gzip").encode(val_image, 3)
    assert len(forced) > len(gzip) and written == gzip
    image = np.asarray(read_image(SAMPLE).pixels)
    shipped = codeczoo.load("sushmit2019-rnnconv@entropy=learned")
    assert bitstream.unpack(shipped.encode(image, 3))[1][0] == recurrent_payload.LEARNED


def test_damaged_learned_payload_fails_cleanly_or_keeps_the_declared_size(tiny_learned, val_image):
    """Changed bytes with a recomputed CRC: an error, or an image of the header's size; never
    a hang or a read past the stream (the frames are padded with zero words)."""
    header, payload = bitstream.unpack(learned_only(tiny_learned, val_image, 4))
    rng = np.random.default_rng(0)
    decoded = 0
    start = 8 + 8  # after the payload head and the entropy model's hash
    for trial in range(12):
        damaged = bytearray(payload)
        for at in rng.integers(start, len(payload), 1 + trial % 4):
            damaged[at] ^= int(rng.integers(1, 256))
        if trial == 11:
            damaged = damaged[:len(damaged) // 2]  # truncated
        data = bitstream.pack(dataclasses.replace(header, payload_length=len(damaged)),
                              bytes(damaged))
        try:
            out = tiny_learned.decode(data)
        except CodeczooError as exc:
            assert "\n" not in str(exc)
            continue
        decoded += 1
        assert out.shape == val_image.shape and out.dtype == val_image.dtype
    assert decoded  # rANS decodes changed bytes to other bits: images of the declared size


def test_payload_naming_an_unknown_entropy_model_is_refused(tiny_learned, val_image, tmp_path,
                                                            monkeypatch):
    data = learned_only(tiny_learned, val_image, 2)
    fresh = Toderici2017(**TINY)
    fresh.load_state_dict(tiny_learned.state_dict())
    monkeypatch.setenv("CODECZOO_REGISTRY", str(tmp_path / "empty"))
    with pytest.raises(CodecMismatchError, match="learned entropy model"):
        fresh.decode(data)


def test_learned_stage_without_a_model_for_these_weights_is_refused(val_image):
    torch.manual_seed(4)
    codec = Toderici2017(**TINY).eval().configure_coding(entropy="learned")
    with pytest.raises(WeightsError, match="fit-entropy"):
        codec.encode(val_image, 2)
    with pytest.raises(CodeczooError, match="entropy must be"):
        codec.configure_coding(entropy="zstd")


@pytest.mark.parametrize("name", RECURRENT)
def test_shipped_entropy_model_saves_bytes_at_identical_reconstructions(name):
    image = np.asarray(read_image(SAMPLE).pixels)
    gzip = codeczoo.load(name)
    learned = codeczoo.load(f"{name}@entropy=learned")
    assert learned.label == f"{name}@entropy=learned"
    assert entries(name)[0].entry["base_weights_hash"] == gzip.weights_hash().hex()
    for quality in (2, 6):
        a, b = gzip.encode(image, quality), learned.encode(image, quality)
        np.testing.assert_array_equal(codeczoo.decode(a), codeczoo.decode(b))
        assert len(b) < 0.9 * len(a), (quality, len(a), len(b))


def test_compressai_rate_term_reaches_the_encoder():
    from compressai.losses import RateDistortionLoss

    model = codeczoo.load("sushmit2019-rnnconv", entropy="learned").train()
    x = torch.from_numpy(np.asarray(read_image(SAMPLE).pixels)[:64, :64].astype(np.float32) / 255)
    out = model(x[None, None], iterations=2)
    p = out["likelihoods"]["codes"]
    assert p.shape == (1, 2 * 32, 4, 4) and p.requires_grad
    assert 0 < float(p.min()) and float(p.max()) < 1 and float(p.std()) > 0
    loss = RateDistortionLoss(lmbda=0.01)(out, x[None, None])
    model.zero_grad()
    loss["bpp_loss"].backward()
    grads = [q.grad for q in model.encoder.parameters() if q.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    gzip = codeczoo.load("sushmit2019-rnnconv").train()
    flat = gzip(x[None, None], iterations=2)["likelihoods"]["codes"]
    assert torch.all(flat == 0.5) and not flat.requires_grad


def test_fit_entropy_trains_and_registers_a_model(tmp_path, monkeypatch, capsys):
    source = np.asarray(read_image(SAMPLE).pixels)
    train = tmp_path / "data" / "train"
    train.mkdir(parents=True)
    for k in range(3):
        Image.fromarray(source[k * 40:k * 40 + 96, 20:116]).save(train / f"crop{k}.png")
    registry = tmp_path / "registry"
    assert main(["fit-entropy", "--codec", "toderici2017-lstm-oneshot-small", "--data-root",
                 str(tmp_path / "data"), "--train-dir", "train", "--steps", "2", "--hidden", "8",
                 "--cache-dir", str(tmp_path / "cache"),
                 "--registry", str(registry)]) == 0
    assert "bits per code bit" in capsys.readouterr().out
    monkeypatch.setenv("CODECZOO_REGISTRY", str(registry))
    (found,) = entries("toderici2017-lstm-oneshot-small")[:1]
    assert found.root == registry and found.entry["training"]["steps"] == 2
    command = found.entry["training"]["command"]
    assert command.startswith("codeczoo fit-entropy --codec toderici2017-lstm-oneshot-small")
    assert "--steps 2" in command and "--hidden 8" in command
    codec = codeczoo.load("toderici2017-lstm-oneshot-small@entropy=learned")
    assert codec.entropy_model()[1].hex() == found.entry["weights_hash"]
    data = codec.encode(source[:96, :96], 2)
    assert codeczoo.decode(data).shape == (96, 96)


def test_fit_entropy_refuses_a_bad_recipe(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("stpes: 3\n")
    assert main(["fit-entropy", "--codec", "sushmit2019-rnnconv", "--config", str(recipe)]) == 1
    assert "unknown options: stpes" in capsys.readouterr().err
    assert main(["fit-entropy", "--codec", "jpeg2000"]) == 1
    assert "no binary codes to model" in capsys.readouterr().err
