"""The zoo: codec names -> (class, card), and the weights that ship or that a user exported.

* :func:`register_codec` names a class and declares its :class:`~codeczoo.cards.CodecCard`; one
  class may be registered under several names with different ``card.arguments`` (variants are
  data). ``compressai.registry.MODELS`` learns the names too, so CompressAI's tools build them.
* Weights are data, in *registries*: folders holding ``<codec>/weights.json`` (a list of
  :class:`~codeczoo.cards.WeightsEntry`, the first one in use, the others kept so that older
  bitstreams still decode), the safetensors files, and ``<codec>/training.json`` (how the
  weights were trained, their history and evaluations). Two registries are searched:

  1. the **user registry**: ``$CODECZOO_REGISTRY`` if set, else a per-user data folder
     (``platformdirs.user_data_dir("codeczoo")/registry``); ``codeczoo export`` writes here;
  2. the **packaged registry**: the repository's top-level ``registry/``, shipped inside the
     wheel as ``codeczoo._registry`` (read-only once installed).

  For encoding, a codec's weights in use are the user registry's first entry if it has one,
  else the packaged one. For decoding, any entry of either registry whose ``weights_hash`` is
  the one a bitstream's header names.
* Weights are safetensors (no pickle) and refused unless their sha256 matches their entry.

**Codecs from outside the package** reach every command and function that takes a codec name:

* an installed package declares them in the entry-point group ``codeczoo.codecs``
  (``my-codec = "mypkg.codecs:MyCodec"``: the name is the codec name; the object is a codec
  class, registered under that name unless it registered itself, or a module whose import
  registers its codecs); codeczoo finds them by name, in every process, decoding included;
* a class path (``mypkg.codecs:MyCodec`` or ``mypkg.codecs.MyCodec``) wherever a codec name is
  given explicitly (``--codec``, ``--model.codec``, ``codeczoo.load``): the module is imported
  and the class registered under its own registered name, else under the class path. A
  bitstream's header never triggers such an import; to decode one, import the module first
  (``codeczoo --import mypkg.codecs decompress ...``: a header naming a class of an already
  imported module is resolved) or install it with an entry point.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import inspect
import json
import operator
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

from .cards import CodecCard, WeightsEntry
from .errors import CodeczooError, UnknownCodecError, WeightsError

REGISTRY_ENV = "CODECZOO_REGISTRY"
ENTRY_POINT_GROUP = "codeczoo.codecs"
MANIFEST = "weights.json"
TRAINING = "training.json"

Pretrained = Union[bool, Literal["auto"]]


@dataclass(frozen=True)
class ZooEntry:
    """One registered name: the class that builds it and its declared card."""

    name: str
    cls: type
    card: CodecCard


_ZOO: dict[str, ZooEntry] = {}


# -- registration ---------------------------------------------------------------------------------
def register_codec(name: str, card: CodecCard | None = None):
    """Class decorator: register a codec under ``name`` with its card.

    Example::

        @register_codec("my-codec", card=CodecCard(description="...", paper=Paper(...)))
        class MyCodec(CompressionModel, Codec): ...

    A variant is a second registration of the same class with other ``card.arguments``::

        register_codec("my-codec-small", card=CodecCard(..., arguments={"channels": 32}))(MyCodec)

    Without a card, one is made from the class docstring. After this, ``codeczoo.load(name)``,
    the command line and the evaluation tools know the codec. Only subclasses of
    :class:`codeczoo.codec.Codec` are accepted.
    """
    from .codec import Codec

    def decorator(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, Codec)):
            what = cls.__name__ if isinstance(cls, type) else type(cls).__name__
            raise CodeczooError(
                f"register_codec({name!r}): {what} is not a codec (subclass codeczoo.Codec and "
                "implement encode_values/decode_values)")
        if not isinstance(name, str) or not name or name != name.strip() or len(name) > 255:
            raise CodeczooError(f"register_codec: invalid codec name {name!r}")
        if name in _ZOO and _ZOO[name].cls is not cls:
            raise CodeczooError(f"codec name {name!r} is already registered by "
                                f"{_ZOO[name].cls.__name__}")
        if card is not None and not isinstance(card, CodecCard):
            raise CodeczooError(f"register_codec({name!r}): card must be a codeczoo.CodecCard, "
                                f"got {type(card).__name__}")
        declared = card or CodecCard(description=_first_sentence(cls))
        _ZOO[name] = ZooEntry(name, cls, declared.replace(name=name))
        if not vars(cls).get("codec_name"):
            cls.codec_name = name  # the class's own name: its first registration
        try:
            from compressai.models import CompressionModel
            from compressai.registry import MODELS

            if issubclass(cls, CompressionModel):
                MODELS[name] = _compressai_builder(name)
        except ImportError:  # pragma: no cover - compressai is a hard dependency
            pass
        return cls

    return decorator


def _compressai_builder(name: str):
    """What ``compressai.registry.MODELS[name](**kwargs)`` calls: the entry, built fresh."""
    def build_entry(**kwargs):
        return build(name, **kwargs)

    build_entry.__name__ = build_entry.__qualname__ = name
    build_entry.__doc__ = f"Build the codeczoo codec {name!r} (untrained weights)."
    return build_entry


def _first_sentence(cls: type) -> str:
    """The first paragraph of the class docstring on one line: a whole sentence, never the first
    line of one that wraps (a card's description)."""
    return " ".join((inspect.getdoc(cls) or cls.__name__).split("\n\n")[0].split())


def _has_parameters(cls: type) -> bool:
    try:
        import torch

        return issubclass(cls, torch.nn.Module)
    except ImportError:  # pragma: no cover
        return False


SPEC_SEPARATOR = "@"


def split_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"NAME@option=value@..."`` -> ``(NAME, {option: value})``: a codec with coding options
    (e.g. ``sushmit2019-rnnconv@entropy=learned@rate_control=psnr``), as ``bench``, ``eval``
    and ``load`` take it; integer values become ints."""
    name, *parts = str(spec).split(SPEC_SEPARATOR)
    options: dict[str, Any] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or not key.isidentifier() or not value:
            raise CodeczooError(f"codec {spec!r}: options are written NAME@option=value, "
                                f"got {part!r}")
        options[key] = int(value) if value.lstrip("-").isdigit() else value
    return name, options


def entry(name: str, import_class_path: bool = True) -> ZooEntry:
    """The zoo entry ``name``: registered, else from an installed entry point, else (when
    ``import_class_path``) a class path to import (see the module docstring).  Coding options
    after the name (:func:`split_spec`) are ignored here."""
    name = name.split(SPEC_SEPARATOR)[0]
    if name not in _ZOO:
        _load_entry_point(name)
    if name not in _ZOO and _looks_like_class_path(name) and (
            import_class_path or _class_path_module(name) in sys.modules):
        name = _register_class_path(name)
    try:
        return _ZOO[name]
    except KeyError:
        known = ", ".join(sorted(_ZOO)) or "none"
        raise UnknownCodecError(
            f"unknown codec {name!r} (registered: {known}; a codec of your own is reached by "
            f"its class path, e.g. mypkg.codecs:MyCodec, or an installed '{ENTRY_POINT_GROUP}' "
            "entry point)") from None


def resolve_name(name: str) -> str:
    """The registered name of ``name`` (a codec name, entry point or class path)."""
    item = entry(name)
    return item.name


def _entry_points():
    from importlib.metadata import entry_points

    return entry_points(group=ENTRY_POINT_GROUP)


def _load_entry_point(name: str) -> None:
    for point in _entry_points():
        if point.name != name:
            continue
        try:
            obj = point.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not take codeczoo down
            raise UnknownCodecError(f"codec {name!r}: its entry point {point.value} does not "
                                    f"load ({type(exc).__name__}: {exc})") from None
        if name not in _ZOO and isinstance(obj, type):
            register_codec(name, _declared_card(obj))(obj)
        return


def load_entry_points() -> None:
    """Register every installed ``codeczoo.codecs`` entry point (``codeczoo list`` shows them)."""
    for point in _entry_points():
        if point.name not in _ZOO:
            entry(point.name, import_class_path=False)


def _declared_card(obj) -> CodecCard | None:
    """The card a codec class carries as its ``card`` attribute (codecs from other packages)."""
    from .codec import Codec

    return obj.card if isinstance(obj, type) and issubclass(obj, Codec) else None


def _looks_like_class_path(name: str) -> bool:
    module, _, attr = name.replace(":", ".").rpartition(".")
    return bool(module) and all(part.isidentifier() for part in (*module.split("."), attr))


def _class_path_module(path: str) -> str:
    return path.partition(":")[0] if ":" in path else path.rpartition(".")[0]


def _register_class_path(path: str) -> str:
    import importlib

    load_entry_points()  # a class an installed package names keeps that name
    module_name, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UnknownCodecError(f"codec class {path!r} cannot be imported "
                                f"({type(exc).__name__}: {exc})") from None
    for item in _ZOO.values():
        if item.cls is obj:
            return item.name  # it registered itself (its first registration)
    name = f"{module_name}.{attr}"
    register_codec(name, _declared_card(obj))(obj)
    return name


def codec_class(name: str) -> type:
    return entry(name).cls


def entry_arguments(name: str) -> dict[str, Any]:
    """The complete constructor arguments of an entry: class defaults, then the card's."""
    item = entry(name)
    return {**default_arguments(item.cls), **dict(item.card.arguments)}


def default_arguments(cls: type) -> dict[str, Any]:
    """The constructor's keyword defaults (what an entry's arguments are laid over)."""
    out = {}
    for pname, param in inspect.signature(cls.__init__).parameters.items():
        if pname == "self" or param.default is inspect.Parameter.empty:
            continue
        if isinstance(param.default, (int, float, str, bool, type(None), tuple, list)):
            out[pname] = _jsonable_default(param.default)
    return out


def _jsonable_default(value):
    if isinstance(value, tuple):
        return [_jsonable_default(v) for v in value]
    return value


# -- registries on disk ---------------------------------------------------------------------------
def user_registry() -> Path:
    """Where ``codeczoo export`` writes and ``load`` looks first (``$CODECZOO_REGISTRY`` wins)."""
    env = os.environ.get(REGISTRY_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("codeczoo", appauthor=False)) / "registry"


def packaged_registry() -> Path:
    """The registry shipped with codeczoo (the checkout's ``registry/`` in an editable install)."""
    spec = importlib.util.find_spec("codeczoo._registry")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parent.parent / "registry"  # a source tree run in place


def registry_roots() -> list[Path]:
    """The registries, in search order: user, then packaged (duplicates removed)."""
    roots: list[Path] = []
    for root in (user_registry(), packaged_registry()):
        if root.resolve() not in [r.resolve() for r in roots]:
            roots.append(root)
    return roots


def is_installed_location(path: Path) -> bool:
    """Whether ``path`` lies inside an installed package (site-packages): never written to."""
    parts = {p.lower() for p in Path(path).resolve().parts}
    return bool(parts & {"site-packages", "dist-packages"})


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{what} {path} is unreadable ({exc})") from exc


@dataclass(frozen=True)
class LocatedWeights:
    """A weights entry and the registry folder it lives in."""

    root: Path
    codec: str
    entry: WeightsEntry

    @property
    def path(self) -> Path:
        return self.root / self.codec / self.entry.file


def weights_entries(name: str) -> list[LocatedWeights]:
    """Every weights entry of ``name`` in every registry, the one in use first."""
    name = entry(name).name
    found = []
    for root in registry_roots():
        manifest = root / name / MANIFEST
        if not manifest.is_file():
            continue
        data = read_json(manifest, "weights manifest")
        try:
            items = [WeightsEntry.from_json(item) for item in data["weights"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise WeightsError(f"weights manifest {manifest} is malformed ({exc})") from None
        found += [LocatedWeights(root, name, item) for item in items]
    return found


def weights_quality(name: str, quality: int | None) -> int | None:
    """The quality whose network ``load(name, quality)`` builds, for a codec with one network
    per quality (``model_per_quality``): ``quality``, else the entry's declared default (its
    ``quality`` argument) if it has trained weights, else the quality of the weights in use
    (the first entry), else the declared default. ``None`` for codecs whose one network codes
    every quality."""
    if not codec_class(name).model_per_quality:
        return None
    if quality is None:
        declared = int(entry_arguments(name)["quality"])
        if current_weights(name, declared) is not None:
            return declared
        located = current_weights(name)
        return int(located.entry.arguments.get("quality", declared)) if located else declared
    try:
        if isinstance(quality, bool):
            raise TypeError
        return operator.index(quality)
    except TypeError:
        raise CodeczooError(f"{name}: quality must be an integer, got {quality!r}") from None


def _is_quality(located: LocatedWeights, quality: int | None) -> bool:
    return quality is None or located.entry.arguments.get("quality") == quality


def current_weights(name: str, quality: int | None = None) -> LocatedWeights | None:
    """The weights ``load(name, pretrained=True)`` uses, or ``None`` if none ship.

    ``quality`` (codecs with one network per quality, see :func:`weights_quality`): the first
    entry trained for that quality; ``None``: the first entry of any quality."""
    for located in weights_entries(name):
        if _is_quality(located, quality) and located.path.is_file():
            return located
    return None


def has_pretrained(name: str) -> bool:
    """Whether trained weights are available (of any quality, where each is its own network)."""
    return current_weights(name) is not None


def trained_qualities(name: str) -> list[int]:
    """The qualities with trained weights of a codec with one network per quality (sorted)."""
    if not codec_class(name).model_per_quality:
        return []
    return sorted({int(located.entry.arguments["quality"]) for located in weights_entries(name)
                   if "quality" in located.entry.arguments and located.path.is_file()})


def training_file(name: str, arguments: dict[str, Any]) -> str:
    """File name of the training record of weights with these ``arguments``: ``training.json``,
    or ``training-q<quality>.json`` for a codec with one network per quality."""
    if codec_class(name).model_per_quality and "quality" in arguments:
        return f"training-q{int(arguments['quality'])}.json"
    return TRAINING


def find_weights(name: str, weights_hash: str) -> LocatedWeights | None:
    """The registered weights of ``name`` whose header hash is ``weights_hash`` (hex)."""
    for located in weights_entries(name):
        if located.entry.weights_hash == weights_hash and located.path.is_file():
            return located
    return None


def find_registered(cls: type, weights_hash: str) -> tuple[str, dict[str, Any]] | None:
    """The zoo name and recorded arguments of weights of ``cls`` with this header hash."""
    for name, item in sorted(_ZOO.items()):
        if item.cls is cls:
            for located in weights_entries(name):
                if located.entry.weights_hash == weights_hash:
                    return name, dict(located.entry.arguments)
    return None


def read_training(name: str, quality: int | None = None) -> dict[str, Any]:
    """The training record beside the weights in use (how they were trained), or ``{}``;
    ``quality`` as in :func:`current_weights`."""
    located = current_weights(name, quality)
    if located is None:
        return {}
    path = located.root / located.codec / training_file(located.codec, located.entry.arguments)
    return read_json(path, "training record") if path.is_file() else {}


# -- cards and listing ---------------------------------------------------------------------------
def get_card(name: str) -> CodecCard:
    """The codec's declared card, with the weights currently in use (``None`` if none; for a
    codec with one network per quality, those of its default quality)."""
    located = current_weights(name, weights_quality(name, None))
    return entry(name).card.replace(weights=located.entry if located else None)


def list_codecs(pattern: str | None = None, pretrained: bool | None = None) -> list[str]:
    """Registered codec names, optionally filtered by a glob ``pattern`` and by whether
    pretrained weights are available for them (``pretrained=True``) or not (``False``)."""
    load_entry_points()
    names = sorted(_ZOO)
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    if pretrained is not None:
        names = [n for n in names if has_pretrained(n) == pretrained]
    return names


# -- building and loading --------------------------------------------------------------------------
def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build(name: str, **kwargs):
    """A fresh instance of the entry ``name`` (untrained weights), arguments over the card's.

    Freshly initialised weights are drawn from a fixed seed, so two processes build the same
    untrained codec (its bitstreams stay decodable by the same codeczoo and torch versions).
    """
    item = entry(name)
    arguments = {**dict(item.card.arguments), **kwargs}
    try:
        if _has_parameters(item.cls):
            import torch

            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = item.cls(**arguments)
        else:
            model = item.cls(**arguments)
    except (TypeError, ValueError) as exc:
        raise CodeczooError(f"{name}: invalid arguments ({exc})") from exc
    model.codec_name = item.name
    return model


def read_weights(located: LocatedWeights) -> dict:
    """The verified float32 state dict of a weights entry."""
    from safetensors.torch import load_file

    path = located.path
    if not path.is_file():
        raise WeightsError(f"weights file {path} of {located.codec!r} is missing")
    actual = file_sha256(path)
    if actual != located.entry.sha256:
        raise WeightsError(
            f"weights {path.name} have sha256 {actual[:16]}..., their entry expects "
            f"{located.entry.sha256[:16]}...: refusing to load them")
    return {k: v.float() for k, v in load_file(str(path)).items()}


def pretrained_state_dict(name: str, quality: int | None = None) -> tuple[dict, dict[str, Any]]:
    """The verified weights in use for ``name`` (float32) and the arguments they need
    (``quality`` as in :func:`current_weights`)."""
    located = current_weights(name, quality)
    if located is None:
        raise WeightsError(no_weights_message(name, quality))
    return read_weights(located), dict(located.entry.arguments)


def no_weights_message(name: str, quality: int | None = None) -> str:
    trained = trained_qualities(name) if quality is not None else []
    what = (f"no trained weights for quality {quality} (trained: "
            f"{', '.join(map(str, trained))})" if trained else "no trained weights")
    return (f"codec {name!r} has {what}: train and export them "
            f"(docs/training.md: codeczoo fit, then codeczoo export), or use a codec from "
            f"'codeczoo list --pretrained'")


def load(name: str, quality: int | None = None, pretrained: Pretrained = "auto",
         weights: str | os.PathLike | LocatedWeights | None = None, **kwargs):
    """Build the codec ``name``, with weights where it has them; eval mode.

    Args:
        quality: the default rate ``encode`` uses; for a codec with one network per quality
            (CompressAI's families), the network to load (default: :func:`weights_quality`).
        pretrained: ``"auto"`` (default) loads the weights in use if any are available and
            builds untrained weights otherwise; ``True`` insists on them (``WeightsError``);
            ``False`` never loads them (research on untrained models).
        weights: a safetensors file (your own export) or a registry entry to load instead.
        kwargs: constructor arguments over the entry's (with weights, only those that leave
            the architecture unchanged, e.g. ``tile_batch``), and the codec's coding options
            (``Codec.coding_options``: e.g. ``entropy="learned"``), also given in ``name`` as
            ``NAME@option=value`` (:func:`split_spec`).
    """
    if pretrained not in (True, False, "auto"):
        raise CodeczooError(f"pretrained must be True, False or 'auto', got {pretrained!r}")
    name, options = split_spec(name)
    name = resolve_name(name)
    declared = entry(name).cls.coding_options
    unknown = sorted(set(options) - set(declared))
    if unknown:  # NAME@option=value names coding options only, never constructor arguments
        have = (f"its coding options are {', '.join(declared)}" if declared
                else f"{name} has no coding options")
        raise CodeczooError(f"{name}: unknown coding option(s) {', '.join(unknown)}; {have}")
    kwargs = {**options, **kwargs}
    coding = {k: kwargs.pop(k) for k in list(kwargs) if k in declared}
    network = weights_quality(name, quality)  # None: one network codes every quality
    state = None
    if weights is not None:
        if isinstance(weights, LocatedWeights):
            state, arguments = read_weights(weights), dict(weights.entry.arguments)
        else:
            state, arguments = _user_weights(Path(weights)), {}
        if network is not None and quality is None:
            network = int(arguments.get("quality", network))  # the quality they were trained for
        elif network is not None and arguments.get("quality", network) != network:
            raise WeightsError(f"{name}: these weights are quality {arguments['quality']}'s "
                               f"network, not quality {network}'s")
        kwargs = {**arguments, **kwargs}
    elif pretrained is True or (pretrained == "auto" and current_weights(name, network)):
        state, arguments = pretrained_state_dict(name, network)
        kwargs = {**arguments, **kwargs}
    if network is not None:
        kwargs["quality"] = network
    model = build(name, **kwargs)
    if state is not None:
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise WeightsError(f"weights of {name!r} do not fit its architecture: {first}") from exc
    model.eval()
    if coding:
        model.configure_coding(**coding)
    if quality is not None:
        model.default_quality = model.check_quality(quality)
    return model


def _user_weights(path: Path) -> dict:
    """A safetensors state dict the user names (no sha256 to check against: their own file)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise WeightsError(f"weights file {path} not found")
    try:
        return {k: v.float() for k, v in load_file(str(path)).items()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a safetensors weights file ({exc})") from None
