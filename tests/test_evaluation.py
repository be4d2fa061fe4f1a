"""Evaluation tools on real radiographs: eval JSON, BD-rate, plots, bench, paper table, figure, CLI."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import codeczoo
from codeczoo.cli import main
from codeczoo.errors import CodeczooError
from codeczoo.evaluation import bdrate, bench, data, paper_table, plot
from codeczoo.evaluation.evaluate import evaluate, write_results
from codeczoo.evaluation.figure import closest_quality, comparison_figure
from codeczoo.io import read_image

SAMPLES = Path(__file__).resolve().parent.parent / "codeczoo" / "samples"

# ---------------------------------------------------------------------------- BD-rate
ANCHOR_R = [0.125, 0.25, 0.5, 1.0, 2.0]
ANCHOR_Q = [28.1, 31.0, 34.2, 37.9, 41.5]


@pytest.mark.parametrize("method", bdrate.METHODS)
def test_bd_rate_identical_double_half(method):
    assert bdrate.bd_rate(ANCHOR_R, ANCHOR_Q, ANCHOR_R, ANCHOR_Q, method) == pytest.approx(0, abs=1e-9)
    double = [2 * r for r in ANCHOR_R]
    half = [r / 2 for r in ANCHOR_R]
    assert bdrate.bd_rate(ANCHOR_R, ANCHOR_Q, double, ANCHOR_Q, method) == pytest.approx(100, abs=1e-6)
    assert bdrate.bd_rate(ANCHOR_R, ANCHOR_Q, half, ANCHOR_Q, method) == pytest.approx(-50, abs=1e-6)
    shifted = [q + 0.5 for q in ANCHOR_Q]
    assert bdrate.bd_psnr(ANCHOR_R, ANCHOR_Q, ANCHOR_R, shifted, method) == pytest.approx(0.5, abs=1e-6)


def test_bd_rate_cubic_matches_vceg_formula():
    """The classic VCEG-M33 computation written out with np.polyfit / np.polyint."""
    test_r = [0.14, 0.26, 0.55, 1.02, 1.9]
    test_q = [28.4, 31.2, 34.6, 37.8, 41.2]
    lo, hi = max(min(ANCHOR_Q), min(test_q)), min(max(ANCHOR_Q), max(test_q))
    ia = np.polyint(np.polyfit(ANCHOR_Q, np.log(ANCHOR_R), 3))
    it = np.polyint(np.polyfit(test_q, np.log(test_r), 3))
    diff = ((np.polyval(it, hi) - np.polyval(it, lo)) - (np.polyval(ia, hi) - np.polyval(ia, lo))) / (hi - lo)
    expected = (math.exp(diff) - 1) * 100
    got = bdrate.bd_rate(ANCHOR_R, ANCHOR_Q, test_r, test_q, "cubic")
    assert got == pytest.approx(expected, abs=1e-6)
    # pchip is a different interpolation but must agree in sign and rough size here
    assert bdrate.bd_rate(ANCHOR_R, ANCHOR_Q, test_r, test_q) == pytest.approx(expected, abs=3)


def test_quality_at_rates_interpolates_and_never_extrapolates():
    got = bdrate.quality_at_rates(ANCHOR_R, ANCHOR_Q, [0.25, 0.35, 0.05, 3.0])
    assert got[0] == pytest.approx(31.0)  # through every measured point
    assert 31.0 < got[1] < 34.2 and got[2] is None and got[3] is None
    # a curve needing twice the rate has, at rate 2r, the anchor's quality at r
    doubled = bdrate.quality_at_rates([2 * r for r in ANCHOR_R], ANCHOR_Q, [0.7])
    assert doubled[0] == pytest.approx(bdrate.quality_at_rates(ANCHOR_R, ANCHOR_Q, [0.35])[0])
    assert bdrate.quality_at_rates([0.5], [30.0], [0.5]) == [None]


def test_overlap_of_quality_spans():
    assert bdrate.overlap([30, 40], [30, 40]) == 1.0
    assert bdrate.overlap([30, 40], [38, 48]) == pytest.approx(2 / 18)
    assert bdrate.overlap([30, 40], [41, 48]) == 0.0
    assert bdrate.overlap([30, None, float("inf")], [30, 40]) == 0.0  # one finite point: no span


def test_bd_rate_refuses_what_it_cannot_compare():
    with pytest.raises(bdrate.BDRateError, match="needs 4"):
        bdrate.bd_rate(ANCHOR_R[:3], ANCHOR_Q[:3], ANCHOR_R, ANCHOR_Q, "cubic")
    with pytest.raises(bdrate.BDRateError, match="share no quality"):
        bdrate.bd_rate(ANCHOR_R, ANCHOR_Q, ANCHOR_R, [q + 20 for q in ANCHOR_Q])
    # lossless points (inf) and missing values are dropped, not propagated
    assert bdrate.bd_rate(ANCHOR_R + [4.0], ANCHOR_Q + [math.inf], ANCHOR_R + [5.0],
                          ANCHOR_Q + [None]) == pytest.approx(0, abs=1e-9)


# ---------------------------------------------------------------------------- real crops
@pytest.fixture(scope="module")
def val_crops(cxr_val_images):
    """Three 192 x 192 crops (large enough for MS-SSIM) of real validation chest X-rays."""
    out = []
    for path in cxr_val_images[:3]:
        image = read_image(path)
        h, w = image.pixels.shape
        pixels = np.ascontiguousarray(image.pixels[h // 2 - 96:h // 2 + 96, w // 2 - 96:w // 2 + 96])
        out.append(data.Sample(path.name, pixels, image.bits_stored, image.photometric))
    return out


@pytest.fixture(scope="module")
def crop_folder(val_crops, tmp_path_factory):
    folder = tmp_path_factory.mktemp("crops")
    for sample in val_crops:
        Image.fromarray(sample.pixels).save(folder / sample.name)
    return folder


@pytest.fixture(scope="module")
def j2k_result(val_crops, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bitstreams")
    result = evaluate("jpeg2000", val_crops, [1, 8, 32], per_image=True,
                               save_bitstreams=folder)
    return result, folder


def test_eval_jpeg2000_on_real_crops(j2k_result):
    result, _ = j2k_result
    r = result["results"]
    assert result["name"] == "jpeg2000" and result["quality"] == [1, 8, 32]
    assert result["bit_depth"] == 8 and result["dataset"]["images"] == 3
    assert r["psnr"][0] is None  # lossless: infinite PSNR, written as null
    assert r["ssim"][0] == pytest.approx(1.0, abs=1e-6)
    assert r["bpp"][0] > r["bpp"][1] > r["bpp"][2] > 0
    assert r["psnr"][1] > r["psnr"][2] > 25
    assert 1.0 > r["ms-ssim"][1] > r["ms-ssim"][2] > 0.5
    assert r["psnr-rgb"] == r["psnr"] and r["ms-ssim-rgb"] == r["ms-ssim"]
    # the container costs a few dozen bytes on top of the codestream
    assert all(b > p for b, p in zip(r["bpp"], r["payload_bpp"]))
    assert result["codec"]["lossless_qualities"] == [1]
    json.dumps(result, allow_nan=False)  # strict JSON


def test_eval_bpp_is_file_size_on_disk(j2k_result, val_crops):
    result, folder = j2k_result
    files = sorted(folder.glob("*.czoo"))
    assert len(files) == 9
    for row in result["per_image"]:
        index = next(i for i, s in enumerate(val_crops) if s.name == row["image"])
        path = folder / f"{index:04d}_{Path(row['image']).stem}_q{row['quality']}.czoo"
        assert row["bpp"] == os.path.getsize(path) * 8 / row["pixels"]
        restored = codeczoo.decode(path.read_bytes())
        assert restored.shape == val_crops[index].pixels.shape
    # the per-quality mean is the mean of the per-image values
    eights = [row["bpp"] for row in result["per_image"] if row["quality"] == 8]
    assert result["results"]["bpp"][1] == pytest.approx(np.mean(eights))


def test_eval_json_loads_in_compressai_plot(j2k_result, tmp_path):
    from compressai.utils.plot.__main__ import main as plot_main, parse_json_file

    result, _ = j2k_result
    path = write_results(result, tmp_path / "jpeg2000.json")
    for metric in ("psnr", "ms-ssim"):
        parsed = parse_json_file(path, metric)
        assert parsed["name"] == "jpeg2000"
        assert list(parsed["xs"]) == result["results"]["bpp"]
    out = tmp_path / "compressai_rd.png"
    lossy = dict(result, results={k: v[1:] for k, v in result["results"].items()})
    write_results(lossy, tmp_path / "lossy.json")
    plot_main(["-f", str(tmp_path / "lossy.json"), "-o", str(out)])
    assert out.stat().st_size > 1000


def test_rd_plot_and_bench_table(j2k_result, tmp_path):
    result, _ = j2k_result
    png = plot.rd_plot([result], tmp_path / "rd.png", title="test")
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 500
    # a fabricated "codec" needing exactly twice JPEG 2000's rate: BD-rate +100 %
    lossy = {k: v[1:] for k, v in result["results"].items()}
    anchor = dict(result, results=lossy)
    worse = dict(result, name="worse", results=dict(lossy, bpp=[2 * b for b in lossy["bpp"]]))
    bd = bench.bd_rates_against(anchor, worse)
    assert bd["psnr"] == pytest.approx(100, abs=1e-6) and bd["ms-ssim"] == pytest.approx(100, abs=1e-6)
    table = bench.markdown_table({"worse": worse, "jpeg2000": anchor}, {"worse": bd},
                                 "codeczoo bench X", "somewhere", "pchip")
    assert "| worse |" in table and "+100.0 %" in table and "`codeczoo bench X`" in table
    # PSNR at matched bpp: the curve needing twice the rate has at 2r what JPEG 2000 has at r
    r = sorted(lossy["bpp"])[len(lossy["bpp"]) // 2]
    worse_at = bench.psnr_at_rates({"worse": worse}, [2 * r])["worse"][0]
    assert worse_at == pytest.approx(bench.psnr_at_rates({"a": anchor}, [r])["a"][0])
    assert "PSNR [dB] at matched bpp" in table and "| 0.5 bpp |" in table


@pytest.mark.slow
def test_bench_on_folder(crop_folder, tmp_path):
    report = bench.run_bench(crop_folder, ["jpeg2000"], tmp_path / "bench",
                             {"jpeg2000": [4, 16, 64]}, progress=False)
    names = sorted(p.name for p in (tmp_path / "bench").iterdir())
    assert names == ["bd_rates.json", "jpeg2000.json", "rd.png", "table.md"]
    assert "anchor" in report.table and str(crop_folder) in report.table
    with pytest.raises(CodeczooError, match="unknown codec"):
        bench.run_bench(crop_folder, ["no-such-codec"], tmp_path / "b2")


@pytest.mark.slow
def test_bench_shows_what_each_byte_stage_buys(crop_folder, tmp_path):
    """Rows NAME, NAME@entropy=learned and NAME@...@rate_control=psnr beside JPEG 2000: the
    learned stage codes the same codes (same PSNR) in fewer bytes; every row gets its BD-rate
    entry against the anchor and its own JSON."""
    name = "sushmit2019-rnnconv"
    rows = [name, f"{name}@entropy=learned", f"{name}@entropy=learned@rate_control=psnr"]
    report = bench.run_bench(crop_folder, rows, tmp_path / "bench",
                             {name: [1, 3], rows[1]: [1, 3], rows[2]: [29, 31],
                              "jpeg2000": [16, 32, 64, 128]}, limit=1, progress=False)
    gzip, learned = report.results[name]["results"], report.results[rows[1]]["results"]
    assert gzip["psnr"] == learned["psnr"]
    assert all(b < a for a, b in zip(gzip["bpp"], learned["bpp"]))
    assert set(report.bd_rates) == set(rows)
    assert all(f"{row}.json" in {p.name for p in report.files} for row in rows)
    assert all(row in report.table for row in rows)
    coding = report.results[rows[2]]["codec"]["coding"]
    assert (coding["entropy"], coding["rate_control"]) == ("learned", "psnr")


# ---------------------------------------------------------------------------- paper table
def test_crop_sampling_is_reproducible(cxr_val_images):
    a = paper_table.sample_crops(cxr_val_images[:4], 32, 6, seed=3)
    b = paper_table.sample_crops(cxr_val_images[:4], 32, 6, seed=3)
    c = paper_table.sample_crops(cxr_val_images[:4], 32, 6, seed=4)
    assert [s.name for s in a] == [s.name for s in b] and [s.name for s in a] != [s.name for s in c]
    assert all(s.pixels.shape == (32, 32) and s.pixels.min() < s.pixels.max() for s in a)
    assert all(np.array_equal(x.pixels, y.pixels) for x, y in zip(a, b))


def test_paper_ratio_from_real_latents():
    model = codeczoo.load("toderici2017-lstm-oneshot-small")
    per_pixel_bits = model.code_channels / model.downsampling ** 2
    assert paper_table.paper_ratio(model, 32, 1) == pytest.approx(1 / per_pixel_bits)
    choice = paper_table.choose_quality(model, 32, 1 / (2 * per_pixel_bits))
    assert choice.quality == 2 and choice.exact
    j2k = codeczoo.load("jpeg2000")
    assert paper_table.choose_quality(j2k, 32, 8).quality == 8


def test_paper_table_jpeg2000_counts_headers(cxr_val_images):
    table, rows = paper_table.paper_table(cxr_val_images[:3], sizes=[32], ratios=[8], crops=4,
                                          codecs=["jpeg2000"], pretrained=False)
    (row,) = rows
    # the .jp2 file carries boxes on top of the codestream: a lower real ratio
    assert row.real_ratio("jp2") < row.real_ratio("payload")
    assert row.real_ratio("container") < row.real_ratio("payload")
    assert row.real_ratio("payload") < 8  # OpenJPEG cannot reach 128 bytes on a 32 x 32 crop
    assert "24.86" in table and "0.941" in table  # the published JPEG 2000 numbers beside ours
    assert f"{row.psnr:.2f}" in table


# ---------------------------------------------------------------------------- figure
def test_figure_matches_bpp(tmp_path):
    sample = data.read_sample(SAMPLES / "chest_2_8bit.png")
    j2k = codeczoo.load("jpeg2000")
    quality, rate, restored = closest_quality(j2k, sample, 0.5)
    assert abs(rate - 0.5) < 0.1 and restored.shape == sample.pixels.shape
    out, panels = comparison_figure(SAMPLES / "chest_2_8bit.png", tmp_path / "fig.png",
                                    ["jpeg2000"], 0.5, region=(64, 64, 128, 128))
    assert panels[0].bpp == pytest.approx(0.5, abs=0.15) and math.isfinite(panels[0].psnr)
    with Image.open(out) as im:
        assert im.format == "PNG"


# ---------------------------------------------------------------------------- command line
def test_cli_eval_writes_results(crop_folder, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["eval", str(crop_folder), "--codec", "jpeg2000", "--quality", "8,16",
                 "-o", str(out), "--limit", "2"]) == 0
    result = json.loads(out.read_text())
    assert result["quality"] == [8, 16] and result["dataset"]["images"] == 2
    assert "jpeg2000" in capsys.readouterr().out
    assert main(["eval", str(crop_folder), "--codec", "jpeg2000", "--quality", "8", "-o", str(out)]) == 1
    assert "exists" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["eval", "/no/such/folder", "--codec", "jpeg2000"], "not found"),
    (["eval", "{empty}", "--codec", "jpeg2000"], "no images"),
    (["eval", "{folder}", "--codec", "no-such-codec"], "unknown codec"),
    (["eval", "{folder}", "--codec", "jpeg2000", "--quality", "0"], "not supported"),
    (["eval", "{folder}", "--codec", "jpeg2000", "--quality", "4,x"], "integers"),
    (["bench", "{folder}", "--codecs", "nope", "-o", "{tmp}/b"], "unknown codec"),
    (["figure", "{folder}/" + "x.png", "-o", "{tmp}/f.png"], "not found"),
    (["paper-table", "{folder}", "--sizes", "30", "--codecs", "jpeg2000"], "multiple of 16"),
])
def test_cli_errors_are_one_line(args, message, crop_folder, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    args = [a.format(folder=crop_folder, empty=tmp_path / "empty", tmp=tmp_path) for a in args]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("codeczoo: error:") and message in err and "\n" not in err


def test_cli_figure_refuses_to_overwrite_input(crop_folder, capsys):
    image = next(crop_folder.glob("*.png"))
    before = image.read_bytes()
    assert main(["figure", str(image), "-o", str(image), "--codecs", "jpeg2000"]) == 1
    assert "input image" in capsys.readouterr().err
    assert image.read_bytes() == before


def test_eval_untrained_learned_codec_is_labelled(val_crops):
    crop = data.Sample("c", np.ascontiguousarray(val_crops[0].pixels[:64, :64]), 8)
    result = evaluate("toderici2017-lstm-oneshot-small", [crop], [1, 2], pretrained=False)
    assert result["name"] == "toderici2017-lstm-oneshot-small (untrained)"
    assert result["codec"]["learned"] and result["codec"]["pretrained"] is False
    bpp = result["results"]["bpp"]
    assert bpp[1] > bpp[0] > 0
    # 64 px: too small for MS-SSIM's 5 scales, so not written (nulls would crash CompressAI's plot)
    assert "ms-ssim" not in result["results"] and "ms-ssim-rgb" not in result["results"]
    assert result["results"]["psnr-rgb"] == result["results"]["psnr"]


def test_small_image_eval_json_plots_in_compressai(val_crops, tmp_path):
    """``python -m compressai.utils.plot`` on eval JSON of images under 176 px: PSNR plots,
    MS-SSIM is reported as not available instead of crashing."""
    from compressai.utils.plot.__main__ import main as plot_main

    crops = [data.Sample(f"c{i}", np.ascontiguousarray(s.pixels[:96, :96]), 8)
             for i, s in enumerate(val_crops[:2])]
    path = write_results(evaluate("jpeg2000", crops, [4, 8, 16]), tmp_path / "small.json")
    plot_main(["-f", str(path), "-o", str(tmp_path / "psnr.png")])
    assert (tmp_path / "psnr.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="not available"):
        plot_main(["-f", str(path), "-m", "ms-ssim", "-o", str(tmp_path / "msssim.png")])
