"""Training throughput of recipes: crops/s, step time, peak memory, and what limits the step.

Each recipe's model and data module are built from its YAML exactly as ``codeczoo fit`` builds
them (plus the speed options given here), then a Lightning ``Trainer`` runs ``--warmup +
--steps`` optimiser steps (no validation, no checkpoints, no logger). The clock is read, after a
device synchronisation, when the first timed step starts and when the last one has ended, so
data, forward, backward, clipping and the optimiser step are all inside and nothing syncs the
host between the timed steps. The data module is given enough crops for every step, whatever the
batch size.

    python benchmarks/train_throughput.py                                    # CPU, every recipe
    python benchmarks/train_throughput.py --recipes 'recipes/*/cxr-64-gpu.yaml' --accelerator gpu
    python benchmarks/train_throughput.py --recipes recipes/toderici2017-lstm-oneshot/cxr-32.yaml \\
        --accelerator gpu --precision bf16-mixed --batch-size 512 --compile max-autotune-no-cudagraphs

**Launch- or compute-bound.** Every recipe is also timed at half the batch size. If halving the
batch barely shortens the step (time ratio full / half < 1.3), per-step overheads (kernel
launches, Python, the optimiser) dominate: launch-bound; a ratio near 2 means the arithmetic and
memory traffic dominate: compute-bound. ``--profile`` (CUDA) adds the profiler's view: the share
of the step the GPU spent in kernels (with ``--no-bound-check`` it alone decides: under 50 %
launch-bound, over 80 % compute-bound; it spares a second compilation). ``--sync-debug`` (CUDA) counts host synchronisations during
the timed steps (``torch.cuda.set_sync_debug_mode``).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import resource
import sys
import time
import warnings
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def _build(recipe: Path, args, batch_size: int):
    import importlib

    config = yaml.safe_load(recipe.read_text())

    def make(section, **override):
        path, _, cls_name = config[section]["class_path"].rpartition(".")
        cls = getattr(importlib.import_module(path), cls_name)
        kwargs = dict(config[section].get("init_args") or {})
        kwargs.update(override)
        return cls(**kwargs), kwargs

    model_override = {}
    for key in ("compile", "channels_last", "fuse_gates", "fused_adam"):
        value = getattr(args, key)
        if value is not None:
            model_override[key] = value
    module, _ = make("model", **model_override)
    data_args = dict(config["data"].get("init_args") or {})
    data_override = {"limit_images": args.limit_images, "batch_size": batch_size,
                     "num_workers": args.num_workers if args.num_workers is not None
                     else data_args.get("num_workers", 0)}
    if args.crops_on_device is not None:
        data_override["crops_on_device"] = args.crops_on_device
    if args.data_root:
        data_override["data_root"] = args.data_root
    data, _ = make("data", **data_override)
    # enough crops for every step in one epoch, whatever the batch size
    images = len(data.resolve_splits()["train"])
    needed = (args.warmup + args.steps + 1) * batch_size
    data.crops_per_image = max(data.crops_per_image, math.ceil(needed / max(1, images)))
    return config, module, data


class WindowTimer:
    """Device-synchronised wall clock at the start of step ``warmup`` and at the end of training;
    nothing is synchronised in between (so asynchronous execution is measured as it runs)."""

    def __init__(self, warmup: int, sync_debug: bool = False):
        import lightning as L

        timer = self

        class _Callback(L.Callback):
            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                if trainer.global_step == timer.warmup and timer.start is None:
                    timer._sync(pl_module)
                    timer.start = time.perf_counter()
                    timer.start_step = trainer.global_step
                    if timer.sync_debug:
                        import torch

                        torch.cuda.set_sync_debug_mode(1)

            def on_train_end(self, trainer, pl_module):
                if timer.sync_debug:
                    import torch

                    torch.cuda.set_sync_debug_mode(0)
                timer._sync(pl_module)
                timer.end = time.perf_counter()
                timer.end_step = trainer.global_step

        self.warmup, self.sync_debug = warmup, sync_debug
        self.start = self.end = None
        self.start_step = self.end_step = 0
        self.callback = _Callback()

    @staticmethod
    def _sync(pl_module):
        import torch

        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def seconds_per_step(self) -> float:
        steps = self.end_step - self.start_step
        if self.start is None or self.end is None or steps < 1:
            raise RuntimeError(f"no timed step ran (warm-up {self.warmup}, ran to step "
                               f"{self.end_step}); raise --steps")
        return (self.end - self.start) / steps


def run_once(recipe: Path, args, batch_size: int, profile: bool = False) -> dict:
    import lightning as L
    import torch

    config, module, data = _build(recipe, args, batch_size)
    timer = WindowTimer(args.warmup, sync_debug=args.sync_debug)
    cuda = args.accelerator == "gpu"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer = L.Trainer(
        accelerator=args.accelerator, devices=1, precision=args.precision,
        max_steps=args.warmup + args.steps, limit_val_batches=0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        gradient_clip_val=(config.get("trainer") or {}).get("gradient_clip_val"),
        callbacks=[timer.callback])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(module, data)
    seconds = timer.seconds_per_step()
    row = {"batch": batch_size, "s_per_step": seconds, "crops_per_s": batch_size / seconds}
    if cuda:
        row["peak_mem_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
        row["mem_kind"] = "CUDA"
    else:
        row["peak_mem_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        row["mem_kind"] = "RSS (process)"
    if args.sync_debug:
        row["host_syncs"] = sum("synchroniz" in str(w.message) for w in caught)
    if profile and cuda:
        row["gpu_busy"] = profile_busy(module, data, trainer, args)
    return {"row": row, "module": module, "data": data}


def profile_busy(module, data, trainer, args) -> float:
    """Share of the wall time of 3 further steps that CUDA kernels kept the GPU busy."""
    import lightning as L
    import torch
    from torch.profiler import ProfilerActivity, profile

    extra = L.Trainer(accelerator="gpu", devices=1, precision=args.precision, max_steps=3,
                      limit_val_batches=0, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        extra.fit(module, data)
        torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    kernel_us = sum(e.self_device_time_total for e in prof.key_averages()
                    if e.device_type == torch.autograd.DeviceType.CUDA)
    return min(1.0, kernel_us / 1e6 / wall)


def bound(ratio: float) -> str:
    if ratio < 1.3:
        return "launch-bound"
    if ratio > 1.7:
        return "compute-bound"
    return "mixed"


def measure(recipe: Path, args) -> dict:
    import torch

    batch = args.batch_size or _recipe_batch(recipe)
    full = run_once(recipe, args, batch, profile=args.profile)
    result = {"recipe": f"{recipe.parent.name}/{recipe.stem}",
              "params_M": sum(p.numel() for p in full["module"].model.parameters()) / 1e6,
              "crop": full["data"].crop_size, "iterations": full["module"].train_iterations,
              "precision": args.precision, **full["row"],
              "options": {k: getattr(args, k) for k in ("compile", "channels_last", "fuse_gates",
                                                        "fused_adam", "crops_on_device")
                          if getattr(args, k) is not None},
              "device": (torch.cuda.get_device_name(0) if args.accelerator == "gpu"
                         else f"CPU x{torch.get_num_threads()} threads")}
    if not args.no_bound_check and batch >= 2:
        half = run_once(recipe, args, batch // 2)["row"]
        result["half_batch_s_per_step"] = half["s_per_step"]
        result["time_ratio"] = full["row"]["s_per_step"] / half["s_per_step"]
        result["bound"] = bound(result["time_ratio"])
    elif "gpu_busy" in result:  # the profiler's view alone
        busy = result["gpu_busy"]
        result["bound"] = "launch-bound" if busy < 0.5 else "compute-bound" if busy > 0.8 else "mixed"
    return result


def _recipe_batch(recipe: Path) -> int:
    config = yaml.safe_load(recipe.read_text())
    return int((config["data"].get("init_args") or {}).get("batch_size", 32))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", default=str(REPO / "recipes" / "*" / "*.yaml"))
    parser.add_argument("--accelerator", default="cpu", choices=("cpu", "gpu"))
    parser.add_argument("--precision", default="32-true",
                        help="32-true, bf16-mixed, 16-mixed (CPU: Lightning runs bf16 for both)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="override the recipes' batch size")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per recipe")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed steps first (compile and CUDA-graph capture happen here)")
    parser.add_argument("--limit-images", type=int, default=8,
                        help="images decoded per split (throughput does not depend on it)")
    parser.add_argument("--data-root", default=None, help="data folder (default: the recipe's)")
    parser.add_argument("--num-workers", type=int, default=None, help="loader workers")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    speed = parser.add_argument_group("speed options (default: the recipe's)")
    speed.add_argument("--compile", default=None,
                       help="torch.compile mode of the training step (default, reduce-overhead, "
                            "max-autotune, max-autotune-no-cudagraphs)")
    speed.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    speed.add_argument("--fuse-gates", choices=("none", "equal", "all"), default=None)
    speed.add_argument("--fused-adam", action=argparse.BooleanOptionalAction, default=None)
    speed.add_argument("--crops-on-device", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--no-bound-check", action="store_true",
                        help="skip the half-batch run that decides launch- vs compute-bound")
    parser.add_argument("--profile", action="store_true",
                        help="CUDA: share of the step the GPU was busy with kernels")
    parser.add_argument("--sync-debug", action="store_true",
                        help="CUDA: count host synchronisations during the timed steps")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.accelerator == "gpu" and not torch.cuda.is_available():
        print("no CUDA GPU available", file=sys.stderr)
        return 1
    if args.compile in ("none", "null", ""):
        args.compile = None
    recipes = sorted(Path(p) for p in glob.glob(args.recipes))
    if not recipes:
        print(f"no recipe matches {args.recipes}", file=sys.stderr)
        return 1
    rows = [measure(r, args) for r in recipes]
    mem = rows[0]["mem_kind"]
    header = (f"{'recipe':42} {'params':>7} {'crop':>4} {'batch':>5} {'T':>3} {'s/step':>8} "
              f"{'crops/s':>9} {'peak MiB':>9} {'x2 batch':>8}  bound")
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = f"{r['time_ratio']:.2f}" if "time_ratio" in r else "-"
        print(f"{r['recipe']:42} {r['params_M']:6.2f}M {r['crop']:4d} {r['batch']:5d} "
              f"{r['iterations']:3d} {r['s_per_step']:8.4f} {r['crops_per_s']:9.1f} "
              f"{r['peak_mem_mib']:9.0f} {ratio:>8}  {r.get('bound', '-')}"
              + (f", GPU busy {100 * r['gpu_busy']:.0f}%" if "gpu_busy" in r else "")
              + (f", host syncs {r['host_syncs']}" if "host_syncs" in r else ""))
    r0 = rows[0]
    print(f"\ndevice: {r0['device']}, precision {args.precision}, options {r0['options'] or 'none'}; "
          f"peak memory: {mem}; 'x2 batch': step time at the batch / at half of it")
    print(f"command: python benchmarks/train_throughput.py "
          f"{' '.join(sys.argv[1:] if argv is None else argv)}")
    if args.accelerator == "cpu":
        print(f"threads: {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
