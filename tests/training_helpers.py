"""Callbacks the training tests attach through LightningCLI (``--trainer.callbacks+=...``).

They live in an importable module because DDP re-launches the command in new processes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import lightning as L

from codeczoo.codec import state_dict_hash


class RankRecorder(L.Callback):
    """Per rank: the step training started from, the first batch's hash, the final weights'
    hash and LR; written to ``$CODECZOO_TEST_OUT/rank<r>.json`` when that variable is set."""

    def __init__(self):
        self.record: dict = {}

    def on_train_start(self, trainer, pl_module):
        self.record["start_step"] = int(trainer.global_step)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if "first_batch" not in self.record:
            self.record["first_batch"] = hashlib.sha256(
                batch.detach().cpu().numpy().tobytes()).hexdigest()

    def on_train_end(self, trainer, pl_module):
        scheduler = trainer.lr_scheduler_configs[0].scheduler
        self.record.update(
            weights=state_dict_hash(pl_module.model.state_dict()).hex(),
            global_step=int(trainer.global_step), world_size=int(trainer.world_size),
            rank=int(trainer.global_rank), lr=float(scheduler.optimizer.param_groups[0]["lr"]),
            scheduler_last_epoch=int(scheduler.last_epoch))
        out = os.environ.get("CODECZOO_TEST_OUT")
        if out:
            Path(out, f"rank{trainer.global_rank}.json").write_text(json.dumps(self.record))


class KillAtStep(L.Callback):
    """SIGKILL this process at the start of the batch after ``step`` optimiser steps: a hard
    kill mid-epoch, after the checkpoint of step ``step`` was written, with no clean-up."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step >= self.step:
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
