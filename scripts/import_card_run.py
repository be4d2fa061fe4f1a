"""Bring weights exported before the registry split (one ``card.json`` beside the safetensors
file, e.g. the 2026-11-28 H200 run in ../shared/gpu_runs/) into a registry folder of today's
layout, as ``codeczoo export`` would have written them:

* ``weights.json``: a new entry (file, sha256, weights_hash, arguments, dtype, size, fp16 notes)
  put first, the registry's earlier entries kept after it (older bitstreams keep decoding);
* ``training.json``: the run's training record (steps, minutes, hardware, precision, data,
  recipe, config, validation), whose ``history`` is rebuilt from the registry's own record of
  the weights the run continued from (:func:`codeczoo.training.export.training_history`), so
  earlier evaluations stay attached to the weights they measured; ``evaluations`` starts empty
  (``codeczoo eval --record`` adds them).

    python scripts/import_card_run.py ../shared/gpu_runs/2026-11-28-h200/sushmit2019-rnnconv \\
        sushmit2019-rnnconv --registry registry

The file's sha256 must match the old card and the run must have continued from the weights the
registry uses now; the weights hash is recomputed from the file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from safetensors.torch import load_file

from codeczoo.cards import WeightsEntry
from codeczoo.codec import state_dict_hash
from codeczoo.registry import MANIFEST, TRAINING, build, file_sha256
from codeczoo.training.export import training_history

RECORD_KEYS = ("steps", "steps_this_run", "epochs_this_run", "hardware", "devices", "precision",
               "wall_time_s", "gpu_minutes", "cpu_minutes", "data", "recipe_config", "checkpoint",
               "exported", "continued_from", "time_budget")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="folder with card.json and the weights it names")
    parser.add_argument("name", help="registered codec name")
    parser.add_argument("--registry", default="registry", help="registry folder to update")
    args = parser.parse_args(argv)
    run, folder = Path(args.run), Path(args.registry) / args.name
    card = json.loads((run / "card.json").read_text())
    weights = card["weights"]
    source = run / weights["file"]
    if file_sha256(source) != weights["sha256"]:
        sys.exit(f"{source}: sha256 does not match its card")
    model = build(args.name, **card["arguments"])
    model.load_state_dict({k: v.float() for k, v in load_file(str(source)).items()})
    weights_hash = state_dict_hash(model.state_dict()).hex()
    if weights_hash != weights["weights_hash"]:
        sys.exit(f"{source}: weights hash {weights_hash} differs from the card's")

    manifest = json.loads((folder / MANIFEST).read_text())
    current = manifest["weights"][0]
    previous = json.loads((folder / TRAINING).read_text())
    continued = (card["training"].get("continued_from") or {}).get("weights")
    if continued != current["file"]:
        sys.exit(f"the run continued from {continued}, the registry uses {current['file']}")

    entry = WeightsEntry(file=weights["file"], sha256=weights["sha256"], weights_hash=weights_hash,
                         arguments=card["arguments"], dtype=weights["dtype"],
                         size_bytes=weights["size_bytes"],
                         notes={k: weights[k] for k in ("fp16_max_abs_diff",
                                                        "fp16_max_psnr_delta_db", "fp16_check")
                                if k in weights})
    record = {k: card["training"][k] for k in RECORD_KEYS if k in card["training"]}
    record["history"] = training_history(previous, record)
    if "recipe" in card["training"]:
        record["recipe"] = card["training"]["recipe"]
    record["validation"] = card.get("validation", {})
    record["weights_hash"] = weights_hash
    record["evaluations"] = []

    shutil.copyfile(source, folder / weights["file"])
    manifest["weights"] = [entry.to_json()] + [e for e in manifest["weights"]
                                               if e["sha256"] != weights["sha256"]]
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    (folder / TRAINING).write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    print(f"{args.name}: {weights['file']} in use ({record['steps']} steps, history of "
          f"{len(record['history'])} runs); earlier weights kept: "
          + ", ".join(e["file"] for e in manifest["weights"][1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
