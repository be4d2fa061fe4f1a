"""``codeczoo fit | validate | test``: LightningCLI over :class:`CodecModule` and
:class:`XrayDataModule`.

Configs use ``class_path`` / ``init_args`` (subclass mode, so a user's own LightningModule or
DataModule subclass plugs in without code changes here)::

    codeczoo fit --config recipes/sushmit2019-rnnconv/cxr-32.yaml
    codeczoo fit --config recipes/sushmit2019-rnnconv/cxr-32.yaml \\
        --trainer.devices 8 --trainer.strategy ddp --trainer.precision bf16-mixed
    codeczoo fit --config ... --ckpt_path last          # resume the run in default_root_dir
    codeczoo fit --config sushmit2019-rnnconv/cxr-64-cpu  # a packaged recipe, by name

A ``--config`` that is not a file names a packaged recipe (:mod:`codeczoo.training.recipes`).

``--budget.minutes M`` (:class:`~codeczoo.training.budget.TimeBudget`) measures the steps per
second and fits ``max_steps`` and the LR schedule into ``M`` minutes, start-up included.

A :class:`~codeczoo.training.checkpoint.FinalStepCheckpoint` (Lightning's ``ModelCheckpoint`` that
also keeps the steps after the last validation) is always present (``checkpoint.*`` options, ``save_last: true`` by default, folder ``<trainer.default_root_dir>/checkpoints`` so
that ``--ckpt_path last`` finds it) and Lightning writes it from rank zero only. The
resolved config is saved beside the logs (``config.yaml``) and into every checkpoint, from
where ``codeczoo export`` copies it onto the codec card.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Sequence

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

from ..errors import CodeczooError
from .budget import TimeBudget
from .checkpoint import FinalStepCheckpoint
from .data import XrayDataModule
from .module import CodecModule
from .recipes import resolve_config_arguments


class RecipeConfigCallback(SaveConfigCallback):
    """Saves ``config.yaml`` (Lightning's behaviour) and hands the resolved config to the module,
    which stores it in its checkpoints (rank zero: the rank that writes checkpoints)."""

    def save_config(self, trainer, pl_module, stage) -> None:
        if isinstance(pl_module, CodecModule):
            pl_module.recipe_config = self.parser.dump(self.config, skip_none=False)


class CodeczooCLI(LightningCLI):
    """LightningCLI with an always-on, configurable checkpoint callback (``--checkpoint.*``) and
    a time budget (``--budget.minutes``, ``--budget.deadline``; inert unless given)."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(FinalStepCheckpoint, "checkpoint")
        parser.add_lightning_class_args(TimeBudget, "budget")
        parser.set_defaults({"checkpoint.save_last": True,
                             "checkpoint.filename": "step{step:08d}",
                             "checkpoint.auto_insert_metric_name": False})

    def before_instantiate_classes(self) -> None:
        # A fixed checkpoint folder (not the logger's new version_N) so --ckpt_path last finds
        # the previous run's last.ckpt.
        config = self.config[self.subcommand] if self.subcommand else self.config
        if config.get("checkpoint") is not None and not config.checkpoint.get("dirpath"):
            root = config.trainer.get("default_root_dir") or "."
            config.checkpoint.dirpath = os.path.join(root, "checkpoints")


_NOISE = ("Does not validate against", "Subtypes:", "Errors:", "Given value",
          "- Expected a <class 'NoneType'>")


def _one_line(exc: BaseException) -> str:
    """jsonargparse's multi-line Union report -> the lines that say what is wrong, on one line."""
    lines = [ln.strip() for ln in (str(exc).strip() or type(exc).__name__).splitlines()]
    kept = [ln.lstrip("- ") for ln in lines if ln and not ln.startswith(_NOISE)]
    return " ".join(kept)[:500]


def run_lightning_cli(argv: Sequence[str]) -> CodeczooCLI:
    """Run ``fit`` / ``validate`` / ``test`` (``argv[0]``) with the rest of ``argv``.

    Config and argument errors become a one-line :class:`CodeczooError`; ``--help`` prints
    LightningCLI's help.
    """
    argv = list(argv)
    if not argv or argv[0] not in ("fit", "validate", "test"):
        raise CodeczooError("expected one of fit, validate, test")
    argv = resolve_config_arguments(argv)
    try:
        with warnings.catch_warnings():
            # we pass the arguments explicitly on purpose (codeczoo's own parser took argv[0])
            warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter.*")
            return _make_cli(argv)
    except CodeczooError:
        raise
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - config / argument errors from jsonargparse
        cause = exc
        while cause.__cause__ is not None and not isinstance(cause, CodeczooError):
            cause = cause.__cause__
        if isinstance(cause, CodeczooError):
            raise cause from exc
        if _is_config_error(exc):
            raise CodeczooError(f"{argv[0]}: {_one_line(exc)}") from exc
        raise


def _make_cli(argv: list[str]) -> CodeczooCLI:
    return CodeczooCLI(
        CodecModule, XrayDataModule,
        subclass_mode_model=True, subclass_mode_data=True,
        save_config_callback=RecipeConfigCallback,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"exit_on_error": False},
        args=argv,
    )


def _is_config_error(exc: BaseException) -> bool:
    from argparse import ArgumentError

    try:
        from jsonargparse import ArgumentError as JsonArgumentError
    except ImportError:  # pragma: no cover
        JsonArgumentError = ArgumentError
    if isinstance(exc, (ArgumentError, JsonArgumentError)):
        return True
    # jsonargparse reports a failed class instantiation as a ValueError listing the union's errors
    return isinstance(exc, ValueError) and str(exc).startswith("Does not validate against")


if __name__ == "__main__":  # pragma: no cover
    run_lightning_cli(sys.argv[1:])
