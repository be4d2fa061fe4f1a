"""Checkpoint -> registry: safetensors weights named by their sha256, a manifest entry, and
the training record.

``codeczoo export CKPT --name NAME`` (see :func:`export_checkpoint`) writes into a registry
folder (the user registry by default, ``--registry DIR`` to choose, e.g. the repository's
``registry/`` to ship weights; never an installed package):

* ``NAME/NAME-<first 8 hex of sha256>.safetensors`` (no pickle);
* ``NAME/weights.json``: a :class:`~codeczoo.cards.WeightsEntry` for the new file, put first
  (the weights in use), earlier entries kept after it so bitstreams written with them still
  decode. An entry holds the complete constructor arguments the checkpoint was trained with
  (entry defaults, then the registry weights' when training started from them, then
  ``codec_args``), so ``codeczoo.load(NAME)`` rebuilds exactly that architecture, the sha256,
  the ``weights_hash`` bitstream headers carry and, for ``--fp16``, what fp16 storage changes
  on a real sample image (:func:`fp16_check`);
* ``NAME/training.json``: the LightningCLI config, the data description, optimiser steps,
  hardware, wall time and device-minutes, cumulative over runs started with
  ``init_from_registry``; ``validation``, the ``val/*`` metrics logged last; and a ``history``
  of the earlier runs this one continued, each with the evaluations ``codeczoo eval --record``
  measured on its weights: what each training minute bought.

Codecs with CompressAI entropy bottlenecks get ``update(force=True, update_quantiles=True)``
first: the bottlenecks' quantiles (tails and medians) are solved from the learned densities, as
the auxiliary loss only approximates, and the CDF tables travel with the weights so ``compress``
works after loading.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..errors import CodeczooError, WeightsError
from ..atomic import write_bytes, write_text
from ..cards import WeightsEntry
from ..registry import (MANIFEST, REGISTRY_ENV, build, codec_class, current_weights, is_installed_location, read_json, training_file, user_registry)
from .module import CKPT_KEY

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "chest_1_8bit.png"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return str(value)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a Lightning checkpoint written by :class:`~codeczoo.training.module.CodecModule`."""
    path = Path(path)
    if not path.is_file():
        raise CodeczooError(f"checkpoint {path} not found")
    try:
        # A Lightning checkpoint pickles its hyper-parameters; only load checkpoints you trust.
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file
        raise CodeczooError(f"{path} is not a readable PyTorch checkpoint ({exc})") from exc
    if not isinstance(ckpt, dict) or CKPT_KEY not in ckpt or "state_dict" not in ckpt:
        raise CodeczooError(f"{path} is not a checkpoint of codeczoo's CodecModule "
                            "(no codeczoo entry)")
    return ckpt


def model_from_checkpoint(ckpt: dict, name: str | None = None):
    """The codec of a checkpoint (as zoo entry ``name``, default the one it trained), built with
    its arguments and weights, in eval mode."""
    info = ckpt[CKPT_KEY]
    model = build(name or info["codec"], **info["arguments"])
    state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise WeightsError(f"checkpoint weights do not fit {info['codec']}: {first}") from exc
    return model.eval()


def _sample_input(model) -> torch.Tensor:
    """A real chest X-ray crop (the package's sample) sized for the codec, in [0, 1]."""
    from .. import intensity
    from ..io import read_image

    image = read_image(SAMPLE)
    values = intensity.to_unsigned(image.pixels, image.spec)
    step = max(16, model.spatial_multiple)
    side = max(step, min(256, *values.shape) // step * step)
    return intensity.to_unit(values[:side, :side], image.bits_stored)


def _reconstructions(model, x: torch.Tensor) -> dict:
    """quality -> x_hat; every quality of a recurrent codec (one pass at the highest: the
    iterations are progressive, ``x_hat_q = x - r_q``), else the single reconstruction."""
    with torch.no_grad():
        if model.progressive:
            residuals = model(x, iterations=model.max_iterations)["residuals"]
            return {q: x - residuals[q - 1] for q in range(1, model.max_iterations + 1)}
        return {None: model(x)["x_hat"]}


def fp16_check(model, name: str, arguments: dict, state_fp16: dict) -> dict:
    """What storing the weights in fp16 costs, measured on the package's real sample X-ray.

    Returns ``max_abs_diff``: the largest |x_hat(fp32 weights) - x_hat(fp16-rounded weights)|
    in [0, 1] units over every quality, and ``max_psnr_delta_db``: the largest |PSNR change| (dB,
    8-bit reconstructions against the 8-bit original, torchmetrics PSNR) over every quality.
    """
    from .. import intensity
    from ..metrics import psnr

    def stored(t: torch.Tensor) -> np.ndarray:  # the 8-bit integers a decoder would write
        return intensity.from_unit(t, 8)

    def delta(a: float, b: float) -> float:
        return 0.0 if a == b else abs(a - b)  # both inf (exact) counts as no change

    x = _sample_input(model)
    original = stored(x)
    rounded = build(name, **arguments)
    rounded.load_state_dict({k: v.float() for k, v in state_fp16.items()})
    rounded.eval()
    reference, candidate = _reconstructions(model, x), _reconstructions(rounded, x)
    max_abs = max(float((candidate[q] - reference[q]).abs().max()) for q in reference)
    max_delta = max(delta(psnr(original, stored(candidate[q]), 8),
                          psnr(original, stored(reference[q]), 8)) for q in reference)
    return {"max_abs_diff": max_abs, "max_psnr_delta_db": max_delta}


def export_checkpoint(checkpoint: str | os.PathLike, name: str, fp16: bool = False,
                      registry: Optional[str | os.PathLike] = None,
                      recipe: Optional[str] = None, data_source: Optional[str] = None
                      ) -> tuple[Path, WeightsEntry, dict]:
    """Write the checkpoint's codec weights into ``registry`` (default: the user registry).

    ``name`` must be a registered codec of the same class the checkpoint trained. ``recipe``
    (the YAML file the run used) and ``data_source`` (where the images come from, their license
    and split) are recorded in the training record. Returns the weights file, its entry and the
    training record.
    """
    from safetensors.torch import save as safetensors_bytes

    root = Path(registry) if registry else user_registry()
    if is_installed_location(root):
        raise CodeczooError(f"{root} is inside an installed package: export to a user registry "
                            f"(${REGISTRY_ENV}, default {user_registry()}) or a checkout's registry/")
    ckpt = read_checkpoint(checkpoint)
    info = ckpt[CKPT_KEY]
    target_cls = codec_class(name)
    if target_cls is not codec_class(info["codec"]):
        raise CodeczooError(f"checkpoint trained {info['codec']} ({codec_class(info['codec']).__name__}); "
                            f"{name} is a different class ({target_cls.__name__})")
    model = model_from_checkpoint(ckpt, name)
    from compressai.models import CompressionModel

    notes: dict[str, Any] = {}
    if isinstance(model, CompressionModel):
        # CDF tables for compress(); no-op without entropy bottlenecks. The bottlenecks'
        # quantiles are solved from the learned densities by bisection (CompressAI's
        # update_quantiles): what the auxiliary loss only approaches, exact after short runs too.
        with torch.no_grad():
            model.update(force=True, update_quantiles=True)
        if any(n.endswith("quantiles") for n, _ in model.named_parameters()):
            notes["quantiles"] = ("solved at export by bisection on the learned densities "
                                  "(CompressAI update(update_quantiles=True))")
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    dtype = "float32"
    if fp16:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        dtype = "float16"
        own = model.fp16_effect(info["arguments"], state)  # a codec that measures it its own way
        if own is not None:
            notes = {**notes, **own}
        else:
            check = fp16_check(model, name, info["arguments"], state)
            notes = {**notes, "fp16_max_abs_diff": check["max_abs_diff"],
                     "fp16_max_psnr_delta_db": check["max_psnr_delta_db"],
                     "fp16_check": "fp16-stored vs fp32 weights on codeczoo/samples/"
                                   f"{SAMPLE.name}, every quality: max |x_hat| difference in "
                                   "[0, 1] units and max |PSNR change| in dB (8-bit "
                                   "reconstructions)"}

    folder = root / name
    data = safetensors_bytes(state, metadata={"codec": name, "dtype": dtype})
    sha = hashlib.sha256(data).hexdigest()
    final = folder / f"{name}-{sha[:8]}.safetensors"
    write_bytes(final, data, overwrite=True)  # same name = same bytes

    entry = WeightsEntry(file=final.name, sha256=sha,
                         weights_hash=_loaded_weights_hash(name, info["arguments"], state),
                         arguments=_jsonable(info["arguments"]), dtype=dtype,
                         size_bytes=final.stat().st_size, notes=notes)
    manifest_path = folder / MANIFEST
    earlier = []
    if manifest_path.is_file():
        earlier = [e for e in read_json(manifest_path, "weights manifest").get("weights", [])
                   if e.get("sha256") != sha]
    _write_json(manifest_path, {"codec": name, "weights": [entry.to_json(), *earlier]})

    training_path = folder / training_file(name, info["arguments"])
    previous = read_json(training_path, "training record") if training_path.is_file() else {}
    record = training_record(ckpt, checkpoint)
    history = training_history(previous, record)
    if history:
        record["history"] = history
    if recipe:
        record["recipe"] = str(recipe)
    if data_source:
        record["data"]["source"] = data_source
    metrics = {k: v for k, v in info.get("metrics", {}).items() if k.startswith("val/")}
    record["validation"] = _jsonable({"step": info.get("validation_step"), "metrics": metrics}
                                     if metrics else {})
    record["weights_hash"] = entry.weights_hash
    record["evaluations"] = []
    _write_json(training_path, record)
    return final, entry, record


def record_evaluation(name: str, evaluation: dict) -> list[Path]:
    """Add an evaluation of the weights in use to their training record (``eval --record``).

    Where each quality is its own network (``model_per_quality``), each quality's results go to
    that network's record (``training-q<quality>.json``), checked against its own weights hash
    (``evaluation["weights_hashes"]``, one per quality). Returns the records written.
    """
    if codec_class(name).model_per_quality:
        hashes = evaluation.get("weights_hashes") or []
        if len(hashes) != len(evaluation["quality"]):
            raise CodeczooError("the evaluation has no weights hash per quality")
        targets = [(current_weights(name, int(q)), _one_quality(evaluation, i))
                   for i, q in enumerate(evaluation["quality"])]
    else:
        targets = [(current_weights(name), evaluation)]
    for located, part in targets:
        if located is None:
            raise CodeczooError(f"{name} has no registry weights to record an evaluation for"
                                + (f" (quality {part['quality'][0]})"
                                   if codec_class(name).model_per_quality else ""))
        if part.get("weights_hash") != located.entry.weights_hash:
            raise CodeczooError("the evaluation was not measured on the weights in use")
        if is_installed_location(located.root):
            raise CodeczooError(f"the weights of {name} live in an installed package "
                                f"({located.root}); record evaluations in a checkout or user "
                                "registry")
    paths = []
    for located, part in targets:
        path = located.root / located.codec / training_file(located.codec, located.entry.arguments)
        record = read_json(path, "training record") if path.is_file() else {}
        record["evaluations"] = [e for e in record.get("evaluations", [])
                                 if e.get("command") != part.get("command")] + [part]
        _write_json(path, record)
        paths.append(path)
    return paths


def _one_quality(evaluation: dict, index: int) -> dict:
    """The part of an evaluation over several qualities that measured quality number ``index``."""
    part = {k: v for k, v in evaluation.items() if k != "weights_hashes"}
    part["quality"] = [evaluation["quality"][index]]
    part["weights_hash"] = evaluation["weights_hashes"][index]
    part["results"] = {k: [v[index]] for k, v in evaluation["results"].items()}
    return part


def _write_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n", overwrite=True)


def _loaded_weights_hash(name: str, arguments: dict, state: dict) -> str:
    """``weights_hash`` (hex) of the codec as ``codeczoo.load(name)`` rebuilds it."""
    rebuilt = build(name, **arguments)
    rebuilt.load_state_dict(state)
    return rebuilt.weights_hash().hex()


def training_history(previous: dict, record: dict) -> list[dict]:
    """The ``history`` of a continued run: the previous record's history plus its own last run.

    Each entry holds the cumulative steps and device-minutes at that point and the evaluations
    ``codeczoo eval --record`` measured on those very weights (same ``weights_hash``), so the
    record shows what each training minute bought. A run that did not start from the
    registry's weights starts a new history (empty).
    """
    if "continued_from" not in record:
        return []
    entry = {key: previous.get(key) for key in
             ("steps", "steps_this_run", "cpu_minutes", "gpu_minutes", "hardware", "precision",
              "recipe", "exported", "weights_hash")}
    entry["weights"] = record["continued_from"].get("weights")
    evaluations = []
    for evaluation in previous.get("evaluations", []):
        if evaluation.get("weights_hash") != previous.get("weights_hash"):
            continue
        results = evaluation.get("results", {})
        evaluations.append({"command": evaluation.get("command"),
                            "quality": evaluation.get("quality"),
                            **{k: results[k] for k in ("bpp", "psnr", "ms-ssim") if k in results}})
    if evaluations:
        entry["evaluations"] = evaluations
    return list(previous.get("history", [])) + [entry]


def training_record(ckpt: dict, checkpoint_path) -> dict:
    """The training record; steps, wall time and device-minutes add up over runs that
    started from the registry's previous weights (``init_from_registry``)."""
    info = ckpt[CKPT_KEY]
    previous = (info.get("init_from") or {}).get("training") or {}
    steps = int(info.get("global_step", ckpt.get("global_step", 0)))
    wall = float(info.get("wall_time_s", 0.0))
    minutes = float(info.get("device_minutes", 0.0))
    unit = "gpu_minutes" if info.get("accelerator") == "gpu" else "cpu_minutes"
    record = {
        "steps": steps + int(previous.get("steps", 0)),
        "steps_this_run": steps,
        "epochs_this_run": int(ckpt.get("epoch", 0)),
        "hardware": info.get("hardware"),
        "devices": info.get("devices"),
        "precision": info.get("precision"),
        "wall_time_s": wall + float(previous.get("wall_time_s", 0.0)),
        "gpu_minutes": float(previous.get("gpu_minutes", 0.0)),
        "cpu_minutes": float(previous.get("cpu_minutes", 0.0)),
        "data": _jsonable(info.get("data")),
        "recipe_config": info.get("recipe_config"),
        "checkpoint": Path(checkpoint_path).name,
        "exported": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    record[unit] += minutes
    budget = (ckpt.get("callbacks") or {}).get("TimeBudget") or {}
    if budget.get("plan"):
        record["time_budget"] = _jsonable(budget["plan"])
    if info.get("lmbda") is not None:  # the rate-distortion trade-off trained for
        record["lmbda"] = info["lmbda"]
    if previous:
        record["continued_from"] = {"weights": (info.get("init_from") or {}).get("weights", {})
                                    .get("file"), "steps": int(previous.get("steps", 0))}
    return record
