"""Spatially adaptive iterations (codeczoo.coding.adaptive): the allocation, PSNR targets met
on real X-rays, the iteration map on the wire, damaged maps, the command line, the residual
layer over an adaptive base."""

from __future__ import annotations

import dataclasses
import itertools
import warnings

import numpy as np
import pytest

import codeczoo
from codeczoo import bitstream
from codeczoo.cli import main
from codeczoo.coding import recurrent_payload
from codeczoo.coding.adaptive import (UnreachableTargetWarning, choose_iterations,
                                      target_squared_error)
from codeczoo.errors import BitstreamError, CodeczooError
from codeczoo.intensity import describe
from codeczoo.io import read_image

SAMPLE = "codeczoo/samples/chest_1_8bit.png"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def psnr(a: np.ndarray, b: np.ndarray, bits: int = 8) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(((1 << bits) - 1) ** 2 / mse)


def test_allocation_meets_the_target_near_the_cheapest_choice():
    rng = np.random.default_rng(0)
    for trial in range(20):
        tiles, t = 4, 4
        errors = [np.sort(rng.random(t) * 100)[::-1] for _ in range(tiles)]
        costs = [rng.random(t) * 10 + 1 for _ in range(tiles)]
        target = float(rng.uniform(sum(e[-1] for e in errors), sum(e[0] for e in errors)))
        counts = choose_iterations(errors, costs, target)
        assert sum(e[n - 1] for e, n in zip(errors, counts)) <= target
        cost = sum(c[:n].sum() for c, n in zip(costs, counts))
        cheapest = min(sum(c[:n].sum() for c, n in zip(costs, combo))
                       for combo in itertools.product(range(1, t + 1), repeat=tiles)
                       if sum(e[n - 1] for e, n in zip(errors, combo)) <= target)
        assert cost <= 1.6 * cheapest  # greedy on each tile's convex hull: near the optimum
    # an unreachable target codes everything; a loose one stops after the first iteration
    assert choose_iterations(errors, costs, 0.0) == [t] * tiles
    assert choose_iterations(errors, costs, 1e9) == [1] * tiles


def test_target_squared_error_uses_the_bit_depth():
    spec8, spec12 = describe(np.zeros((10, 10), np.uint8)), describe(np.zeros((10, 10), np.uint16), 12)
    assert target_squared_error(40, spec8) == pytest.approx(100 * 255 ** 2 / 1e4)
    assert target_squared_error(40, spec12) == pytest.approx(100 * 4095 ** 2 / 1e4)


@pytest.mark.parametrize("entropy", ["gzip", "learned"])
def test_psnr_target_is_met_with_a_varying_iteration_map(cxr_val_images, entropy):
    image = np.asarray(read_image(cxr_val_images[1]).pixels)[:384, :512]
    codec = codeczoo.load(f"sushmit2019-rnnconv@rate_control=psnr@entropy={entropy}")
    assert codec.qualities == codec.psnr_targets and codec.default_quality == 40
    for target in (36, 38):
        data = codec.encode(image, target)
        header, payload = bitstream.unpack(data)
        assert header.quality == target and payload[0] & recurrent_payload.ADAPTIVE
        head = 8 + (8 if entropy == "learned" else 0)
        counts = list(payload[head:head + 12])  # 3x4 tiles of 128 px
        assert len(set(counts)) > 1 and max(counts) == payload[1]
        assert psnr(image, codeczoo.decode(data)) >= target - 0.02


def test_adaptive_spends_fewer_bits_than_uniform_for_the_same_quality(cxr_val_images):
    image = np.asarray(read_image(cxr_val_images[2]).pixels)[:512, :512]
    uniform = codeczoo.load("sushmit2019-rnnconv")
    data = uniform.encode(image, 4)
    reached = psnr(image, codeczoo.decode(data))
    adaptive = codeczoo.load("sushmit2019-rnnconv@rate_control=psnr")
    smaller = adaptive.encode(image, int(np.floor(reached)))
    assert psnr(image, codeczoo.decode(smaller)) >= np.floor(reached) - 0.02
    assert len(smaller) < len(data)


def test_an_unreachable_target_is_reported(cxr_val_images):
    image = np.asarray(read_image(cxr_val_images[1]).pixels)[:128, :128]
    codec = codeczoo.load("sushmit2019-rnnconv@rate_control=psnr")
    with pytest.warns(UnreachableTargetWarning, match="out of reach.* dB\\)"):
        data = codec.encode(image, 60)
    assert set(bitstream.unpack(data)[1][8:9]) == {codec.max_iterations}


def test_damaged_iteration_maps_are_refused():
    image = np.asarray(read_image(SAMPLE).pixels)
    codec = codeczoo.load("sushmit2019-rnnconv@rate_control=psnr")
    header, payload = bitstream.unpack(codec.encode(image, 36))
    for at, value in ((8, 0), (8, payload[1] + 1), (1, 9)):
        damaged = bytearray(payload)
        damaged[at] = value
        with pytest.raises(BitstreamError):
            codec.decode(bitstream.pack(header, bytes(damaged)))
    bad_target = dataclasses.replace(header, quality=5)  # a uniform quality on an adaptive map
    with pytest.raises(BitstreamError, match="PSNR target"):
        codec.decode(bitstream.pack(bad_target, payload))


def test_compress_psnr_and_entropy_on_the_command_line(tmp_path, capsys):
    out = tmp_path / "x.czoo"
    assert main(["compress", SAMPLE, "-o", str(out), "--codec", "sushmit2019-rnnconv",
                 "--psnr", "35", "--entropy", "learned"]) == 0
    assert "sushmit2019-rnnconv@entropy=learned@rate_control=psnr, quality 35" in capsys.readouterr().out
    assert main(["decompress", str(out), "-o", str(tmp_path / "x.png")]) == 0
    image = np.asarray(read_image(SAMPLE).pixels)
    assert psnr(image, np.asarray(read_image(tmp_path / "x.png").pixels)) >= 34.98
    assert main(["compress", SAMPLE, "-o", str(tmp_path / "j.czoo"), "--codec", "jpeg2000",
                 "--entropy", "learned"]) == 1
    err = capsys.readouterr().err
    assert "jpeg2000 has no coding options" in err and len(err.strip().splitlines()) == 1
    assert main(["compress", SAMPLE, "-o", str(tmp_path / "k.czoo"), "--codec",
                 "sushmit2019-rnnconv", "--psnr", "35", "--quality", "3"]) == 1
    assert not (tmp_path / "j.czoo").exists() and not (tmp_path / "k.czoo").exists()


def test_residual_bound_over_an_adaptive_base():
    image = np.asarray(read_image(SAMPLE).pixels)
    data = codeczoo.encode(image, "sushmit2019-rnnconv@rate_control=psnr", 34, max_error=2)
    assert np.abs(codeczoo.decode(data).astype(int) - image).max() <= 2


def test_codec_specs_are_checked():
    with pytest.raises(CodeczooError, match="NAME@option=value"):
        codeczoo.load("sushmit2019-rnnconv@learned")
    with pytest.raises(CodeczooError, match="rate_control must be"):
        codeczoo.load("sushmit2019-rnnconv@rate_control=bpp")
    with pytest.raises(CodeczooError, match="quality 5 not supported"):
        codeczoo.load("sushmit2019-rnnconv@rate_control=psnr").encode(
            np.zeros((32, 32), np.uint8), 5)


def test_batched_adaptive_learned_coding_meets_each_target(cxr_val_images):
    images = [np.asarray(read_image(p).pixels)[:256, :384] for p in cxr_val_images[3:5]]
    codec = codeczoo.load("toderici2017-lstm-oneshot-small@entropy=learned@rate_control=psnr")
    with warnings.catch_warnings():  # the target must be reachable on both crops
        warnings.simplefilter("error", UnreachableTargetWarning)
        datas = codec.encode_batch(images, 32)
    singles = [codec.encode(image, 32) for image in images]
    assert datas == singles  # batching changes nothing in the bytes
    for image, data, back in zip(images, datas, codec.decode_batch(datas)):
        assert psnr(image, back) >= 31.98
        assert bitstream.unpack(data)[1][0] == recurrent_payload.LEARNED | recurrent_payload.ADAPTIVE


def test_an_unreachable_target_is_one_warning_line_on_the_command_line(tmp_path, capsys):
    out = tmp_path / "x.czoo"
    assert main(["compress", SAMPLE, "-o", str(out), "--codec", "sushmit2019-rnnconv",
                 "--psnr", "99"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("codeczoo: warning: ") and "out of reach" in err[0]
    assert codeczoo.decode(out.read_bytes()).shape == read_image(SAMPLE).pixels.shape
