"""Checkpoint -> registry: safetensors weights named by their sha256, and the codec card.

``codeczoo export CKPT --name NAME`` (see :func:`export_checkpoint`) writes
``registry/NAME/NAME-<first 8 hex of sha256>.safetensors`` (no pickle) and updates
``registry/NAME/card.json``, keeping its other fields:

* ``arguments``: the complete constructor arguments the checkpoint was trained with (class
  defaults, then the card's when training started from the registry, then ``codec_args``), so
  ``codeczoo.load(NAME, pretrained=True)`` rebuilds exactly that architecture;
* ``weights``: ``{"file", "sha256", "dtype", "size_bytes"}`` (and, for ``--fp16``, the largest
  reconstruction and PSNR differences fp16 storage causes on a real sample image, see
  :func:`fp16_check`);
* ``training``: the LightningCLI config, the data description, optimiser steps, hardware,
  wall time and device-minutes, cumulative over runs started with ``init_from_registry``, and
  a ``history`` of the earlier runs this one continued, each with the validation results
  ``codeczoo eval --card`` measured on its weights: what each training minute bought;
* ``validation``: the ``val/*`` metrics logged last before the checkpoint was written.

Codecs with CompressAI entropy bottlenecks get ``update(force=True)`` first, so their CDF tables
travel with the weights and ``compress`` works after loading.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..errors import CodeczooError, WeightsError
from ..io.image import _umask
from ..registry import codec_class, file_sha256, get_card, read_card_file, registry_root
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


def model_from_checkpoint(ckpt: dict):
    """The codec of a checkpoint, built with its arguments and weights, in eval mode."""
    info = ckpt[CKPT_KEY]
    cls = codec_class(info["codec"])
    model = cls(**info["arguments"])
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
    step = int(getattr(model, "downsampling", 64))
    side = max(step, min(256, *values.shape) // step * step)
    return intensity.to_unit(values[:side, :side], image.bits_stored)


def _reconstructions(model, x: torch.Tensor) -> dict:
    """quality -> x_hat; every quality of a recurrent codec, else the single reconstruction."""
    with torch.no_grad():
        if hasattr(model, "max_iterations"):
            return {q: model(x, iterations=q)["x_hat"] for q in range(1, model.max_iterations + 1)}
        return {None: model(x)["x_hat"]}


def fp16_check(model, arguments: dict, state_fp16: dict) -> dict:
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
    rounded = type(model)(**arguments)
    rounded.load_state_dict({k: v.float() for k, v in state_fp16.items()})
    rounded.eval()
    reference, candidate = _reconstructions(model, x), _reconstructions(rounded, x)
    max_abs = max(float((candidate[q] - reference[q]).abs().max()) for q in reference)
    max_delta = max(delta(psnr(original, stored(candidate[q]), 8),
                          psnr(original, stored(reference[q]), 8)) for q in reference)
    return {"max_abs_diff": max_abs, "max_psnr_delta_db": max_delta}


def export_checkpoint(checkpoint: str | os.PathLike, name: str, fp16: bool = False,
                      registry: Optional[str | os.PathLike] = None,
                      recipe: Optional[str] = None, data_source: Optional[str] = None) -> dict:
    """Write the checkpoint's codec weights and card into ``registry/NAME``; return the card.

    ``name`` must be a registered codec of the same class the checkpoint trained. ``recipe``
    (the YAML file the run used) and ``data_source`` (where the images come from, their license
    and split) are recorded on the card's training record.
    """
    from safetensors.torch import save_file

    ckpt = read_checkpoint(checkpoint)
    info = ckpt[CKPT_KEY]
    target_cls = codec_class(name)
    if target_cls is not codec_class(info["codec"]):
        raise CodeczooError(f"checkpoint trained {info['codec']} ({codec_class(info['codec']).__name__}); "
                            f"{name} is a different class ({target_cls.__name__})")
    model = model_from_checkpoint(ckpt)
    from compressai.models import CompressionModel

    if isinstance(model, CompressionModel):
        model.update(force=True)  # CDF tables for compress(); no-op without entropy bottlenecks
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    dtype = "float32"
    fp16_result = None
    own_check: dict = {}
    if fp16:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        dtype = "float16"
        if hasattr(model, "fp16_check"):  # a codec that measures fp16's effect its own way
            own_check = model.fp16_check(info["arguments"], state)
        else:
            fp16_result = fp16_check(model, info["arguments"], state)

    root = Path(registry) if registry else registry_root()
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".safetensors.tmp", delete=False) as tmp:
        tmp_path = Path(tmp.name)
    try:
        save_file(state, str(tmp_path), metadata={"codec": name, "dtype": dtype})
        sha = file_sha256(tmp_path)
        final = folder / f"{name}-{sha[:8]}.safetensors"
        os.chmod(tmp_path, 0o666 & ~_umask())  # temp files are 0600; weights are for everyone
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()

    card_path = folder / "card.json"
    if card_path.is_file():
        card = read_card_file(card_path)
    else:
        card = get_card(name)  # name, class, description, default arguments
    previous = dict(card)
    card["arguments"] = _jsonable(info["arguments"])
    if hasattr(model, "rate_table") and "rate_table" in card:
        card["rate_table"] = _jsonable(model.rate_table())
    weights = {"file": final.name, "sha256": sha, "dtype": dtype,
               "size_bytes": final.stat().st_size}
    if fp16_result is not None:
        weights["fp16_max_abs_diff"] = fp16_result["max_abs_diff"]
        weights["fp16_max_psnr_delta_db"] = fp16_result["max_psnr_delta_db"]
        weights["fp16_check"] = ("fp16-stored vs fp32 weights on codeczoo/samples/"
                                 f"{SAMPLE.name}, every quality: max |x_hat| difference in [0, 1] "
                                 "units and max |PSNR change| in dB (8-bit reconstructions)")
    weights.update(own_check)
    # what a bitstream's header carries: lets a reader match a .czoo file to these weights
    weights["weights_hash"] = _loaded_weights_hash(model, info["arguments"], state)
    card["weights"] = weights
    card["training"] = training_record(ckpt, checkpoint)
    history = training_history(previous, card["training"])
    if history:
        card["training"]["history"] = history
    card.pop("evaluation", None)  # measured on the previous weights (kept in the history)
    if recipe:
        card["training"]["recipe"] = str(recipe)
    if data_source:
        card["training"]["data"]["source"] = data_source
    metrics = {k: v for k, v in info.get("metrics", {}).items() if k.startswith("val/")}
    card["validation"] = _jsonable({"step": info.get("validation_step"), "metrics": metrics}
                                   if metrics else {})
    tmp_card = card_path.with_suffix(".json.tmp")
    tmp_card.write_text(json.dumps(card, indent=2) + "\n")
    os.replace(tmp_card, card_path)
    return card


def _loaded_weights_hash(model, arguments: dict, state: dict) -> str:
    """``weights_hash`` (hex) of the codec as ``codeczoo.load(pretrained=True)`` rebuilds it."""
    rebuilt = type(model)(**arguments)
    rebuilt.load_state_dict(state)
    return rebuilt.weights_hash().hex()


def training_history(previous_card: dict, record: dict) -> list[dict]:
    """The ``history`` of a continued run: the previous card's history plus its own last run.

    Each entry holds the cumulative steps and device-minutes at that point and, when
    ``codeczoo eval --card`` measured those very weights (same ``weights_hash``), the
    validation rate-distortion points, so a card shows what each training minute bought.
    A run that did not start from the registry's weights starts a new history (empty).
    """
    if "continued_from" not in record:
        return []
    training = previous_card.get("training") or {}
    weights = previous_card.get("weights") or {}
    entry = {key: training.get(key) for key in
             ("steps", "steps_this_run", "cpu_minutes", "gpu_minutes", "hardware", "precision",
              "recipe", "exported")}
    entry["weights"] = weights.get("file")
    evaluation = previous_card.get("evaluation") or {}
    if evaluation and evaluation.get("weights_hash") == weights.get("weights_hash"):
        results = evaluation.get("results", {})
        entry["evaluation"] = {"command": evaluation.get("command"),
                               "quality": evaluation.get("quality"),
                               **{k: results[k] for k in ("bpp", "psnr", "ms-ssim") if k in results}}
    return list(training.get("history", [])) + [entry]


def training_record(ckpt: dict, checkpoint_path) -> dict:
    """The card's ``training`` entry; steps, wall time and device-minutes add up over runs that
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
    if previous:
        record["continued_from"] = {"weights": (info.get("init_from") or {}).get("weights", {})
                                    .get("file"), "steps": int(previous.get("steps", 0))}
    return record
