"""Lightning training: recipes, data module, losses, DDP, kill-and-resume, export.

Everything runs on the CPU with the real chest X-rays of ../shared/data and small settings
(few images, tiny crops, one or two recurrent iterations) so the file stays within ~2-3 minutes.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import codeczoo
from codeczoo.cli import main
from codeczoo.errors import CodeczooError
from codeczoo.registry import file_sha256
from codeczoo.training.cli import run_lightning_cli
from codeczoo.training.data import (FixedCropDataset, RandomCropDataset, XrayDataModule,
                                    load_image, read_patient_map, split_by_patient)
from codeczoo.training.export import (export_checkpoint, model_from_checkpoint, read_checkpoint,
                                      training_history)
from codeczoo.training.losses import RateDistortionLoss, RecurrentResidualLoss
from codeczoo.training.module import CodecModule

REPO = Path(__file__).resolve().parent.parent
# recipes of the recurrent codecs (the residual layer's recipe has its own test in test_residual.py)
RECIPES = sorted(p for p in (REPO / "recipes").glob("*/*.yaml") if p.parent.name != "residual")
SMALL = REPO / "recipes" / "toderici2017-lstm-oneshot-small" / "cxr-32.yaml"
# one recurrent iteration, four images, 2-crop batches: a step takes well under a second
TINY_DATA = ["--data.limit_images", "4", "--data.batch_size", "2", "--data.crops_per_image", "4",
             "--data.val_crop_size", "32", "--data.val_crops_per_image", "1",
             "--data.num_workers", "0", "--trainer.enable_progress_bar", "false",
             "--trainer.enable_model_summary", "false"]
ONE_ITERATION = ["--model.codec_args", '{"max_iterations": 1, "default_quality": 1}',
                 "--model.val_qualities", "[1]"]


def _env(**extra) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "tests"), **extra)
    return env


# -- losses -------------------------------------------------------------------------------------
def test_residual_loss_sums_iterations_l1_and_l2():
    residuals = torch.tensor([1.0, -3.0]).view(2, 1, 1, 1, 1).expand(2, 2, 1, 2, 2)
    assert RecurrentResidualLoss(1)({"residuals": residuals})["loss"].item() == pytest.approx(4.0)
    assert RecurrentResidualLoss(2)({"residuals": residuals})["loss"].item() == pytest.approx(10.0)
    with pytest.raises(ValueError):
        RecurrentResidualLoss(3)


def test_rate_distortion_loss_matches_compressai_convention():
    x = torch.zeros(2, 1, 4, 4)
    out = {"x_hat": torch.full_like(x, 0.1), "likelihoods": {"y": torch.full((2, 3, 2, 2), 0.5)}}
    losses = RateDistortionLoss(lmbda=0.01)(out, x)
    bpp = 2 * 3 * 2 * 2 / (2 * 4 * 4)  # one bit per latent element
    assert losses["bpp"].item() == pytest.approx(bpp)
    assert losses["loss"].item() == pytest.approx(0.01 * 255 ** 2 * 0.01 + bpp, rel=1e-5)


# -- data ---------------------------------------------------------------------------------------
def test_patient_exclusive_split_of_one_folder(cxr_dir):
    paths = sorted((cxr_dir / "train").glob("*.png"))
    mapping = read_patient_map([cxr_dir / "mhh_train.csv"])
    parts = split_by_patient(paths, mapping, (0.7, 0.15, 0.15), seed=3)
    patients = [{mapping[p.stem] for p in part} for part in parts]
    assert all(patients), "every split must hold at least one patient"
    assert not (patients[0] & patients[1] or patients[0] & patients[2] or patients[1] & patients[2])
    assert sorted(p for part in parts for p in part) == paths
    assert 0.5 < len(parts[0]) / len(paths) < 0.85
    assert split_by_patient(paths, mapping, (0.7, 0.15, 0.15), seed=3) == parts
    assert split_by_patient(paths, mapping, (0.7, 0.15, 0.15), seed=4) != parts


def test_datamodule_split_mode_and_exclusivity_check(cxr_dir, data_dir):
    dm = XrayDataModule(data_root=str(data_dir), split_dir="cxr/train",
                        patients_csv="cxr/mhh_train.csv", split_fractions=(0.6, 0.2, 0.2))
    splits = dm.resolve_splits()
    assert sum(len(v) for v in splits.values()) == 170
    given = XrayDataModule(data_root=str(data_dir),
                           patients_csv=["cxr/mhh_train.csv", "cxr/mhh_val.csv"])
    assert len(given.resolve_splits()["val"]) == 20  # the shared folders are patient-exclusive
    leaky = XrayDataModule(data_root=str(data_dir), train_dir="cxr/train", val_dir="cxr/train",
                           patients_csv="cxr/mhh_train.csv")
    with pytest.raises(CodeczooError, match="not patient-exclusive"):
        leaky.resolve_splits()
    with pytest.raises(CodeczooError, match="no patient"):
        XrayDataModule(data_root=str(data_dir), split_dir="cxr/val",
                       patients_csv="cxr/mhh_train.csv").resolve_splits()


def test_crops_are_seeded_normalised_and_worker_independent(cxr_train_images):
    images = [load_image(p) for p in cxr_train_images[:3]]
    a = RandomCropDataset(images, 32, 4, seed=7)
    b = RandomCropDataset(images, 32, 4, seed=7)
    crops = torch.stack([a[i] for i in range(len(a))])
    assert crops.shape == (12, 1, 32, 32) and 0.0 <= crops.min() and crops.max() <= 1.0
    assert torch.allclose(crops * 255, (crops * 255).round(), atol=1e-4)  # 8-bit PNG / 255
    assert torch.equal(crops, torch.stack([b[i] for i in range(len(b))]))
    b.set_epoch(1)
    assert not torch.equal(crops, torch.stack([b[i] for i in range(len(b))]))
    serial = torch.cat(list(torch.utils.data.DataLoader(a, batch_size=4, num_workers=0)))
    parallel = torch.cat(list(torch.utils.data.DataLoader(a, batch_size=4, num_workers=2)))
    assert torch.equal(serial, parallel)
    val1, val2 = FixedCropDataset(images, 64, 2, seed=0), FixedCropDataset(images, 64, 2, seed=0)
    assert all(torch.equal(val1[i], val2[i]) for i in range(len(val1)))


def test_crops_cut_on_the_device_equal_the_host_crops(cxr_train_images, dicom_dir):
    from codeczoo.training.data import CropPositionDataset
    from codeczoo.training.device_crops import ImageStack

    # 8-bit PNGs (uint8 stack) and a 10-bit DICOM beside them (int32 stack, own scale)
    images = [load_image(p) for p in cxr_train_images[:2]] + [load_image(dicom_dir / "RG3_UNCR.dcm")]
    host = RandomCropDataset(images, 48, 6, seed=3, hflip=True, vflip=True)
    positions = CropPositionDataset(images, 48, 6, seed=3, hflip=True, vflip=True)
    stack = ImageStack(images)
    for epoch in (0, 5):
        host.set_epoch(epoch)
        positions.set_epoch(epoch)
        batch = torch.stack([positions[i] for i in range(len(positions))])
        assert batch.dtype == torch.int64 and batch[:, 3:].any()  # some flips drawn
        expected = torch.stack([host[i] for i in range(len(host))])
        assert torch.equal(stack.crops(batch, 48), expected)  # bit for bit


def test_datamodule_crops_on_device_through_the_transfer_hook(data_dir):
    on = XrayDataModule(data_root=str(data_dir), limit_images=3, crop_size=32, crops_per_image=4,
                        batch_size=4, crops_on_device=True)
    off = XrayDataModule(data_root=str(data_dir), limit_images=3, crop_size=32, crops_per_image=4,
                         batch_size=4)
    for dm in (on, off):
        dm.setup("fit")
        dm.set_epoch(2)
    for a, b in zip(on.train_dataloader(), off.train_dataloader()):
        assert a.shape == (4, 5)
        assert torch.equal(on.on_after_batch_transfer(a, 0), b)
    val = next(iter(on.val_dataloader()))  # validation crops stay host crops
    assert torch.equal(on.on_after_batch_transfer(val, 0), val)


def test_dicom_intensities_normalised_by_bit_depth(dicom_dir):
    image = load_image(dicom_dir / "RG3_UNCR.dcm")  # 10 bits stored
    assert image.bits_stored == 10 and int(image.values.max()) <= 1023
    crop = FixedCropDataset([image], 256, 1)[0]
    assert crop.max() <= 1.0 and crop.max() > 4 / 255  # not divided by 65535


# -- recipes and the command line ---------------------------------------------------------------
#: recipes whose fast_dev_run took over 3 s on the 2-core CPU (measured with pytest --durations)
SLOW_RECIPES = {"toderici2017-lstm-oneshot/cxr-32", "sushmit2019-rnnconv/cxr-32",
                "sushmit2019-rnnconv/cxr-64-cpu", "toderici2017-lstm-oneshot-small/cxr-32"}


def _recipe_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def _recipe_codec(recipe: Path) -> str:
    import yaml

    return yaml.safe_load(recipe.read_text())["model"]["init_args"]["codec"]


@pytest.mark.parametrize("recipe", [
    pytest.param(r, marks=pytest.mark.slow) if _recipe_id(r) in SLOW_RECIPES else r
    for r in RECIPES], ids=_recipe_id)
def test_every_recipe_fast_dev_run(recipe, tmp_path, data_dir):
    progressive = codeczoo.registry.codec_class(_recipe_codec(recipe)).progressive
    rates = (["--model.train_iterations", "2", "--model.val_qualities", "[1, 2]"] if progressive
             # rate-distortion codecs: one quality per network; crops a multiple of 64
             else ["--model.codec_args", "{quality: 2}", "--data.crop_size", "64",
                   "--data.val_crop_size", "64"])
    # GPU recipes run here on the CPU, in their precision, without compiling (minutes on a CPU;
    # the compiled step has its own slow test in test_throughput.py)
    on_cpu = (["--trainer.accelerator", "cpu", "--model.compile", "null"]
              if "accelerator: gpu" in recipe.read_text() else [])
    cli = run_lightning_cli(
        ["fit", "--config", str(recipe), "--trainer.fast_dev_run", "1",
         "--trainer.default_root_dir", str(tmp_path), "--data.data_root", str(data_dir)]
        + TINY_DATA + rates + on_cpu)  # rates after TINY_DATA: their crop sizes win
    trainer = cli.trainer
    assert trainer.global_step == 1
    metrics = trainer.callback_metrics
    if not progressive:
        assert cli.model.lmbda == 0.0035 and cli.model.model.quality == 2  # CompressAI's q2
        assert math.isfinite(float(metrics["val/psnr"])) and float(metrics["val/bpp_est"]) > 0
        return
    assert math.isfinite(float(metrics["val/psnr_q2"])) and 0 < float(metrics["val/ssim_q2"]) <= 1
    assert float(metrics["val/bpp_q2"]) > float(metrics["val/bpp_q1"]) > 0  # real bytes


def test_cli_main_fit_and_one_line_config_errors(tmp_path, data_dir, capsys):
    assert main(["fit", "--config", str(SMALL), "--trainer.fast_dev_run", "1",
                 "--trainer.default_root_dir", str(tmp_path), "--data.data_root", str(data_dir)]
                + ONE_ITERATION + TINY_DATA) == 0
    capsys.readouterr()
    assert main(["fit", "--config", str(SMALL), "--model.lr_schedul", "x"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "lr_schedul" in err
    assert main(["fit", "--config", str(SMALL), "--model.codec", "no-such-codec"]) == 1
    assert "unknown codec 'no-such-codec'" in capsys.readouterr().err


def test_fit_two_steps_in_bf16_mixed_on_cpu(tmp_path, data_dir):
    """``codeczoo fit --trainer.precision bf16-mixed`` (Lightning's CPU autocast): training, the
    validation sanity check and the real-bpp path (``compress`` of bf16 codes) all run."""
    cli = run_lightning_cli(
        ["fit", "--config", str(SMALL), "--trainer.max_steps", "2",
         "--trainer.precision", "bf16-mixed", "--trainer.val_check_interval", "2",
         "--trainer.limit_val_batches", "1", "--trainer.default_root_dir", str(tmp_path),
         "--data.data_root", str(data_dir), "--model.codec_args",
         '{"max_iterations": 2, "default_quality": 1}', "--model.val_qualities", "[1, 2]"]
        + TINY_DATA)
    trainer = cli.trainer
    assert trainer.global_step == 2 and str(trainer.precision) == "bf16-mixed"
    metrics = trainer.callback_metrics
    assert float(metrics["val/bpp_q2"]) > float(metrics["val/bpp_q1"]) > 0  # real bytes
    assert math.isfinite(float(metrics["val/psnr_q2"]))
    assert 0 < float(metrics["val/ssim_q2"]) <= 1  # metrics run outside autocast
    info = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["codeczoo"]
    assert info["precision"] == "bf16-mixed" and info["validation_step"] == 2


@pytest.mark.slow
def test_time_budget_sets_max_steps_and_ends_the_schedule_with_a_validation(tmp_path, data_dir):
    """--budget.minutes: the rate is measured, max_steps and the cosine span are set to fit, the
    run ends (with one validation) before the deadline, and export records the plan."""
    import time

    from codeczoo.training.budget import TimeBudget

    t0 = time.time()
    cli = run_lightning_cli(
        ["fit", "--config", str(SMALL), "--trainer.max_steps", "100000",
         "--trainer.val_check_interval", "100000", "--trainer.check_val_every_n_epoch", "null",
         "--trainer.num_sanity_val_steps", "1", "--model.lr_schedule", "cosine",
         "--budget.minutes", "0.3", "--budget.warmup_steps", "1", "--budget.measure_steps", "3",
         "--trainer.default_root_dir", str(tmp_path),
         "--data.data_root", str(data_dir)]
        + ONE_ITERATION + TINY_DATA + ["--data.crops_per_image", "64"])
    trainer, module = cli.trainer, cli.model
    budget = next(c for c in trainer.callbacks if isinstance(c, TimeBudget))
    plan = budget.plan
    assert plan["max_steps"] > 4 and plan["steps_per_s"] > 0
    assert budget.deadline < t0 + 0.3 * 60 + 2
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert last.stat().st_mtime < budget.deadline  # final validation and checkpoint inside
    assert trainer.global_step <= plan["max_steps"] == module.schedule_steps
    ckpt = read_checkpoint(last)
    assert ckpt["codeczoo"]["validation_step"] == trainer.global_step  # the final validation
    assert ckpt["callbacks"]["TimeBudget"]["plan"]["max_steps"] == plan["max_steps"]
    if trainer.global_step == plan["max_steps"]:  # the cosine ran to its floor
        lr = trainer.optimizers[0].param_groups[0]["lr"]
        assert lr == pytest.approx(module.hparams.lr * module.hparams.lr_min_factor, rel=0.05)


def test_last_checkpoint_keeps_the_steps_after_the_last_validation(tmp_path, data_dir):
    # validation (and Lightning's checkpoint) at step 2; the run ends on max_steps at 3
    cli = run_lightning_cli(
        ["fit", "--config", str(SMALL), "--trainer.max_steps", "3",
         "--trainer.val_check_interval", "2", "--trainer.limit_val_batches", "1",
         "--trainer.default_root_dir", str(tmp_path), "--data.data_root", str(data_dir)]
        + ONE_ITERATION + TINY_DATA)
    assert cli.trainer.global_step == 3
    checkpoints = tmp_path / "checkpoints"
    assert read_checkpoint(checkpoints / "last.ckpt")["global_step"] == 3
    assert read_checkpoint(checkpoints / "step00000002.ckpt")["global_step"] == 2


# -- a codec with a learned entropy model (rate-distortion path) --------------------------------
try:
    from compressai.entropy_models import EntropyBottleneck
    from compressai.layers import GDN
    from compressai.models import CompressionModel

    @codeczoo.register_codec("test-factorized-tiny")
    class TinyFactorized(CompressionModel, codeczoo.Codec):
        """Ballé et al. 2018 factorized prior, one channel, 4 filters (a test-sized user codec)."""

        def __init__(self, channels: int = 4):
            super().__init__()
            self.entropy_bottleneck = EntropyBottleneck(channels)
            self.g_a = nn.Sequential(nn.Conv2d(1, channels, 5, 2, 2), GDN(channels),
                                     nn.Conv2d(channels, channels, 5, 2, 2))
            self.g_s = nn.Sequential(
                nn.ConvTranspose2d(channels, channels, 5, 2, 2, output_padding=1),
                GDN(channels, inverse=True),
                nn.ConvTranspose2d(channels, 1, 5, 2, 2, output_padding=1))

        def forward(self, x):
            y_hat, likelihoods = self.entropy_bottleneck(self.g_a(x))
            return {"x_hat": self.g_s(y_hat), "likelihoods": {"y": likelihoods}}
except codeczoo.CodeczooError:  # already registered (module imported twice)
    pass


def test_rate_distortion_codec_trains_net_and_quantiles(data_dir, tmp_path):
    import lightning as L

    module = CodecModule("test-factorized-tiny", lmbda=0.01, lr=1e-2, aux_lr=1e-1)
    before = {k: v.clone() for k, v in module.model.state_dict().items()}
    dm = XrayDataModule(data_root=str(data_dir), limit_images=2, crop_size=32,
                        crops_per_image=4, batch_size=4, val_crops_per_image=1)
    trainer = L.Trainer(accelerator="cpu", max_steps=3, limit_val_batches=1, val_check_interval=2,
                        check_val_every_n_epoch=None, gradient_clip_val=1.0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, dm)
    after = module.model.state_dict()
    assert not torch.equal(before["entropy_bottleneck.quantiles"], after["entropy_bottleneck.quantiles"])
    assert not torch.equal(before["g_a.0.weight"], after["g_a.0.weight"])
    groups = {g["name"]: g for g in trainer.optimizers[0].param_groups}
    assert groups["aux"]["lr"] == pytest.approx(1e-1)  # own group, no decay
    assert float(trainer.callback_metrics["val/bpp_est"]) > 0
    assert "val/psnr" in trainer.callback_metrics and "train/aux" in trainer.callback_metrics


# -- scale-out, fault tolerance, export ---------------------------------------------------------
@pytest.mark.slow
def test_ddp_two_cpu_processes_end_with_identical_weights(tmp_path, data_dir):
    out = tmp_path / "ranks"
    out.mkdir()
    cmd = [sys.executable, "-m", "codeczoo", "fit", "--config", str(SMALL),
           "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp",
           "--trainer.max_steps", "3", "--trainer.val_check_interval", "3",
           "--trainer.limit_val_batches", "1", "--trainer.default_root_dir", str(tmp_path / "run"),
           "--trainer.callbacks+=training_helpers.RankRecorder", "--data.data_root", str(data_dir),
           "--model.codec_args", '{"max_iterations": 2, "default_quality": 1}',
           "--model.val_qualities", "[1, 2]"] + TINY_DATA
    proc = subprocess.run(cmd, env=_env(CODECZOO_TEST_OUT=str(out)), capture_output=True,
                          text=True, timeout=240, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2] and [r["global_step"] for r in ranks] == [3, 3]
    assert ranks[0]["first_batch"] != ranks[1]["first_batch"], "ranks must see different data"
    assert ranks[0]["weights"] == ranks[1]["weights"]
    checkpoints = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert "last.ckpt" in checkpoints and len(checkpoints) == 2  # one step file + last, once
    ckpt = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert ckpt["codeczoo"]["devices"] == 2
    assert state_hash(model_from_checkpoint(ckpt)) == ranks[0]["weights"]
    assert "val/psnr_q2" in ckpt["codeczoo"]["metrics"]  # synced validation metrics recorded


def state_hash(model) -> str:
    from codeczoo.codec import state_dict_hash

    return state_dict_hash(model.state_dict()).hex()


@pytest.mark.slow
def test_kill_resume_then_export_load_and_accumulate(tmp_path, data_dir, cxr_val_images,
                                                     monkeypatch):
    run = tmp_path / "run"
    common = ["fit", "--config", str(SMALL), "--trainer.max_steps", "8",
              "--trainer.limit_val_batches", "0", "--trainer.default_root_dir", str(run),
              "--checkpoint.every_n_train_steps", "1", "--checkpoint.monitor", "null",
              "--checkpoint.save_top_k", "1", "--model.lr_milestones", "[0.25, 0.5]",
              "--model.lr_gamma", "0.5", "--data.data_root", str(data_dir)] + ONE_ITERATION + TINY_DATA
    # 1. a run SIGKILLed (no clean-up) mid-epoch, at the start of its 6th step
    killed = subprocess.run([sys.executable, "-m", "codeczoo"] + common
                            + ["--trainer.callbacks+=training_helpers.KillAtStep",
                               "--trainer.callbacks.step=5"],
                            env=_env(), capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert read_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 5

    # 2. resume: starts at step 5 and ends at 8 with the schedule's step-8 learning rate
    cli = run_lightning_cli(common + ["--ckpt_path", "last",
                                      "--trainer.callbacks+=training_helpers.RankRecorder"])
    recorder = [c for c in cli.trainer.callbacks if type(c).__name__ == "RankRecorder"][0]
    assert recorder.record["start_step"] == 5
    assert cli.trainer.global_step == 8 and recorder.record["scheduler_last_epoch"] == 8
    assert recorder.record["lr"] == pytest.approx(5e-4 * 0.25)  # decays at steps 2 and 4
    adam_steps = {float(s["step"]) for s in cli.trainer.optimizers[0].state.values()}
    assert adam_steps == {8.0}  # Adam moments restored, not restarted

    # 3. export into a private registry; load(pretrained=True) reproduces the checkpoint
    registry = tmp_path / "registry"
    monkeypatch.setenv("CODECZOO_REGISTRY", str(registry))
    name = "toderici2017-lstm-oneshot-small"
    ckpt_path = run / "checkpoints" / "last.ckpt"
    assert main(["export", str(ckpt_path), "--name", name]) == 0
    (entry, *shipped) = json.loads((registry / name / "weights.json").read_text())["weights"]
    assert shipped == []  # a new user registry holds only the new weights
    training = json.loads((registry / name / "training.json").read_text())
    weights_file = registry / name / entry["file"]
    assert entry["sha256"] == file_sha256(weights_file)
    assert weights_file.name == f"{name}-{entry['sha256'][:8]}.safetensors"
    assert training["steps"] == 8 and entry["arguments"]["max_iterations"] == 1
    assert "model:" in training["recipe_config"]
    loaded = codeczoo.load(name, pretrained=True)
    reference = model_from_checkpoint(read_checkpoint(ckpt_path))
    x = FixedCropDataset([load_image(cxr_val_images[0])], 64, 1)[0][None]
    with torch.no_grad():
        assert torch.equal(loaded(x, iterations=1)["x_hat"], reference(x, iterations=1)["x_hat"])
    image = load_image(cxr_val_images[0]).values[:100, :120].astype(np.uint8)
    assert np.array_equal(codeczoo.decode(loaded.encode(image, 1)),
                          reference.decode(reference.encode(image, 1)))

    assert entry["weights_hash"] == loaded.weights_hash().hex()  # = .czoo header
    assert codeczoo.get_card(name).weights.file == weights_file.name  # the user registry wins
    # the first weights measured on a real image, recorded with them
    images = tmp_path / "val"
    images.mkdir()
    (images / cxr_val_images[0].name).write_bytes(cxr_val_images[0].read_bytes())
    assert main(["eval", str(images), "--codec", name, "--quality", "1", "--record",
                 "-o", str(tmp_path / "eval.json")]) == 0
    (evaluation,) = json.loads((registry / name / "training.json").read_text())["evaluations"]
    first_psnr = evaluation["results"]["psnr"]

    # 4. training that accumulates over the shipped weights: steps add up on the card
    more = run_lightning_cli(
        ["fit", "--config", str(SMALL), "--trainer.max_steps", "2", "--trainer.limit_val_batches",
         "0", "--trainer.default_root_dir", str(tmp_path / "more"), "--model.init_from_registry",
         "true", "--checkpoint.monitor", "null", "--checkpoint.save_top_k", "1",
         "--checkpoint.every_n_train_steps", "2", "--data.data_root", str(data_dir)]
        + ONE_ITERATION + TINY_DATA)
    assert more.trainer.global_step == 2
    _, entry, record = export_checkpoint(tmp_path / "more" / "checkpoints" / "last.ckpt", name,
                                         fp16=True)
    assert record["steps"] == 10 and record["steps_this_run"] == 2
    assert record["continued_from"]["steps"] == 8
    # ... and the record keeps what the earlier minutes bought; its stale evaluation is gone
    (earlier,) = record["history"]
    assert earlier["steps"] == 8 and earlier["weights"] == weights_file.name
    (measured,) = earlier["evaluations"]
    assert measured["psnr"] == first_psnr and measured["quality"] == [1]
    assert record["evaluations"] == []
    assert entry.dtype == "float16" and entry.notes["fp16_max_abs_diff"] < 1e-2
    assert 0 <= entry.notes["fp16_max_psnr_delta_db"] < 0.05
    # the earlier weights stay registered, so their bitstreams still decode
    old_stream = loaded.encode(image, 1)
    assert codeczoo.load(name).weights_hash() != loaded.weights_hash()
    assert np.array_equal(codeczoo.decode(old_stream), loaded.decode(old_stream))
    assert codeczoo.load(name, pretrained=True)(x, iterations=1)["x_hat"].shape == x.shape


def test_training_history_keeps_only_evaluations_of_the_same_weights():
    previous = {"weights_hash": "aa", "steps": 100, "cpu_minutes": 50.0, "gpu_minutes": 0.0,
                "history": [{"steps": 40, "weights": "old.safetensors"}],
                "evaluations": [{"weights_hash": "aa", "quality": [1, 2],
                                 "command": "codeczoo eval x",
                                 "results": {"bpp": [0.1, 0.2], "psnr": [30.0, 31.0],
                                             "ms-ssim": [0.9, 0.95], "encoding_time": [1, 2]}}]}
    continued = {"continued_from": {"steps": 100, "weights": "a.safetensors"}}
    history = training_history(previous, continued)
    assert [h["steps"] for h in history] == [40, 100]
    assert history[-1]["weights"] == "a.safetensors"
    assert history[-1]["evaluations"] == [{"command": "codeczoo eval x", "quality": [1, 2],
                                           "bpp": [0.1, 0.2], "psnr": [30.0, 31.0],
                                           "ms-ssim": [0.9, 0.95]}]
    # an evaluation of other weights is not passed off as these weights' results
    previous["evaluations"][0]["weights_hash"] = "bb"
    assert "evaluations" not in training_history(previous, continued)[-1]
    # a run that started from scratch starts a new history
    assert training_history(previous, {}) == []
