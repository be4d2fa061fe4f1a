"""Train for a wall-clock budget with a schedule that ends inside it: :class:`TimeBudget`.

A lent GPU comes for minutes, and what one call buys depends on ending the LR schedule (cosine
down to its floor) just before the time is up, with the last validation and checkpoint inside
the budget. The steps that fit are not known in advance (compile, the GPU, a second run sharing
it), so the callback measures them:

1. it lets ``warmup_steps`` optimiser steps pass (``torch.compile``, CUDA-graph capture and
   cuDNN autotuning happen there), then times ``measure_steps`` steps between two device
   synchronisations;
2. it sets ``max_steps`` to the steps that fit before the deadline (less a reserve for the final
   validation, timed on the sanity check, and the checkpoint), and the module's LR schedule to
   span exactly those steps (:attr:`~codeczoo.training.module.CodecModule.schedule_steps`);
3. every ``5 * measure_steps`` steps it measures again and only ever shortens the run if the rate
   fell (for instance when a run beside it on the same GPU finished compiling);
4. at the final step (or at the deadline, whatever happened) it stops the Trainer, which then runs
   one validation, so the checkpoint carries fresh ``val/*`` numbers.

With the recipes' ``check_val_every_n_epoch: null`` and a ``val_check_interval`` beyond the run,
that final validation is the only one. ``codeczoo fit --budget.minutes 10`` counts from the
moment the command builds its callbacks (start-up included); ``--budget.deadline`` takes a Unix
time (what ``codeczoo round`` passes). Without either the callback does nothing.
"""

from __future__ import annotations

import math
import time
from typing import Any, Optional

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info

from ..errors import CodeczooError
from .module import CodecModule


class TimeBudget(L.Callback):
    """Fit ``max_steps`` and the LR schedule to a wall-clock budget (see the module docstring).

    Args:
        minutes: budget in minutes from now (the callback's construction).
        deadline: absolute end, Unix seconds (wins over ``minutes``).
        warmup_steps: steps left untimed first (compilation, graph capture, autotuning).
        measure_steps: steps timed for the rate (and between re-checks, times 5).
        reserve_s: seconds kept free after the last step for the final validation and the
            checkpoint; default: the sanity check's time scaled to the whole validation set,
            times 1.5, plus 10 s.
        safety: fraction of the remaining time planned for steps.
    """

    def __init__(self, minutes: Optional[float] = None, deadline: Optional[float] = None,
                 warmup_steps: int = 5, measure_steps: int = 20,
                 reserve_s: Optional[float] = None, safety: float = 0.95):
        super().__init__()
        if minutes is not None and minutes <= 0:
            raise CodeczooError(f"budget minutes must be positive, got {minutes!r}")
        if warmup_steps < 0 or measure_steps < 1 or not 0 < safety <= 1:
            raise CodeczooError("budget: warmup_steps >= 0, measure_steps >= 1, 0 < safety <= 1")
        self.deadline = float(deadline) if deadline is not None else (
            time.time() + 60.0 * minutes if minutes is not None else None)
        self.warmup_steps, self.measure_steps = int(warmup_steps), int(measure_steps)
        self.reserve_s, self.safety = reserve_s, float(safety)
        self._t0: Optional[float] = None
        self._s0 = 0
        self._sanity_s: Optional[float] = None
        self._sanity_started: Optional[float] = None
        #: what the budget decided (saved in checkpoints; ``codeczoo export`` copies it to the card)
        self.plan: dict[str, Any] = {}

    @property
    def active(self) -> bool:
        return self.deadline is not None

    # -- the validation reserve --------------------------------------------------------------------
    def on_sanity_check_start(self, trainer, pl_module) -> None:
        self._sanity_started = time.monotonic()

    def on_sanity_check_end(self, trainer, pl_module) -> None:
        if self._sanity_started is not None:
            self._sanity_s = time.monotonic() - self._sanity_started

    def reserve(self, trainer) -> float:
        if self.reserve_s is not None:
            return float(self.reserve_s)
        validation = 0.0
        if self._sanity_s is not None:
            sanity = sum(trainer.num_sanity_val_batches or [0]) or 1
            full = sum(int(n) for n in trainer.num_val_batches if math.isfinite(n)) \
                if trainer.num_val_batches else sanity
            validation = self._sanity_s * max(1.0, full / sanity)
        return 1.5 * validation + 10.0

    # -- steps ------------------------------------------------------------------------------------
    @staticmethod
    def _sync(pl_module) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self.active:
            return
        step = int(trainer.global_step)
        if self._t0 is None and step >= self.warmup_steps:
            self._sync(pl_module)
            self._t0, self._s0 = time.monotonic(), step
        elif self._t0 is not None:
            every = self.measure_steps if not self.plan else 5 * self.measure_steps
            if step - self._s0 >= every:
                self._sync(pl_module)
                now = time.monotonic()
                rate = (step - self._s0) / max(now - self._t0, 1e-9)
                self._replan(trainer, pl_module, step, rate)
                self._t0, self._s0 = now, step
        target = self.plan.get("max_steps")
        out_of_time = time.time() >= self.deadline - self.reserve(trainer)
        if (target is not None and step >= target) or out_of_time:
            if out_of_time and self.plan:
                self.plan["stopped_by"] = "deadline"
            trainer.should_stop = True  # Lightning validates once more, then stops

    def _replan(self, trainer, pl_module, step: int, rate: float) -> None:
        remaining = self.deadline - time.time() - self.reserve(trainer)
        fits = step + max(1, int(remaining * rate * self.safety))
        current = self.plan.get("max_steps")
        if current is not None and fits >= current:
            self.plan["steps_per_s_last"] = rate
            return  # only ever shorten a planned run
        trainer.fit_loop.epoch_loop.max_steps = fits
        if isinstance(pl_module, CodecModule):  # its LR schedule spans the new length
            pl_module.schedule_steps = fits
        first = current is None
        self.plan.update(max_steps=fits, steps_per_s=rate if first else self.plan["steps_per_s"],
                         steps_per_s_last=rate, measured_at_step=step if first else
                         self.plan["measured_at_step"], reserve_s=round(self.reserve(trainer), 1),
                         shortened=0 if first else self.plan.get("shortened", 0) + 1)
        ends = time.strftime("%H:%M:%S", time.localtime(time.time() + (fits - step) / rate))
        rank_zero_info(f"time budget: {rate:.2f} steps/s at step {step}: max_steps {fits} "
                       f"(steps end about {ends}; {self.plan['reserve_s']} s kept for the final "
                       "validation and checkpoint)")

    # -- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"deadline": self.deadline, "plan": dict(self.plan)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.plan = dict(state_dict.get("plan") or {})
