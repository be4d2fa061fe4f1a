"""Lightning training of any registered codec: :class:`CodecModule`.

The module wraps a codec built by name (``codec: sushmit2019-rnnconv``, ``codec_args: {...}``)
and picks the loss from what the codec's ``forward`` returns:

* a ``"residuals"`` entry (recurrent binary codecs: Toderici et al. 2017, Sushmit et al. 2019):
  :class:`~codeczoo.training.losses.RecurrentResidualLoss` (L1 or L2) over ``train_iterations``;
* otherwise (a learned entropy model, CompressAI style: Ballé et al.):
  :class:`~codeczoo.training.losses.RateDistortionLoss` ``lmbda * 255**2 * MSE + bpp``, plus
  CompressAI's auxiliary loss where the codec has entropy bottlenecks.

**The auxiliary loss and DDP (CompressAI issue #104).** CompressAI's ``examples/train.py`` runs
two optimisers and a second ``aux_loss().backward()`` outside the model's forward. Under
``DistributedDataParallel`` that second backward bypasses DDP's gradient hooks (the quantiles are
never all-reduced, ranks drift apart, or DDP raises about parameters not taking part in the
loss). Here the auxiliary loss is **added to the training loss inside ``training_step``**, which
Lightning runs within the DDP-wrapped forward, so one backward and one all-reduce cover every
parameter. It is exactly equivalent to two optimisers because the two losses touch disjoint
parameters: the rate-distortion loss never reaches ``EntropyBottleneck.quantiles`` (uniform
noise ignores the medians in training), and ``aux_loss`` detaches everything but the quantiles
(``stop_gradient=True``). The quantiles sit in their own Adam parameter group with their own
learning rate (``aux_lr``, CompressAI's 1e-3) and without the LR schedule's decay. This keeps
**automatic optimisation**, so the Trainer's ``gradient_clip_val`` / ``gradient_clip_algorithm``,
``accumulate_grad_batches`` and mixed precision all work; clipping is applied to the network's
parameters only (as CompressAI clips before its aux step), see :meth:`configure_gradient_clipping`.

Validation logs, per rate ``q`` of ``val_qualities`` (iterations of a recurrent codec), a
torchmetrics ``MetricCollection`` from :func:`codeczoo.metrics.training_metrics` (PSNR with
``data_range=1`` on unit images, SSIM, and MS-SSIM where the crops have at least 176 px a side)
as ``val/psnr_q{q}``, ``val/ssim_q{q}``, ``val/ms_ssim_q{q}``, plus ``val/bpp_q{q}``: the real
bits per pixel of the codec's ``compress`` strings (bytes * 8 / pixels; no container header).
Codecs with a learned entropy model have one rate: they log ``val/psnr``, ``val/ssim`` and
``val/bpp_est`` (the likelihood estimate; their real bytes need ``update()`` and come from
``codeczoo eval`` after export). Metrics are synchronised across ranks by torchmetrics.
"""

from __future__ import annotations

import math
import os
import platform
import time
from typing import Any, Optional, Sequence

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from .. import metrics as czmetrics
from ..errors import CodeczooError
from ..registry import (build, current_weights, entry_arguments, no_weights_message,
                        read_training, read_weights, resolve_name, weights_quality)
from .data import XrayDataModule
from .losses import RateDistortionLoss, RecurrentResidualLoss

LR_SCHEDULES = ("multistep", "cosine", "constant")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
FUSE_GATES = ("none", "equal", "all")
DEFAULT_LMBDA = 0.0130  # CompressAI's quality 4
#: keys of the checkpoint entry the module adds (read by codeczoo export).
CKPT_KEY = "codeczoo"


def hardware_description() -> str:
    """``"<GPU name> x N"`` when CUDA is in use, else the CPU model and core count."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} x {torch.cuda.device_count()}"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model} ({os.cpu_count()} cores)"


def _full_precision(x: Tensor):
    """Metrics outside autocast: SSIM's Gaussian-window convolutions in bf16 cancel
    catastrophically (``E[x^2] - E[x]^2``) and can even turn SSIM negative on smooth crops."""
    return torch.autocast(device_type=x.device.type, enabled=False)


def is_aux_parameter(name: str) -> bool:
    """CompressAI's rule (examples/train.py): entropy-bottleneck quantiles are the aux params."""
    return name.endswith(".quantiles") or name == "quantiles"


class CodecModule(L.LightningModule):
    """Train a registered codec (``codec`` name, ``codec_args`` constructor arguments).

    Args:
        codec: registered codec name (``codeczoo list``).
        codec_args: constructor arguments (architecture sizes, iterations, ...), merged over the
            class defaults (and over the card's arguments with ``init_from_registry``).
        init_from_registry: start from the codec's shipped, sha256-checked weights, so training
            accumulates over what the registry holds (``codeczoo export`` adds the steps).
        loss_p: 1 (L1, the papers') or 2 (L2) for the recurrent residual loss.
        train_iterations: iterations unrolled in training for a recurrent codec (default: its
            ``max_iterations``, so the loss covers every rate).
        lmbda: rate-distortion trade-off for codecs with a learned entropy model (CompressAI's
            scale, ``lmbda * 255**2 * MSE + bpp``); default: the codec's own (``codec.lmbda``:
            a CompressAI family's quality sets it from CompressAI's ladder), else 0.0130. A
            codec with its own is refused another one (its quality would no longer say what
            it was trained for).
        lr: Adam learning rate of the network (Toderici port: 5e-4).
        aux_lr: Adam learning rate of the entropy bottlenecks' quantiles (CompressAI: 1e-3).
        weight_decay: Adam weight decay.
        lr_schedule: ``multistep`` (decay by ``lr_gamma`` at ``lr_milestones``), ``cosine`` (to
            ``lr * lr_min_factor``) or ``constant``; stepped every optimiser step.
        lr_milestones: fractions of the run's total optimiser steps (``max_steps`` or
            epochs x batches) at which ``multistep`` decays.
        lr_gamma: ``multistep`` decay factor.
        lr_min_factor: ``cosine`` final LR as a fraction of ``lr``.
        warmup_steps: linear warm-up steps before the schedule.
        val_qualities: rates validated (iterations of a recurrent codec); default: about four
            spread over ``1..max_iterations``.
        val_real_bpp: also measure the real bytes of ``compress`` at every validation rate
            (recurrent codecs; costs one encode per rate).

    Speed options (execution only: same parameters, same weights files; see
    ``docs/training.md``, "Throughput"):

        compile: ``torch.compile`` mode for the training step of a recurrent codec (``default``,
            ``reduce-overhead`` = with CUDA graphs, ``max-autotune``,
            ``max-autotune-no-cudagraphs``), or ``None`` (eager). One coding iteration is
            compiled and reused for all ``T``, so compile time does not grow with ``T``.
        channels_last: NHWC memory format for the codec (faster bf16 / fp16 convolutions on
            GPUs with tensor cores).
        fuse_gates: ``equal`` runs each non-strided ConvLSTM's two gate convolutions as one where
            their kernels are equal (same arithmetic); ``all`` also zero-pads unequal kernels
            (more multiplications, fewer kernels); ``none`` (default) as written.
        fused_adam: Adam's single-kernel CUDA implementation (``fused=True``); not with
            ``16-mixed`` and gradient clipping (Lightning cannot unscale before clipping).
    """

    def __init__(self, codec: str = "sushmit2019-rnnconv", codec_args: Optional[dict] = None,
                 init_from_registry: bool = False, loss_p: int = 1,
                 train_iterations: Optional[int] = None, lmbda: Optional[float] = None,
                 lr: float = 5e-4, aux_lr: float = 1e-3, weight_decay: float = 0.0,
                 lr_schedule: str = "multistep", lr_milestones: Sequence[float] = (0.5, 0.75),
                 lr_gamma: float = 0.5, lr_min_factor: float = 0.01, warmup_steps: int = 0,
                 val_qualities: Optional[Sequence[int]] = None, val_real_bpp: bool = True,
                 compile: Optional[str] = None, channels_last: bool = False,
                 fuse_gates: str = "none", fused_adam: bool = False):
        super().__init__()
        self.save_hyperparameters()
        if compile is not None and compile not in COMPILE_MODES:
            raise CodeczooError(f"compile must be one of {', '.join(COMPILE_MODES)} or null, "
                                f"got {compile!r}")
        if fuse_gates not in FUSE_GATES:
            raise CodeczooError(f"fuse_gates must be one of {', '.join(FUSE_GATES)}, got {fuse_gates!r}")
        if lr_schedule not in LR_SCHEDULES:
            raise CodeczooError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {lr_schedule!r}")
        if loss_p not in (1, 2):
            raise CodeczooError(f"loss_p must be 1 or 2, got {loss_p!r}")
        codec = self.codec_name = resolve_name(codec)  # a name, entry point or class path
        arguments = entry_arguments(codec)
        state = None
        self.init_from: dict[str, Any] = {}
        if init_from_registry:  # where each quality is a network: the one codec_args names
            network = weights_quality(codec, (codec_args or {}).get("quality"))
            located = current_weights(codec, network)
            if located is None:
                raise CodeczooError(f"init_from_registry: {no_weights_message(codec, network)}")
            state = read_weights(located)
            arguments.update(located.entry.arguments)
            self.init_from = {"weights": located.entry.to_json(),
                              "training": read_training(codec, network)}
        arguments.update(codec_args or {})
        #: the complete constructor arguments (what ``codeczoo export`` writes with the weights).
        self.arguments = arguments
        self.model = build(codec, **arguments)
        if state is not None:
            try:
                self.model.load_state_dict(state)
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[0]
                raise CodeczooError(f"codec_args do not fit the registry weights of {codec}: {first}") from exc
        self.recurrent = self.model.progressive
        self.has_aux = any(is_aux_parameter(n) for n, _ in self.model.named_parameters())
        self.residual_loss = RecurrentResidualLoss(loss_p)
        own = self.model.lmbda
        if lmbda is not None and own is not None and float(lmbda) != own:
            raise CodeczooError(
                f"{codec} quality {self.model.default_quality} is trained with lmbda {own}; "
                f"choose the quality (codec_args: {{quality: q}}), not lmbda {lmbda}")
        #: the rate-distortion trade-off trained for (rate-distortion codecs).
        self.lmbda = float(lmbda if lmbda is not None else own if own is not None else DEFAULT_LMBDA)
        self.rd_loss = RateDistortionLoss(self.lmbda)
        if self.recurrent:
            t_max = self.model.max_iterations
            self.train_iterations = int(train_iterations or t_max)
            if not 1 <= self.train_iterations <= t_max:
                raise CodeczooError(f"train_iterations must be in 1..{t_max}")
            qualities = list(val_qualities) if val_qualities else sorted(
                {max(1, t_max // 8), max(1, t_max // 4), max(1, t_max // 2), t_max})
            bad = [q for q in qualities if q not in self.model.qualities]
            if bad:
                raise CodeczooError(f"val_qualities {bad} not in 1..{t_max} for {codec}")
            self.val_qualities = sorted(set(int(q) for q in qualities))
        else:
            self.train_iterations = None
            self.val_qualities = []
        self.stage_metrics = nn.ModuleDict()  # torchmetrics states are not saved in checkpoints
        self.stage_bpp = nn.ModuleDict()
        self.recipe_config: Optional[str] = None  # set by the CLI's config callback (rank zero)
        self._wall_before = 0.0  # wall seconds of earlier (resumed-from) runs
        self._fit_started: Optional[float] = None
        # the speed options as attributes: a subclass whose own __init__ does not take them
        # (ResidualModule) has them missing from hparams, which save_hyperparameters collects
        # from the outermost __init__
        self.compile_mode, self.channels_last, self.fuse_gates = compile, channels_last, fuse_gates
        self.fused_adam = fused_adam
        self._val_step: Optional[int] = None  # global step of the last (non-sanity) validation
        self._train_step_fn = None  # the compiled coding iteration (``compile``), built in setup
        #: optimiser steps the LR schedule spans; ``None``: the Trainer's estimate (max_steps),
        #: set by :class:`~codeczoo.training.budget.TimeBudget` when it fixes max_steps
        self.schedule_steps: Optional[int] = None

    # -- speed options --------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Apply the speed options (before the optimiser is built; parameters keep their
        identity, so optimiser states and checkpoints are unaffected)."""
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if self.fuse_gates != "none":
            from ..layers import fuse_gate_convolutions

            fuse_gate_convolutions(self.model, pad_kernels=self.fuse_gates == "all")
        if self.compile_mode and self.recurrent and self._train_step_fn is None:
            # one iteration, static shapes (training batches have one size: drop_last)
            self._train_step_fn = torch.compile(self.model.iteration, mode=self.compile_mode,
                                                dynamic=False)

    # -- forward and losses --------------------------------------------------------------------
    def forward(self, x: Tensor, iterations: Optional[int] = None, step=None) -> dict:
        if self.recurrent:
            return self.model(x, iterations=iterations, step=step)
        return self.model(x)

    def compute_loss(self, x: Tensor, output: dict) -> dict[str, Tensor]:
        """The loss the codec's output calls for (see the module docstring)."""
        if "residuals" in output:
            out = self.residual_loss(output)
        else:
            out = self.rd_loss(output, x)
        if self.has_aux:
            out["aux"] = self.model.aux_loss()
            out["loss"] = out["loss"] + out["aux"]
        return out

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        x = batch
        if self.recurrent:
            output = self(x, self.train_iterations, step=self._train_step_fn)
        else:
            output = self(x)
        losses = self.compute_loss(x, output)
        # Logged values stay on the device (no host sync per step): Lightning reads them only
        # every log_every_n_steps steps. Clones: a CUDA-graph replay reuses its output memory.
        logs = {"train/loss": losses["loss"].detach().clone()}
        for key in ("mse", "bpp", "aux"):
            if key in losses:
                logs[f"train/{key}"] = losses[key].detach().clone()
        if "per_iteration" in losses:
            logs["train/residual_last"] = losses["per_iteration"][-1].clone()
        self.log_dict(logs, on_step=True, on_epoch=True, prog_bar=False, sync_dist=True,
                      batch_size=x.shape[0])
        if self._logs_this_step():
            # a Python float becomes a device tensor (a blocking copy), so only when logging;
            # not on the progress bar, which would read it back to the host every step
            self.log("lr", self.optimizers().param_groups[0]["lr"], on_step=True, prog_bar=False,
                     batch_size=x.shape[0])
        return losses["loss"]

    def _logs_this_step(self) -> bool:
        trainer = self._trainer
        if trainer is None:
            return True
        every = max(1, int(getattr(trainer, "log_every_n_steps", 1) or 1))
        return (trainer.global_step + 1) % every == 0 or trainer.global_step == 0

    # -- validation and test ---------------------------------------------------------------------
    def _stage_metrics(self, stage: str, size: int) -> tuple[nn.ModuleDict, nn.ModuleDict]:
        """Per-rate image-metric collections and bpp means of ``stage`` (built at first use,
        once the crop size, which decides MS-SSIM, is known)."""
        if stage not in self.stage_metrics:
            include_ms = czmetrics.ms_ssim_supported(size, size)
            rates = [f"_q{q}" for q in self.val_qualities] or [""]
            images, rates_bpp = nn.ModuleDict(), nn.ModuleDict()
            for rate in rates:
                key = rate or "single"
                images[key] = czmetrics.training_metrics(include_ms_ssim=include_ms).clone(
                    prefix=f"{stage}/", postfix=rate)
                if not self.recurrent or self.hparams.val_real_bpp:
                    rates_bpp[key] = MeanMetric()
            self.stage_metrics[stage] = images.to(self.device)
            self.stage_bpp[stage] = rates_bpp.to(self.device)
        return self.stage_metrics[stage], self.stage_bpp[stage]

    def _evaluate(self, batch: Tensor, stage: str) -> None:
        x = batch
        images, bpps = self._stage_metrics(stage, min(x.shape[-2:]))
        n = x.shape[0]
        if self.recurrent:
            output = self(x, max(self.val_qualities))
            loss = self.residual_loss(output)["loss"]
            for q in self.val_qualities:
                key = f"_q{q}"
                # x_hat_t = x - r_t: the reconstruction after q iterations (causal recurrence)
                with _full_precision(x):
                    images[key].update((x - output["residuals"][q - 1]).clamp(0.0, 1.0).float(),
                                       x.float())
                if key in bpps:
                    bpps[key].update(self._real_bpp(x, q), weight=n)
        else:
            output = self(x)
            losses = self.rd_loss(output, x)
            loss = losses["loss"]
            with _full_precision(x):
                images["single"].update(output["x_hat"].clamp(0.0, 1.0).float(), x.float())
            bpps["single"].update(losses["bpp"], weight=n)
        self.log(f"{stage}/loss", loss, on_epoch=True, sync_dist=True, batch_size=n)
        for coll in images.values():
            self.log_dict(coll, on_epoch=True, batch_size=n)
        for key, metric in bpps.items():
            name = f"{stage}/bpp{key}" if self.recurrent else f"{stage}/bpp_est"
            self.log(name, metric, on_epoch=True, batch_size=n)

    def _real_bpp(self, x: Tensor, q: int) -> Tensor:
        """Mean real bits per pixel of ``compress`` at ``q`` iterations (one string per crop)."""
        strings = self.model.compress(x, iterations=q)["strings"][0]
        pixels = x.shape[-2] * x.shape[-1]
        return torch.tensor(sum(len(s) for s in strings) * 8.0 / (pixels * len(strings)),
                            device=x.device)

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Tensor, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    # -- optimisation ------------------------------------------------------------------------
    def configure_optimizers(self):
        hp = self.hparams
        main = [p for n, p in self.model.named_parameters() if not is_aux_parameter(n)]
        aux = [p for n, p in self.model.named_parameters() if is_aux_parameter(n)]
        groups = [{"params": main, "lr": hp.lr, "weight_decay": hp.weight_decay, "name": "net"}]
        if aux:
            groups.append({"params": aux, "lr": hp.aux_lr, "weight_decay": 0.0, "name": "aux"})
        fused = bool(self.fused_adam)
        if fused and str(self.trainer.precision) in ("16-mixed", "16") \
                and self.trainer.gradient_clip_val:
            raise CodeczooError("fused_adam cannot be combined with 16-mixed precision and gradient "
                                "clipping (use bf16-mixed, or fused_adam false)")
        optimizer = torch.optim.Adam(groups, fused=True) if fused else torch.optim.Adam(groups)
        estimated = max(1, int(self.trainer.estimated_stepping_batches))
        warm = int(hp.warmup_steps)
        module = self

        def net_factor(step: int) -> float:
            # the span is read at every step, so a TimeBudget can fix it once it knows the rate
            total = max(1, int(module.schedule_steps or estimated))
            milestones = sorted({max(1, int(round(f * total))) for f in hp.lr_milestones})
            factor = min(1.0, (step + 1) / warm) if warm > 0 and step < warm else 1.0
            if hp.lr_schedule == "multistep":
                factor *= hp.lr_gamma ** sum(step >= m for m in milestones)
            elif hp.lr_schedule == "cosine":
                progress = min(1.0, max(0.0, (step - warm) / max(1, total - warm)))
                factor *= hp.lr_min_factor + (1 - hp.lr_min_factor) * 0.5 * (1 + math.cos(math.pi * progress))
            return factor

        lambdas = [net_factor] + ([lambda step: 1.0] if aux else [])
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None,
                                    gradient_clip_algorithm=None) -> None:
        """Clip the network's gradients only (CompressAI clips before its separate aux step)."""
        if not gradient_clip_val:
            return
        params = [p for g in optimizer.param_groups if g.get("name") != "aux" for p in g["params"]
                  if p.grad is not None]
        if gradient_clip_algorithm == "value":
            torch.nn.utils.clip_grad_value_(params, gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)

    # -- epochs, bookkeeping and checkpoints ----------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        datamodule = self.trainer.datamodule
        if isinstance(datamodule, XrayDataModule):  # fresh random crops every epoch
            datamodule.set_epoch(self.current_epoch)

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._val_step = int(self.trainer.global_step)

    def on_fit_start(self) -> None:
        self._fit_started = time.monotonic()

    def wall_time_s(self) -> float:
        """Wall seconds of training so far, including the runs this one resumed from."""
        now = time.monotonic() - self._fit_started if self._fit_started is not None else 0.0
        return self._wall_before + now

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        trainer = self.trainer
        datamodule = trainer.datamodule
        devices = trainer.num_devices * trainer.num_nodes
        on_gpu = trainer.strategy.root_device.type == "cuda"
        wall = self.wall_time_s()
        checkpoint[CKPT_KEY] = {
            "codec": self.codec_name,
            "arguments": self.arguments,
            "lmbda": None if self.recurrent else self.lmbda,
            "init_from": self.init_from,
            "recipe_config": self.recipe_config,
            "data": datamodule.describe() if isinstance(datamodule, XrayDataModule) else None,
            "hardware": hardware_description() if not on_gpu else
            f"{torch.cuda.get_device_name(self.device)} x {devices}",
            "devices": devices,
            "accelerator": "gpu" if on_gpu else "cpu",
            "precision": str(trainer.precision),
            "wall_time_s": wall,
            # device-minutes: GPU-minutes on GPUs; on CPUs, minutes x processes x torch threads
            "device_minutes": wall / 60.0 * devices * (1 if on_gpu else torch.get_num_threads()),
            "global_step": int(trainer.global_step),
            "schedule_steps": self.schedule_steps,
            # the last validation's metrics and the step they were measured at (a checkpoint
            # written between validations carries the previous validation's numbers)
            "validation_step": self._val_step,
            "metrics": {} if self._val_step is None else {
                k: float(v) for k, v in trainer.callback_metrics.items()
                if k.startswith("val/") and torch.as_tensor(v).numel() == 1},
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        info = checkpoint.get(CKPT_KEY) or {}
        self._wall_before = float(info.get("wall_time_s", 0.0))
        self._val_step = info.get("validation_step")
        self.schedule_steps = info.get("schedule_steps")
        if info.get("init_from"):
            self.init_from = info["init_from"]
