"""Training recipes by name: the LightningCLI YAML files under ``recipes/<codec>/``.

The repository's top-level ``recipes/`` travels in the wheel as ``codeczoo._recipes``, so
``codeczoo fit --config sushmit2019-rnnconv/cxr-64-cpu`` works from an installed package as
well as from a checkout (a path to a YAML file works everywhere, as in any LightningCLI).
"""

from __future__ import annotations

import fnmatch
import importlib.util
from pathlib import Path

from ..errors import CodeczooError


def recipes_root() -> Path:
    """The packaged recipes folder (the checkout's ``recipes/`` in an editable install)."""
    spec = importlib.util.find_spec("codeczoo._recipes")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[2] / "recipes"


def list_recipes(pattern: str | None = None) -> list[str]:
    """Recipe names (``<codec>/<recipe>``), optionally filtered by a glob ``pattern``."""
    root = recipes_root()
    names = sorted(str(p.relative_to(root).with_suffix("")) for p in root.glob("*/*.yaml"))
    return [n for n in names if not pattern or fnmatch.fnmatch(n, pattern)]


def resolve_recipe(value: str) -> str:
    """A ``--config`` value: an existing file as given, else a packaged recipe's path."""
    if Path(value).is_file() or not value or value.startswith(("{", "[")):
        return value
    name = value[:-5] if value.endswith(".yaml") else value
    name = name[len("recipes/"):] if name.startswith("recipes/") else name
    candidate = recipes_root() / f"{name}.yaml"
    if candidate.is_file():
        return str(candidate)
    raise CodeczooError(f"--config {value}: no such file, and no packaged recipe of that name "
                        "(codeczoo list --recipes)")


def resolve_config_arguments(argv: list[str]) -> list[str]:
    """``argv`` with every ``--config X`` / ``--config=X`` resolved by :func:`resolve_recipe`."""
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--config" and i + 1 < len(argv):
            out += [arg, resolve_recipe(argv[i + 1])]
            i += 2
            continue
        if arg.startswith("--config="):
            arg = "--config=" + resolve_recipe(arg.split("=", 1)[1])
        out.append(arg)
        i += 1
    return out
