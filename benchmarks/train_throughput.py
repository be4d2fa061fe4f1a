"""Training throughput (crops per second) of every recipe, on the CPU and on a GPU if present.

Each recipe's model and data module are built from its YAML exactly as ``codeczoo fit`` builds
them, then a Lightning ``Trainer`` runs ``--warmup + --steps`` optimiser steps (no validation, no
checkpoints); the timed steps are measured between batch starts by a callback, so data loading,
forward, backward, gradient clipping and the optimiser step are all included.

    python benchmarks/train_throughput.py                        # CPU, every recipe
    python benchmarks/train_throughput.py --accelerator gpu --precision bf16-mixed --steps 50
    python benchmarks/train_throughput.py --recipes 'recipes/toderici*/*.yaml' --batch-size 128

What limits it (printed under the table): on a CPU, arithmetic (the ConvLSTM convolutions of all
``T`` unrolled iterations, forward and backward); on a GPU at small batches, kernel launches
(each of the ``T`` iterations launches dozens of small kernels), which larger batches, bf16 or
``torch.compile`` / CUDA graphs amortise.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def _build(recipe: Path, batch_size: int | None, limit_images: int):
    import importlib

    config = yaml.safe_load(recipe.read_text())

    def make(section, **override):
        path, _, cls_name = config[section]["class_path"].rpartition(".")
        cls = getattr(importlib.import_module(path), cls_name)
        kwargs = dict(config[section].get("init_args") or {})
        kwargs.update(override)
        return cls(**kwargs)

    data_override = {"limit_images": limit_images, "num_workers": 0}
    if batch_size:
        data_override["batch_size"] = batch_size
    return config, make("model"), make("data", **data_override)


class StepTimer:
    """Wall time of each training batch, start to start (the last one start to end)."""

    def __init__(self, warmup: int):
        import lightning as L

        timer = self

        class _Callback(L.Callback):
            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                timer._sync(pl_module)
                timer.starts.append(time.perf_counter())

            def on_train_end(self, trainer, pl_module):
                timer._sync(pl_module)
                timer.starts.append(time.perf_counter())

        self.warmup = warmup
        self.starts: list[float] = []
        self.callback = _Callback()

    @staticmethod
    def _sync(pl_module):
        import torch

        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def seconds_per_step(self) -> float:
        times = self.starts[self.warmup:]
        return (times[-1] - times[0]) / max(1, len(times) - 1)


def measure(recipe: Path, args) -> dict:
    import lightning as L
    import torch

    config, module, data = _build(recipe, args.batch_size, args.limit_images)
    timer = StepTimer(args.warmup)
    trainer = L.Trainer(
        accelerator=args.accelerator, devices=1, precision=args.precision,
        max_steps=args.warmup + args.steps, limit_val_batches=0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        gradient_clip_val=(config.get("trainer") or {}).get("gradient_clip_val"),
        callbacks=[timer.callback])
    trainer.fit(module, data)
    seconds = timer.seconds_per_step()
    params = sum(p.numel() for p in module.model.parameters())
    device = (torch.cuda.get_device_name(0) if args.accelerator == "gpu"
              else f"CPU x{torch.get_num_threads()} threads")
    return {"recipe": f"{recipe.parent.name}/{recipe.stem}", "params_M": params / 1e6,
            "crop": data.crop_size, "batch": data.batch_size,
            "iterations": module.train_iterations, "device": device,
            "precision": args.precision, "s_per_step": seconds,
            "crops_per_s": data.batch_size / seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", default=str(REPO / "recipes" / "*" / "*.yaml"))
    parser.add_argument("--accelerator", default="cpu", choices=("cpu", "gpu"))
    parser.add_argument("--precision", default="32-true",
                        help="32-true, bf16-mixed (GPU), 16-mixed")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="override the recipes' batch size")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per recipe")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--limit-images", type=int, default=8,
                        help="images decoded per split (throughput does not depend on it)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.accelerator == "gpu" and not torch.cuda.is_available():
        print("no CUDA GPU available", file=sys.stderr)
        return 1
    recipes = sorted(Path(p) for p in glob.glob(args.recipes))
    if not recipes:
        print(f"no recipe matches {args.recipes}", file=sys.stderr)
        return 1
    rows = [measure(r, args) for r in recipes]
    header = (f"{'recipe':42} {'params':>8} {'crop':>5} {'batch':>5} {'T':>3} "
              f"{'s/step':>8} {'crops/s':>9}  device, precision")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['recipe']:42} {r['params_M']:7.2f}M {r['crop']:5d} {r['batch']:5d} "
              f"{r['iterations']:3d} {r['s_per_step']:8.3f} {r['crops_per_s']:9.1f}  "
              f"{r['device']}, {r['precision']}")
    print(f"\ncommand: python benchmarks/train_throughput.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    if args.accelerator == "cpu":
        print("limit: CPU arithmetic (every one of the T unrolled ConvLSTM iterations runs forward "
              "and backward); threads: " + str(torch.get_num_threads()) +
              f", load average {os.getloadavg()[0]:.1f}")
    else:
        print("limit: at small batches kernel launches (T iterations x dozens of small kernels); "
              "raise the batch, use bf16-mixed, or torch.compile")
    return 0


if __name__ == "__main__":
    sys.exit(main())
