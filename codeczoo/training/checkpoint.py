"""The checkpoint callback every ``codeczoo fit`` run gets (``--checkpoint.*`` options)."""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint


class FinalStepCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint``, except that ``last.ckpt`` also keeps the final steps.

    Lightning writes checkpoints after validations; a run that ends on ``max_steps`` or
    ``max_time`` between two validations would leave ``last.ckpt`` at the last validation and
    lose the steps since (Lightning's own ``on_train_end`` only writes ``last.ckpt`` when none
    was written at all).  Here ``last.ckpt`` is brought up to the final step at the end of
    training, so ``codeczoo export`` and ``--ckpt_path last`` see every step that ran.  The
    ``validation`` metrics on a card still name the step they were measured at.
    """

    def on_train_end(self, trainer, pl_module) -> None:
        if self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        else:
            super().on_train_end(trainer, pl_module)
