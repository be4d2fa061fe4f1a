"""Where learned entropy models live: ``<registry>/<codec>/entropy.json`` beside the codec.

A context model (:class:`~codeczoo.entropy.context_model.BinaryContextModel`) is trained on the
codes one set of codec weights produces, so each entry names those weights
(``base_weights_hash``) as well as its own (``weights_hash``, recorded in every bitstream it
codes).  ``entropy.json`` is the model's card::

    {"codec": NAME, "description": ..., "paper": ..., "models": [
        {"file": "entropy-<hash>.safetensors", "sha256": ..., "weights_hash": <16 hex>,
         "base_weights_hash": <16 hex>, "arguments": {...}, "training": {...},
         "evaluation": {...}}, ...]}

The first entry for a base is the one in use; older ones stay so that old files decode.  Entries
are searched in the user registry, then the packaged one (:func:`codeczoo.registry.registry_roots`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import WeightsError

ENTROPY_FILE = "entropy.json"
DESCRIPTION = ("Learned entropy stage: a fixed-point convolutional context model predicts every "
               "code bit from earlier iterations and already-decoded neighbours (checkerboard "
               "passes); bits are coded with CompressAI's rANS.")
PAPER = ("Toderici et al., Full Resolution Image Compression with Recurrent Neural Networks, "
         "CVPR 2017 (arXiv:1608.05148): learned binary entropy coding of the codes")


@dataclass(frozen=True)
class EntropyEntry:
    codec: str
    root: Path
    entry: dict[str, Any]

    @property
    def path(self) -> Path:
        return self.root / self.codec / self.entry["file"]


def entries(codec: str) -> list[EntropyEntry]:
    from ..registry import read_json, registry_roots

    found = []
    for root in registry_roots():
        path = root / codec / ENTROPY_FILE
        if path.is_file():
            card = read_json(path, "entropy card")
            found += [EntropyEntry(codec, root, e) for e in card.get("models", [])]
    return found


def for_base(codec: str, base_hash: str) -> EntropyEntry | None:
    """The entropy model in use for the codec weights ``base_hash`` (hex), if any."""
    return next((e for e in entries(codec) if e.entry["base_weights_hash"] == base_hash), None)


def by_hash(codec: str, weights_hash: str) -> EntropyEntry | None:
    """The entropy model whose own weights hash (hex) a bitstream records, if any."""
    return next((e for e in entries(codec) if e.entry["weights_hash"] == weights_hash), None)


def read(located: EntropyEntry):
    """The verified :class:`BinaryContextModel` of an entry (CPU, float32, eval mode)."""
    from safetensors.torch import load_file

    from ..registry import file_sha256
    from .context_model import BinaryContextModel

    path = located.path
    if not path.is_file():
        raise WeightsError(f"entropy model {path} of {located.codec!r} is missing")
    if file_sha256(path) != located.entry["sha256"]:
        raise WeightsError(f"entropy model {path.name} does not match its sha256: refusing it")
    model = BinaryContextModel(**located.entry["arguments"])
    model.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
    return model.eval()


def model_hash(model) -> str:
    """16 hex digits identifying a context model's weights (what bitstreams record)."""
    from ..codec import state_dict_hash

    return state_dict_hash(model.state_dict()).hex()


def add_entry(root: Path, codec: str, model, base_hash: str, training: dict,
              evaluation: dict | None = None) -> Path:
    """Write ``model`` into ``root/<codec>/`` and put it first in ``entropy.json`` (the one in
    use for ``base_hash``); returns the weights file."""
    from safetensors.torch import save_file

    from ..atomic import write_text
    from ..registry import file_sha256

    folder = Path(root) / codec
    folder.mkdir(parents=True, exist_ok=True)
    digest = model_hash(model)
    path = folder / f"entropy-{digest[:8]}.safetensors"
    save_file({k: v.detach().float().contiguous() for k, v in model.state_dict().items()}, str(path))
    card_path = folder / ENTROPY_FILE
    card = (json.loads(card_path.read_text()) if card_path.is_file()
            else {"codec": codec, "description": DESCRIPTION, "paper": PAPER, "models": []})
    card["models"] = [m for m in card["models"] if m["weights_hash"] != digest]
    card["models"].insert(0, {
        "file": path.name, "sha256": file_sha256(path), "weights_hash": digest,
        "base_weights_hash": base_hash, "arguments": model.arguments(), "training": training,
        "evaluation": evaluation or {}})
    write_text(card_path, json.dumps(card, indent=2) + "\n", overwrite=True)
    return path
