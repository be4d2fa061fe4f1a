"""Codec names -> classes, codec cards and pretrained weights.

* :func:`register_codec` is the one decorator a codec class needs: it names the class, adds it
  to codeczoo's registry and, for ``compressai.models.CompressionModel`` subclasses, to
  ``compressai.registry.MODELS`` so CompressAI's own tools build it by name.
* Cards live in ``registry/<name>/card.json`` at the top of the repository (override the folder
  with ``CODECZOO_REGISTRY``). A card describes the codec (paper, arguments, rate table, input
  format) and, once trained, its weights file and sha256.
* Weights are safetensors (no pickle) and are refused unless their sha256 matches the card.
"""

from __future__ import annotations

import fnmatch
import hashlib
import inspect
import json
import os
from pathlib import Path
from typing import Any

from .errors import UnknownCodecError, WeightsError

_CODECS: dict[str, type] = {}

REGISTRY_ENV = "CODECZOO_REGISTRY"


def registry_root() -> Path:
    """Folder that holds ``<codec>/card.json`` and the weights (``CODECZOO_REGISTRY`` wins)."""
    env = os.environ.get(REGISTRY_ENV)
    return Path(env) if env else Path(__file__).resolve().parent.parent / "registry"


def register_codec(name: str):
    """Class decorator: register a codec under ``name`` (and in CompressAI's registry).

    Example::

        @register_codec("my-codec")
        class MyCodec(CompressionModel, Codec): ...

    After this, ``codeczoo.load("my-codec")``, the command line and the evaluation tools know it.
    """

    def decorator(cls: type) -> type:
        if name in _CODECS and _CODECS[name] is not cls:
            raise ValueError(f"codec name {name!r} is already registered by {_CODECS[name].__name__}")
        cls.codec_name = name
        _CODECS[name] = cls
        try:
            from compressai.models import CompressionModel
            from compressai.registry import register_model

            if issubclass(cls, CompressionModel):
                register_model(name)(cls)
        except ImportError:  # pragma: no cover - compressai is a hard dependency
            pass
        return cls

    return decorator


def codec_class(name: str) -> type:
    try:
        return _CODECS[name]
    except KeyError:
        known = ", ".join(sorted(_CODECS)) or "none"
        raise UnknownCodecError(f"unknown codec {name!r} (registered: {known})") from None


def _card_path(name: str) -> Path:
    return registry_root() / name / "card.json"


def read_card_file(path: Path) -> dict[str, Any]:
    """Parse one ``card.json``; a damaged card is a one-line :class:`WeightsError`."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise WeightsError(f"card {path} is unreadable ({exc})") from exc


def get_card(name: str) -> dict[str, Any]:
    """The codec's card: ``registry/<name>/card.json``, or one derived from the class.

    A user's own codec without a card file gets a minimal card (name, class, docstring, default
    arguments) so every tool can still describe it.
    """
    cls = codec_class(name)
    path = _card_path(name)
    card = read_card_file(path) if path.is_file() else {}
    card.setdefault("name", name)
    card.setdefault("class", f"{cls.__module__}.{cls.__qualname__}")
    card.setdefault("description", docstring_summary(cls))
    card.setdefault("arguments", default_arguments(cls))
    return card


def docstring_summary(obj) -> str:
    """The first paragraph of ``obj``'s docstring on one line: a whole sentence, never the
    first line of one that wraps (a card's description)."""
    return " ".join((inspect.getdoc(obj) or "").split("\n\n")[0].split())


def update_card(name: str, key: str, value: Any) -> Path:
    """Set one top-level field of ``registry/<name>/card.json`` (written atomically)."""
    codec_class(name)
    path = _card_path(name)
    card = read_card_file(path) if path.is_file() else get_card(name)
    card[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)
    return path


def default_arguments(cls: type) -> dict[str, Any]:
    """The constructor's keyword defaults (what a card records as the architecture)."""
    out = {}
    for pname, param in inspect.signature(cls.__init__).parameters.items():
        if pname == "self" or param.default is inspect.Parameter.empty:
            continue
        if isinstance(param.default, (int, float, str, bool, type(None), tuple, list)):
            out[pname] = list(param.default) if isinstance(param.default, tuple) else param.default
    return out


def has_pretrained(name: str) -> bool:
    card = get_card(name)
    weights = card.get("weights")
    return bool(weights) and (registry_root() / name / weights["file"]).is_file()


def list_codecs(pattern: str | None = None, pretrained: bool | None = None) -> list[str]:
    """Registered codec names, optionally filtered by a glob ``pattern`` and by whether
    pretrained weights ship with them (``pretrained=True``) or not (``False``)."""
    names = sorted(_CODECS)
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    if pretrained is not None:
        names = [n for n in names if has_pretrained(n) == pretrained]
    return names


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pretrained_state_dict(name: str) -> tuple[dict, dict[str, Any]]:
    """Load the verified pretrained weights of ``name`` (float32) and the arguments they need."""
    from safetensors.torch import load_file

    card = get_card(name)
    weights = card.get("weights")
    if not weights:
        raise WeightsError(f"codec {name!r} has no pretrained weights (see registry/{name}/card.json)")
    path = registry_root() / name / weights["file"]
    if not path.is_file():
        raise WeightsError(f"weights file {path} named by the card of {name!r} is missing")
    actual = file_sha256(path)
    if actual != weights["sha256"]:
        raise WeightsError(
            f"weights {path.name} have sha256 {actual[:16]}..., the card expects "
            f"{weights['sha256'][:16]}...: refusing to load them")
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    return state, dict(card.get("arguments", {}))


def load(name: str, quality: int | None = None, pretrained: bool = False, **kwargs):
    """Build the codec ``name``; with ``pretrained=True`` load its verified weights.

    ``quality`` sets the default rate used by ``encode``; ``kwargs`` override constructor
    arguments (with pretrained weights only those that do not change the architecture).
    The model is returned in eval mode.
    """
    cls = codec_class(name)
    if pretrained:
        state, arguments = pretrained_state_dict(name)
        arguments.update(kwargs)
        model = cls(**arguments)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise WeightsError(f"weights of {name!r} do not fit its architecture: {first}") from exc
    else:
        model = cls(**kwargs)
    if hasattr(model, "eval"):
        model.eval()
    if quality is not None:
        model.default_quality = model.check_quality(quality)
    return model
