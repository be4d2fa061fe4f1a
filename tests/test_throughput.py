"""Speed options of training (same arithmetic, same weights files) and the throughput benchmark.

torch.compile runs on the CPU too (inductor's C++ backend), so the compiled path is tested here,
slowly; CUDA graphs, fused Adam and GPU memory are exercised by the GPU commands in
docs/training.md.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from codeczoo.training.data import XrayDataModule
from codeczoo.training.module import CodecModule

REPO = Path(__file__).resolve().parent.parent
TINY = {"max_iterations": 2, "default_quality": 1}


def _fit(module, data_dir, steps=2, **data):
    settings = dict(data_root=str(data_dir), limit_images=3, batch_size=4, crops_per_image=4,
                    crop_size=32, val_crop_size=32, val_crops_per_image=1)
    settings.update(data)
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=steps, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, gradient_clip_val=0.5, limit_val_batches=1,
                        num_sanity_val_steps=0)
    trainer.fit(module, XrayDataModule(**settings))
    return trainer


@pytest.mark.parametrize("codec", ["sushmit2019-rnnconv", "toderici2017-lstm-oneshot-small"])
def test_speed_options_keep_the_arithmetic_and_the_weights(codec, data_dir):
    """channels_last + fused gate convolutions (padded kernels too) + crops cut on the device:
    the codec computes what it computed (eval mode, same weights), trains, and keeps its
    parameter names and layout in the state dict."""
    torch.manual_seed(0)
    module = CodecModule(codec, codec_args=TINY, val_qualities=[1, 2], channels_last=True,
                         fuse_gates="all")
    x = torch.rand(3, 1, 32, 32)
    plain = module.model.eval()(x, 2)["residuals"].detach()
    keys = list(module.model.state_dict())
    module.setup("fit")  # applies the options, as Lightning does before building the optimiser
    assert any(getattr(m, "fused", False) for m in module.model.modules())
    conv = next(m for m in module.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(module.model(x, 2)["residuals"], plain, rtol=1e-4, atol=1e-6)
    before = {k: v.clone() for k, v in module.model.state_dict().items()}
    module.model.train()
    trainer = _fit(module, data_dir, crops_on_device=True)
    assert trainer.global_step == 2 and list(module.model.state_dict()) == keys
    assert any(not torch.equal(before[k], v) for k, v in module.model.state_dict().items())


def test_bad_speed_options_are_one_line_errors():
    from codeczoo.errors import CodeczooError

    with pytest.raises(CodeczooError, match="compile must be one of"):
        CodecModule("sushmit2019-rnnconv", compile="fast")
    with pytest.raises(CodeczooError, match="fuse_gates must be one of"):
        CodecModule("sushmit2019-rnnconv", fuse_gates="yes")


@pytest.mark.slow
def test_compiled_training_step_matches_eager(data_dir):
    """torch.compile of one coding iteration (inductor, CPU): the compiled step reproduces the
    eager one (eval mode: deterministic binarizer) and trains."""
    torch.manual_seed(0)
    module = CodecModule("toderici2017-lstm-oneshot-small", codec_args=TINY, val_qualities=[1, 2],
                         compile="default")
    trainer = _fit(module, data_dir, steps=2)
    assert trainer.global_step == 2 and module._train_step_fn is not None
    model = module.model.eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        eager = model(x, 2)
        compiled = model(x, 2, step=module._train_step_fn)
    torch.testing.assert_close(compiled["residuals"], eager["residuals"], rtol=1e-4, atol=1e-5)


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("train_throughput",
                                                  REPO / "benchmarks" / "train_throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_benchmark_builds_enough_crops_for_any_batch(tmp_path, data_dir):
    """A batch larger than images x crops_per_image (the old IndexError) still times steps and
    reports crops/s, peak memory and the half-batch ratio."""
    recipe = yaml.safe_load((REPO / "recipes" / "toderici2017-lstm-oneshot-small"
                             / "cxr-32.yaml").read_text())
    recipe["model"]["init_args"].update(codec_args=TINY, train_iterations=2, val_qualities=[1, 2])
    recipe["data"]["init_args"].update(crop_size=16, crops_per_image=2, num_workers=0)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "rows.json"
    bench = _load_benchmark()
    assert bench.main(["--recipes", str(path), "--batch-size", "12", "--limit-images", "1",
                       "--steps", "2", "--warmup", "1", "--data-root", str(data_dir),
                       "--crops-on-device", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())
    assert row["batch"] == 12 and row["crops_per_s"] > 0 and row["peak_mem_mib"] > 0
    assert row["bound"] in ("launch-bound", "mixed", "compute-bound") and row["time_ratio"] > 0
    assert row["options"] == {"crops_on_device": True}
