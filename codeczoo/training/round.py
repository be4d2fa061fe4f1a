"""One training round on a lent machine: ``codeczoo round MINUTES OUTDIR``.

A GPU is lent to this project by chance, for minutes. One command turns those minutes into
shipped quality: it trains every learned codec that ships weights, from those weights, with its
``recipes/<codec>/cxr-64-gpu.yaml``, exports fp16 weights with their history, evaluates them on
the validation split, and leaves one folder to bring home::

    OUTDIR/summary.json   what ran, how fast, what it bought (new against shipped, per quality)
    OUTDIR/summary.md     the same for people
    OUTDIR/round.tar.gz   registry/<codec>/{weights.json, training.json, <codec>-<sha>.safetensors}
                          (the new weights first in weights.json; the shipped file stays out),
                          results/val/<codec>.json, logs/, runs/<codec>/config.yaml

The budget covers everything from ``started`` (the wrapper ``scripts/gpu_round.sh`` passes the
moment it began, before installing wheels) to the last file written:

1. a probe encodes one validation image per codec on the device, which sizes the time kept for
   evaluation;
2. the codecs train **side by side** (one process each, on one GPU): export and evaluation, start-up,
   compilation and validation leave a GPU idle, and two runs overlap those gaps; each run's
   :class:`~codeczoo.training.budget.TimeBudget` measures its own steps per second while the
   other runs, and ends its cosine schedule, its final validation and its checkpoint before the
   training deadline;
3. ``codeczoo export --fp16`` and ``codeczoo eval --record`` run as they would by hand, into a
   private user registry (``CODECZOO_REGISTRY``) that starts as a copy of the shipped entries, so
   the manifests, training records, weights and results are exactly what those commands write;
   the repository's own ``registry/`` is never touched. To ship, copy the tarball's
   ``registry/<codec>/`` over the repository's.

``--smoke`` shrinks everything (CPU, 32 x 32 crops, one iteration, at most 40 steps, one
validation image at quality 1) so CI runs the whole chain and it cannot rot.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from ..errors import CodeczooError

#: the folder holding the codeczoo package (a checkout's root), put first on subprocesses' path
PACKAGE_PARENT = Path(__file__).resolve().parents[2]
ROUND_RECIPE = "cxr-64-gpu.yaml"
#: modules a round imports beyond torch, lightning, torchmetrics, numpy and safetensors
NEEDED_MODULES = {"compressai": "compressai", "jsonargparse": "jsonargparse",
                  "docstring_parser": "docstring-parser", "typeshed_client": "typeshed-client",
                  "PIL": "pillow", "yaml": "pyyaml", "einops": "einops",
                  "pytorch_msssim": "pytorch-msssim", "scipy": "scipy", "pandas": "pandas",
                  "torchvision": "torchvision", "torch_geometric": "torch-geometric"}
EXPORT_RESERVE_S = 25.0    # least time kept for one export: start, checkpoint, fp16 check, write
PACK_RESERVE_S = 15.0      # tarball, summary, interpreter exit
GRACE_S = 45.0             # a subprocess that overruns its own deadline by this is killed
SMOKE_ARGS = [
    "--trainer.accelerator", "cpu", "--trainer.precision", "32-true",
    "--model.init_args.compile", "null", "--model.init_args.channels_last", "false",
    "--model.init_args.fused_adam", "false", "--model.init_args.train_iterations", "1",
    "--model.init_args.val_qualities", "[1]", "--model.init_args.warmup_steps", "0",
    "--data.init_args.batch_size", "4", "--data.init_args.crop_size", "32",
    "--data.init_args.crops_per_image", "8", "--data.init_args.val_crop_size", "32",
    "--data.init_args.val_crops_per_image", "1", "--data.init_args.limit_images", "4",
    "--data.init_args.num_workers", "0", "--trainer.log_every_n_steps", "5",
    "--budget.warmup_steps", "1", "--budget.measure_steps", "3",
    "--trainer.max_steps", "40",  # a quiet CPU finishes early; a busy one meets the budget
]


@dataclass
class RoundPlan:
    """Everything a round decides before it starts training."""

    minutes: float
    started: float
    out: Path
    codecs: list[str]
    data_root: Path
    accelerator: str  # "gpu" or "cpu"
    qualities: list[int]
    eval_limit: Optional[int]
    smoke: bool
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="codeczoo-round-")))

    @property
    def deadline(self) -> float:
        return self.started + 60.0 * self.minutes


def missing_modules() -> list[str]:
    """Distributions a round needs that this Python cannot import (one per missing module)."""
    import importlib.util

    return [dist for module, dist in NEEDED_MODULES.items()
            if importlib.util.find_spec(module) is None]


def _shipped(name: str, what: str) -> dict:
    """``weights.json`` or ``training.json`` of ``name`` in the packaged (shipped) registry."""
    from ..registry import packaged_registry

    path = packaged_registry() / name / what
    return json.loads(path.read_text()) if path.is_file() else {}


def shipped_learned_codecs() -> list[str]:
    """Learned codecs whose weights ship in the packaged registry and that have a round recipe."""
    from ..registry import codec_class, list_codecs, packaged_registry
    from ..models.base import RecurrentBinaryCodec

    return [name for name in list_codecs()
            if issubclass(codec_class(name), RecurrentBinaryCodec)
            and _shipped(name, "weights.json").get("weights")
            and (packaged_registry() / name / _shipped(name, "weights.json")["weights"][0]["file"]
                 ).is_file()
            and round_recipe(name).is_file()]


def _env(plan: RoundPlan) -> dict[str, str]:
    env = dict(os.environ)
    env["CODECZOO_REGISTRY"] = str(plan.work / "registry")
    env["CODECZOO_DATA"] = str(plan.data_root)
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_PARENT)] + [p for p in env.get("PYTHONPATH", "").split(
        os.pathsep) if p])
    env["PYTHONUNBUFFERED"] = "1"
    if plan.accelerator == "cpu":
        env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _python(*args: str) -> list[str]:
    return [sys.executable, "-m", "codeczoo", *args]


@dataclass
class Step:
    phase: str
    command: list[str]
    kill_at: float
    cwd: Optional[Path] = None  # default: the round's working folder


class Chains:
    """One chain of subprocesses per codec (fit, export, evaluate), the chains side by side;
    each step logs to its own file and is killed at its ``kill_at``; a chain stops at a failed
    step. ``codes`` maps ``"phase:codec"`` to exit codes, ``ended`` to end times."""

    def __init__(self, plan: RoundPlan):
        self.plan = plan
        self.codes: dict[str, int] = {}
        self.ended: dict[str, float] = {}

    def run(self, chains: dict[str, list[Step]]) -> None:
        pending = {name: list(steps) for name, steps in chains.items()}
        running: dict[str, tuple[Step, subprocess.Popen, Any]] = {}
        while pending or running:
            for name in list(pending):
                if name not in running:
                    step = pending[name].pop(0)
                    if not pending[name]:
                        del pending[name]
                    running[name] = (step, *self._start(name, step))
            for name, (step, proc, handle) in list(running.items()):
                code = proc.poll()
                if code is None and time.time() > step.kill_at:
                    proc.kill()
                    code = proc.wait()
                    handle.write("\ncodeczoo round: killed at its deadline\n")
                if code is None:
                    continue
                handle.close()
                key = f"{step.phase}:{name}"
                self.codes[key], self.ended[key] = code, time.time()
                del running[name]
                if code != 0:
                    pending.pop(name, None)  # the rest of this chain needs this step
            time.sleep(0.2)

    def _start(self, name: str, step: Step):
        handle = open(self.plan.work / "logs" / f"{name}-{step.phase}.log", "w")
        handle.write("$ " + " ".join(step.command) + "\n")
        handle.flush()
        proc = subprocess.Popen(step.command, stdout=handle, stderr=subprocess.STDOUT,
                                cwd=step.cwd or self.plan.work, env=_env(self.plan))
        return proc, handle


def probe_eval_seconds(plan: RoundPlan) -> float:
    """Coding time of a round's evaluation (each codec in its own process, side by side): one
    validation image encoded and decoded at the highest quality per codec on the device, scaled
    to every image and quality (coding time grows with the iterations), times 1.5."""
    import numpy as np
    import torch

    from .. import load
    from ..evaluation.data import find_images
    from ..io import read_image

    images = find_images(plan.data_root / "cxr" / "val", limit=plan.eval_limit)
    image = read_image(images[0])
    values = np.asarray(image.pixels)
    device = "cuda" if plan.accelerator == "gpu" else "cpu"
    top = max(plan.qualities)
    worst = 0.0
    for name in plan.codecs:
        codec = load(name, pretrained=True)
        codec.to(device)
        codec.encode(values[:64, :64], 1, bits_stored=image.bits_stored)  # kernels, allocator
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        codec.decode(codec.encode(values, top, bits_stored=image.bits_stored))
        if device == "cuda":
            torch.cuda.synchronize()
        per_code = (time.perf_counter() - t0) * sum(plan.qualities) / (top * len(plan.qualities))
        worst = max(worst, per_code * len(images) * len(plan.qualities))
        del codec
    if device == "cuda":
        torch.cuda.empty_cache()
    return 1.5 * worst  # coding alone (the caller adds the process start-up)


def prepare(plan: RoundPlan) -> None:
    """Private user registry (a copy of each codec's shipped folder: manifest, training record,
    weights files), result and log folders, and a working folder in which ``../shared/data`` is
    the data root (so recorded commands read as in docs/results.md)."""
    from ..registry import packaged_registry

    for name in plan.codecs:
        if not _shipped(name, "weights.json").get("weights"):
            raise CodeczooError(f"{name} ships no weights to continue from")
        shutil.copytree(packaged_registry() / name, plan.work / "registry" / name)
    for sub in ("logs", "runs", "repo/results/val"):
        (plan.work / sub).mkdir(parents=True, exist_ok=True)
    (plan.work / "shared").mkdir()
    (plan.work / "shared" / "data").symlink_to(plan.data_root.resolve(), target_is_directory=True)


def round_recipe(name: str) -> Path:
    from .recipes import recipes_root

    return recipes_root() / name / ROUND_RECIPE


def fit_command(plan: RoundPlan, name: str, deadline: float) -> list[str]:
    recipe = round_recipe(name)
    cmd = _python("fit", "--config", str(recipe),
                  "--trainer.default_root_dir", str(plan.work / "runs" / name),
                  "--budget.deadline", f"{deadline:.3f}",
                  "--data.init_args.data_root", str(plan.data_root))
    if plan.smoke:
        cmd += SMOKE_ARGS
    elif plan.accelerator == "cpu":
        cmd += ["--trainer.accelerator", "cpu", "--trainer.precision", "32-true",
                "--model.init_args.fused_adam", "false", "--model.init_args.compile", "null"]
    return cmd


def export_command(plan: RoundPlan, name: str) -> list[str]:
    """``codeczoo export --fp16`` of the run's last checkpoint (into the private user
    registry), with the recipe and the data source the shipped training record names."""
    source = (_shipped(name, "training.json").get("data") or {}).get(
        "source", "shared chest X-rays (cxr/train)")
    return _python("export", str(plan.work / "runs" / name / "checkpoints" / "last.ckpt"),
                   "--name", name, "--fp16", "--recipe", f"recipes/{name}/{ROUND_RECIPE}",
                   "--data-source", source)


def eval_command(plan: RoundPlan, name: str) -> list[str]:
    """``codeczoo eval --record`` on the validation split, run from a folder where
    ``../shared/data`` is the data root (the command reads as in docs/results.md)."""
    cmd = _python("eval", "../shared/data/cxr/val", "--codec", name, "--quality",
                  ",".join(str(q) for q in plan.qualities), "--record",
                  "-o", f"results/val/{name}.json")
    if plan.accelerator == "gpu":
        cmd += ["--device", "cuda"]
    if plan.eval_limit:
        cmd += ["--limit", str(plan.eval_limit)]
    return cmd


def run_round(minutes: float, out: str | os.PathLike, *, started: Optional[float] = None,
              codecs: Optional[Sequence[str]] = None, smoke: bool = False,
              data_root: Optional[str] = None, accelerator: str = "auto",
              qualities: Optional[Sequence[int]] = None, eval_limit: Optional[int] = None,
              keep_work: bool = False) -> dict:
    """Run a round (see the module docstring); returns the summary it writes."""
    started = float(started) if started else time.time()
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise CodeczooError(f"output folder {out} is not empty (a round never overwrites)")
    missing = missing_modules()
    if missing:
        raise CodeczooError("missing Python packages: " + ", ".join(missing)
                            + " (bring them as wheels: scripts/fetch_gpu_wheels.sh)")
    from .data import default_data_root

    root = Path(data_root) if data_root else default_data_root()
    for sub in ("cxr/train", "cxr/val"):
        if not (root / sub).is_dir():
            raise CodeczooError(f"no {sub} under the data root {root} (set CODECZOO_DATA)")
    import torch

    if accelerator == "auto":
        accelerator = "gpu" if torch.cuda.is_available() and not smoke else "cpu"
    if accelerator == "gpu" and not torch.cuda.is_available():
        raise CodeczooError("accelerator gpu asked for, but torch sees no CUDA device")
    names = list(codecs) if codecs else shipped_learned_codecs()
    if not names:
        raise CodeczooError(f"no learned codec ships weights and a recipes/<codec>/{ROUND_RECIPE}")
    for name in names:
        if not round_recipe(name).is_file():
            raise CodeczooError(f"{name} has no recipes/{name}/{ROUND_RECIPE}")
    plan = RoundPlan(minutes=float(minutes), started=started, out=out, codecs=names,
                     data_root=root, accelerator=accelerator,
                     qualities=list(qualities or ([1] if smoke else range(1, 9))),
                     eval_limit=eval_limit if eval_limit is not None else (1 if smoke else None),
                     smoke=smoke)
    timeline: dict[str, float] = {"started": started}
    from ..registry import REGISTRY_ENV

    saved_env = os.environ.get(REGISTRY_ENV)
    os.environ[REGISTRY_ENV] = str(plan.work / "registry")  # this process too: the probe
    try:
        prepare(plan)
        # a fresh process (export, eval) takes about as long to start as this one did (the
        # wrapper, imports, the private registry): on a busy CPU many times a GPU machine's
        startup = time.time() - started
        timeline["prepared"] = time.time()
        eval_s = probe_eval_seconds(plan) + max(20.0, 1.5 * startup)
        timeline["probed"] = time.time()
        export_s = max(EXPORT_RESERVE_S, 2 * startup)
        fit_deadline = plan.deadline - eval_s - export_s - PACK_RESERVE_S
        if fit_deadline - time.time() < (20 if smoke else 60):
            raise CodeczooError(
                f"{minutes} min leave {fit_deadline - time.time():.0f} s to train after start-up, "
                f"evaluation ({eval_s:.0f} s) and export: give the round more minutes")
        last_kill = plan.deadline - PACK_RESERVE_S  # nothing runs past this
        chains = {n: [Step("fit", fit_command(plan, n, fit_deadline),
                           min(fit_deadline + GRACE_S, last_kill)),
                      Step("export", export_command(plan, n),
                           min(plan.deadline - eval_s - PACK_RESERVE_S + GRACE_S, last_kill)),
                      Step("eval", eval_command(plan, n), last_kill, plan.work / "repo")]
                  for n in names}
        runner = Chains(plan)
        runner.run(chains)
        codes = runner.codes
        timeline.update({k: v for k, v in runner.ended.items()})
        pack(plan)
        summary = summarise(plan, codes, timeline, eval_s, fit_deadline)
        write_summary(plan, summary)
        return summary
    finally:
        if saved_env is None:
            os.environ.pop(REGISTRY_ENV, None)
        else:
            os.environ[REGISTRY_ENV] = saved_env
        if not keep_work:
            shutil.rmtree(plan.work, ignore_errors=True)


def _registry_files(plan: RoundPlan, name: str) -> tuple[dict, dict]:
    """The private registry's manifest entry in use and training record of ``name``."""
    folder = plan.work / "registry" / name
    manifest = folder / "weights.json"
    training = folder / "training.json"
    weights = json.loads(manifest.read_text())["weights"][0] if manifest.is_file() else {}
    return weights, (json.loads(training.read_text()) if training.is_file() else {})


def _evaluation_of(record: dict, weights_hash: str) -> dict:
    """The validation-split evaluation recorded for ``weights_hash`` (the last one), or {}."""
    found = [e for e in record.get("evaluations", [])
             if e.get("weights_hash") == weights_hash and "cxr/val" in (e.get("command") or "")]
    return found[-1] if found else {}


def _shipped_points(name: str) -> dict[int, dict]:
    """Validation points of the shipped weights (their recorded evaluation), by quality."""
    weights = _shipped(name, "weights.json").get("weights") or [{}]
    evaluation = _evaluation_of(_shipped(name, "training.json"), weights[0].get("weights_hash"))
    results = evaluation.get("results", {})
    return {q: {k: results[k][i] for k in ("bpp", "psnr", "ms-ssim") if k in results}
            for i, q in enumerate(evaluation.get("quality", []))}


def summarise(plan: RoundPlan, codes: dict[str, int], timeline: dict[str, float],
              eval_s: float, fit_deadline: float) -> dict:
    import torch

    from .. import __version__

    codecs = {}
    for name in plan.codecs:
        weights, training = _registry_files(plan, name)
        entry: dict[str, Any] = {"exit_codes": {k.split(":")[0]: v for k, v in codes.items()
                                                if k.endswith(":" + name)}}
        if codes.get(f"export:{name}") == 0:
            budget = training.get("time_budget") or {}
            config = _recipe_config(training.get("recipe_config"))
            batch = ((config.get("data") or {}).get("init_args") or {}).get("batch_size")
            entry.update(weights=weights.get("file"), sha256=weights.get("sha256"),
                         weights_hash=weights.get("weights_hash"),
                         steps_this_run=training.get("steps_this_run"),
                         steps_total=training.get("steps"), precision=training.get("precision"),
                         hardware=training.get("hardware"), wall_s=training.get("wall_time_s"),
                         steps_per_s=budget.get("steps_per_s_last") or budget.get("steps_per_s"),
                         batch=batch, time_budget=budget,
                         validation=training.get("validation"))
            if entry["steps_per_s"] and batch:
                entry["crops_per_s"] = entry["steps_per_s"] * batch
            evaluation = _evaluation_of(training, weights.get("weights_hash"))
            if evaluation:
                new = evaluation["results"]
                old = _shipped_points(name)
                rows = []
                for i, q in enumerate(evaluation["quality"]):
                    row = {"quality": q, "bpp": new["bpp"][i], "psnr": new["psnr"][i],
                           "ms-ssim": new["ms-ssim"][i] if "ms-ssim" in new else None}
                    if q in old and old[q].get("psnr") is not None and row["psnr"] is not None:
                        row.update(shipped_bpp=old[q]["bpp"], shipped_psnr=old[q]["psnr"],
                                   delta_psnr=row["psnr"] - old[q]["psnr"])
                    rows.append(row)
                entry["evaluation"] = {"command": evaluation.get("command"),
                                       "images": (evaluation.get("dataset") or {}).get("images"),
                                       "points": rows}
                deltas = [r["delta_psnr"] for r in rows if "delta_psnr" in r]
                if deltas and len(deltas) == len(rows):
                    entry["psnr_gain_every_quality"] = min(deltas) > 0
        codecs[name] = entry
    end = time.time()
    return {
        "round": {"minutes": plan.minutes, "started": plan.started, "finished": end,
                  "wall_s": end - plan.started, "within_budget": end <= plan.deadline,
                  "smoke": plan.smoke, "accelerator": plan.accelerator,
                  "eval_reserve_s": eval_s, "train_deadline_s": fit_deadline - plan.started,
                  "phases_s": {k: v - plan.started for k, v in timeline.items()},
                  "qualities": plan.qualities, "eval_images": plan.eval_limit or "all"},
        "environment": {"python": sys.version.split()[0], "torch": torch.__version__,
                        "codeczoo": __version__,
                        "device": torch.cuda.get_device_name(0) if plan.accelerator == "gpu"
                        else "cpu", "numpy": __import__("numpy").__version__},
        "codecs": codecs,
        "files": {"round.tar.gz": "registry/<codec>/ (weights.json, training.json, the new "
                                  "weights), results/val/, logs/, runs/<codec>/config.yaml"},
    }


def _recipe_config(text: Optional[str]) -> dict:
    if not text:
        return {}
    try:
        import yaml

        return yaml.safe_load(text) or {}
    except Exception:  # noqa: BLE001 - a summary field, never fatal
        return {}


def markdown(summary: dict) -> str:
    r = summary["round"]
    lines = [f"# codeczoo round: {r['minutes']} min on {summary['environment']['device']}",
             "", f"Wall time {r['wall_s']:.0f} s (budget {60 * r['minutes']:.0f} s, "
             f"{'within' if r['within_budget'] else 'OVER'} budget); phases (s from start): "
             + ", ".join(f"{k} {v:.0f}" for k, v in r["phases_s"].items()) + "."]
    for name, c in summary["codecs"].items():
        lines += ["", f"## {name}", ""]
        if "steps_this_run" not in c:
            lines.append(f"No weights exported (exit codes {c['exit_codes']}); see logs/ in the "
                         "tarball.")
            continue
        speed = (f", {c['steps_per_s']:.2f} steps/s" if c.get("steps_per_s") else "") + \
            (f" = {c['crops_per_s']:.0f} crops/s (batch {c['batch']})" if c.get("crops_per_s") else "")
        lines.append(f"{c['steps_this_run']} steps this run ({c['steps_total']} in all), "
                     f"{c['precision']}, {c['hardware']}{speed}. Weights `{c['weights']}`.")
        ev = c.get("evaluation")
        if ev:
            lines += ["", f"`{ev['command']}` ({ev['images']} images):", "",
                      "| quality | bpp | PSNR dB | MS-SSIM | shipped bpp | shipped PSNR | delta PSNR |",
                      "|---|---|---|---|---|---|---|"]
            for p in ev["points"]:
                def f(v, spec):
                    return "-" if v is None else format(v, spec)
                lines.append(f"| {p['quality']} | {f(p['bpp'], '.4f')} | {f(p['psnr'], '.2f')} | "
                             f"{f(p['ms-ssim'], '.4f')} | {f(p.get('shipped_bpp'), '.4f')} | "
                             f"{f(p.get('shipped_psnr'), '.2f')} | {f(p.get('delta_psnr'), '+.2f')} |")
            if "psnr_gain_every_quality" in c:
                lines += ["", "PSNR above the shipped weights at every quality: "
                          + ("yes" if c["psnr_gain_every_quality"] else "no")
                          + " (compare bpp too before shipping)."]
    return "\n".join(lines) + "\n"


def write_summary(plan: RoundPlan, summary: dict) -> None:
    (plan.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (plan.out / "summary.md").write_text(markdown(summary))


def pack(plan: RoundPlan) -> None:
    """``round.tar.gz`` into the output folder."""
    plan.out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(plan.out / "round.tar.gz", "w:gz") as tar:
        for name in plan.codecs:
            folder = plan.work / "registry" / name
            weights, _ = _registry_files(plan, name)
            for meta in ("weights.json", "training.json"):
                tar.add(folder / meta, f"registry/{name}/{meta}")
            if weights and _is_new(name, weights["file"]):  # the shipped file stays out
                tar.add(folder / weights["file"], f"registry/{name}/{weights['file']}")
            result = plan.work / "repo" / "results" / "val" / f"{name}.json"
            if result.is_file():
                tar.add(result, f"results/val/{name}.json")
            config = plan.work / "runs" / name / "config.yaml"
            if config.is_file():
                tar.add(config, f"runs/{name}/config.yaml")
        for log in sorted((plan.work / "logs").glob("*.log")):
            tar.add(log, f"logs/{log.name}")


def _is_new(name: str, weights: str) -> bool:
    """Whether ``weights`` is not one of the files the repository already ships."""
    from ..registry import packaged_registry

    return not (packaged_registry() / name / weights).is_file()
