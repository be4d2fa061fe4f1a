"""Lightning training for the zoo's learned codecs.

* :class:`~codeczoo.training.module.CodecModule`: any registered codec, its loss, metrics,
  optimiser and LR schedule;
* :class:`~codeczoo.training.data.XrayDataModule`: patient-exclusive crops of PNG/JPEG/DICOM X-rays;
* :func:`~codeczoo.training.cli.run_lightning_cli`: ``codeczoo fit | validate | test``;
* :func:`~codeczoo.training.export.export_checkpoint`: checkpoint -> registry weights and card.

Submodules are imported lazily so that ``import codeczoo`` does not pull in Lightning.
"""

from __future__ import annotations

__all__ = ["CodecModule", "XrayDataModule", "export_checkpoint", "run_lightning_cli"]


def __getattr__(name: str):
    if name == "CodecModule":
        from .module import CodecModule
        return CodecModule
    if name == "XrayDataModule":
        from .data import XrayDataModule
        return XrayDataModule
    if name == "export_checkpoint":
        from .export import export_checkpoint
        return export_checkpoint
    if name == "run_lightning_cli":
        from .cli import run_lightning_cli
        return run_lightning_cli
    raise AttributeError(name)
