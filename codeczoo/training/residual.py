"""Training the residual model of the bounded-error layer (:mod:`codeczoo.residual`).

:class:`ResidualDataModule` pairs crops of real X-rays with the **base reconstruction** the
residual layer would see: each training image is coded once per base rate with JPEG 2000
(reversible 5/3 wavelet, as :func:`codeczoo.residual.codec.build_base` codes it) and decoded;
the pairs are cached as ``.npy`` files.  Every sample draws a crop (aligned with the codec's
2x2 phases), a base rate, a bound ``K`` and a (level, pass) in proportion to the pixels each
codes (:data:`SCHEDULE`).

:class:`ResidualModule` trains the network on exactly what the coder pays: the bits of the
quantized symbols of the sampled pass (:func:`codeczoo.residual.model.bound_bits`), with the
already-known phases given as the coder would reconstruct them for that ``K``.  It reuses
:class:`~codeczoo.training.module.CodecModule` for the optimiser, schedule, checkpoints and the
training record ``codeczoo export`` writes, so the usual commands apply::

    OMP_NUM_THREADS=1 codeczoo fit --config recipes/residual/cxr-dicom-cpu.yaml
    codeczoo export runs/residual/cxr-dicom-cpu/checkpoints/last.ckpt --name residual --fp16 --registry registry
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import CodeczooError
from ..residual.model import (PASS_ORDER, PHASES, bound_bits, known_mask, quantize_residual,
                              unshuffle)
from .data import CachedImage, XrayDataModule
from .module import CodecModule

_REPO = Path(__file__).resolve().parents[2]


def base_reconstruction(image: CachedImage, ratio: int) -> np.ndarray:
    """JPEG 2000 (reversible 5/3) at compression ``ratio``, decoded: what the coder's base gives."""
    from ..residual.codec import build_base

    codec = build_base("jpeg2000")
    data = codec.encode(image.values, int(ratio), bits_stored=image.bits_stored)
    return codec.decode(data)


class PairedImage:
    """An image's stored values and its base reconstructions, one per base rate."""

    def __init__(self, image: CachedImage, bases: list[np.ndarray]):
        self.image, self.bases = image, bases
        self.bits = image.bits_stored


def _cached_bases(image: CachedImage, source: Path, ratios: Sequence[int], folder: Path
                  ) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(f"{source.resolve()}".encode()).hexdigest()[:12]
    out = []
    for ratio in ratios:
        path = folder / f"{source.stem}-{key}-j2k53-r{ratio}.npy"
        if not path.is_file():
            tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
            np.save(tmp, base_reconstruction(image, ratio))
            os.replace(tmp, path)
        out.append(np.load(path, mmap_mode="r"))
    return out


#: (level, pass) of a sample, in proportion to the pixels each codes with ``levels = 2``:
#: level 1 (phase (0,0) as a half-size image) passes 0-3 code 1/16 each, level 0 passes 1-3
#: code 1/4 each (:mod:`codeczoo.residual.coder`).
SCHEDULE = [(1, 0), (1, 1), (1, 2), (1, 3)] + [(0, p) for p in (1, 2, 3) for _ in range(4)]


def _crop(pair: PairedImage, base_index: int, top: int, left: int, size: int, level: int) -> dict:
    """A ``size`` crop at ``(top, left)``; at level 1 every second pixel of a crop twice as large
    (the codec's phase (0, 0) image)."""
    span, stride = size << level, 1 << level
    x = np.asarray(pair.image.values[top:top + span:stride, left:left + span:stride],
                   dtype=np.float32)
    c0 = np.asarray(pair.bases[base_index][top:top + span:stride, left:left + span:stride],
                    dtype=np.float32)
    return {"x": torch.from_numpy(x)[None], "c0": torch.from_numpy(c0)[None],
            "bits": torch.tensor(float(pair.bits)), "level": torch.tensor(float(level))}


class ResidualCropDataset(Dataset):
    """Random (training) or fixed (validation) samples: crop, base rate, bound and pass.

    Training positions are pure functions of ``(seed, epoch, index)`` like
    :class:`~codeczoo.training.data.RandomCropDataset`.  ``extra`` images (e.g. DICOMs of other
    bit depths) are drawn with probability ``extra_fraction``.  Validation (``fixed=True``)
    cycles through bounds and :data:`SCHEDULE`, so its mean bits per pixel is the residual's
    rate as the coder spends it.
    """

    def __init__(self, pairs: Sequence[PairedImage], extra: Sequence[PairedImage], crop_size: int,
                 samples: int, max_errors: Sequence[int], extra_fraction: float = 0.0,
                 seed: int = 0, fixed: bool = False, base_index: Optional[int] = None):
        if crop_size < 2 or crop_size % 2:
            raise CodeczooError("crop_size must be an even number >= 2")
        for p in list(pairs) + list(extra):
            if min(p.image.values.shape) < 2 * crop_size:
                raise CodeczooError(f"image {p.image.image_id} is smaller than the crop size")
        self.pairs, self.extra = list(pairs), list(extra)
        self.crop_size, self.samples = int(crop_size), int(samples)
        self.max_errors = [int(k) for k in max_errors]
        self.extra_fraction = float(extra_fraction) if self.extra else 0.0
        self.seed, self.fixed, self.base_index = int(seed), bool(fixed), base_index
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, index: int) -> dict:
        epoch = 0 if self.fixed else self.epoch
        rng = np.random.default_rng((self.seed, epoch, int(index)))
        use_extra = rng.random() < self.extra_fraction
        group = self.extra if use_extra else self.pairs
        pair = group[int(rng.integers(len(group)))] if not self.fixed else \
            self.pairs[index % len(self.pairs)]
        if self.fixed:
            k = self.max_errors[index % len(self.max_errors)]
            level, p = SCHEDULE[(index // len(self.max_errors)) % len(SCHEDULE)]
        else:
            k = self.max_errors[int(rng.integers(len(self.max_errors)))]
            level, p = SCHEDULE[int(rng.integers(len(SCHEDULE)))]
        h, w = pair.image.values.shape
        span, align = self.crop_size << level, 2 << level  # aligned with the codec's phases
        top = align * int(rng.integers(0, (h - span) // align + 1))
        left = align * int(rng.integers(0, (w - span) // align + 1))
        base = self.base_index if self.base_index is not None else int(rng.integers(len(pair.bases)))
        item = _crop(pair, base, top, left, self.crop_size, level)
        item["max_error"] = torch.tensor(float(k))
        item["pass"] = torch.tensor(p)
        return item


class ResidualDataModule(XrayDataModule):
    """Crops of real X-rays with their JPEG 2000 base reconstructions (see the module docstring).

    Args (besides :class:`~codeczoo.training.data.XrayDataModule`'s splits and loader options):
        extra_train: more training images (relative to ``data_root``), e.g. DICOMs of 10-16 bit.
        extra_fraction: share of training samples drawn from ``extra_train``.
        base_ratios: JPEG 2000 compression ratios of the base reconstructions (relative to the
            stored bit depth).
        val_base_ratio: the base ratio validation uses (one of ``base_ratios``).
        max_errors: bounds ``K`` drawn for training samples (repeat a value to weight it).
        val_max_errors: bounds validation cycles through.
        samples_per_epoch, val_samples: dataset lengths.
        cache_dir: where base reconstructions are cached (relative to the repository).
    """

    def __init__(self, data_root: Optional[str] = None, train_dir: Optional[str] = "cxr/train",
                 val_dir: Optional[str] = "cxr/val", test_dir: Optional[str] = None,
                 split_dir: Optional[str] = None, patients_csv=None,
                 split_fractions: Sequence[float] = (0.8, 0.1, 0.1), split_seed: int = 0,
                 extra_train: Sequence[str] = (), extra_fraction: float = 0.25,
                 base_ratios: Sequence[int] = (10, 20, 40, 80), val_base_ratio: int = 40,
                 max_errors: Sequence[int] = (0, 0, 0, 1, 2, 3, 4, 6, 8, 12, 16),
                 val_max_errors: Sequence[int] = (0, 2), crop_size: int = 64,
                 samples_per_epoch: int = 4096, val_samples: int = 256, batch_size: int = 32,
                 num_workers: int = 0, seed: int = 0, cache_dir: str = "runs/residual/base-cache",
                 limit_images: Optional[int] = None):
        super().__init__(data_root=data_root, train_dir=train_dir, val_dir=val_dir,
                         test_dir=test_dir, split_dir=split_dir, patients_csv=patients_csv,
                         split_fractions=split_fractions, split_seed=split_seed, crop_size=crop_size, batch_size=batch_size,
                         num_workers=num_workers, seed=seed, hflip=False, vflip=False,
                         limit_images=limit_images)
        if val_base_ratio not in base_ratios:
            raise CodeczooError("val_base_ratio must be one of base_ratios")
        self.extra_train = [str(p) for p in extra_train]
        self.extra_fraction = float(extra_fraction)
        self.base_ratios = [int(r) for r in base_ratios]
        self.val_base_ratio = int(val_base_ratio)
        self.max_errors = [int(k) for k in max_errors]
        self.val_max_errors = [int(k) for k in val_max_errors]
        self.samples_per_epoch, self.val_samples = int(samples_per_epoch), int(val_samples)
        cache = Path(cache_dir)
        self.cache_dir = cache if cache.is_absolute() else _REPO / cache

    def _pairs(self, paths: Sequence[Path], ratios: Sequence[int]) -> list[PairedImage]:
        return [PairedImage(img, _cached_bases(img, path, ratios, self.cache_dir))
                for img, path in zip(self._images(paths), paths)]

    def describe(self) -> dict:
        out = super().describe()
        out.update({"extra_train": self.extra_train, "extra_fraction": self.extra_fraction,
                    "base": "jpeg2000 reversible 5/3, ratios " + str(self.base_ratios),
                    "max_errors": self.max_errors, "val_max_errors": self.val_max_errors,
                    "val_base_ratio": self.val_base_ratio,
                    "samples_per_epoch": self.samples_per_epoch})
        return out

    def setup(self, stage: Optional[str] = None) -> None:
        splits = self.resolve_splits()
        if stage in (None, "fit") and self.train_set is None:
            extra = self._pairs([self._path(p) for p in self.extra_train], self.base_ratios)
            self.train_set = ResidualCropDataset(
                self._pairs(splits["train"], self.base_ratios), extra, self.crop_size,
                self.samples_per_epoch, self.max_errors, self.extra_fraction, self.seed)
        if stage in (None, "fit", "validate") and self.val_set is None and splits["val"]:
            self.val_set = ResidualCropDataset(
                self._pairs(splits["val"], [self.val_base_ratio]), [], self.crop_size,
                self.val_samples, self.val_max_errors, seed=self.seed + 1, fixed=True,
                base_index=0)
        if stage == "test":
            raise CodeczooError("the residual data module has no test split (use benchmarks/residual.py)")


class ResidualModule(CodecModule):
    """Trains the ``residual`` codec's model on bits per coded pixel (see the module docstring).

    Args: as :class:`~codeczoo.training.module.CodecModule` (``codec`` must be ``residual`` or
    a subclass of it); validation logs ``val/bpp_k{K}`` per bound and ``val/loss``.
    """

    def __init__(self, codec: str = "residual", codec_args: Optional[dict] = None,
                 init_from_registry: bool = False, lr: float = 2e-3, weight_decay: float = 0.0,
                 lr_schedule: str = "cosine", lr_milestones: Sequence[float] = (0.5, 0.75),
                 lr_gamma: float = 0.5, lr_min_factor: float = 0.05, warmup_steps: int = 100):
        super().__init__(codec=codec, codec_args=codec_args, init_from_registry=init_from_registry,
                         lr=lr, weight_decay=weight_decay, lr_schedule=lr_schedule,
                         lr_milestones=lr_milestones, lr_gamma=lr_gamma,
                         lr_min_factor=lr_min_factor, warmup_steps=warmup_steps)
        from ..residual import ResidualCodec

        if not isinstance(self.model, ResidualCodec):
            raise CodeczooError(f"ResidualModule trains the residual codec, not {codec}")
        masks = torch.tensor([known_mask(p) for p in range(PHASES)], dtype=torch.float32)
        self.register_buffer("_masks", masks, persistent=False)
        self.register_buffer("_phase", torch.tensor(PASS_ORDER), persistent=False)

    def sample_bits(self, batch: dict) -> Tensor:
        """Bits per coded pixel of each sample's pass (B,)."""
        x, c0 = batch["x"], batch["c0"]
        n = x.shape[0]
        bits = batch["bits"].view(n, 1, 1, 1)
        bound = batch["max_error"].view(n, 1, 1, 1)
        scale = torch.exp2(bits) - 1.0
        step = 2.0 * bound + 1.0
        xs, c0s = unshuffle(x), unshuffle(c0)
        rec = torch.minimum(torch.clamp(c0s + quantize_residual(xs - c0s, bound) * step, min=0.0),
                            scale)
        passes = batch["pass"].long()
        net = self.model.model
        mask = self._masks[passes]
        log_step = (torch.log(step / scale).view(n) + 6.0) / 3.0
        a, log_sigma = net(*net.features(c0s / scale, (rec - c0s) / scale, mask, log_step,
                                         batch["level"]))
        index = self._phase[passes].view(n, 1, 1, 1).expand(n, 1, *xs.shape[-2:])
        pick = lambda t: torch.gather(t, 1, index)  # noqa: E731
        cost = bound_bits(pick(xs), pick(c0s), pick(a), pick(log_sigma), bound, bits)
        return cost.flatten(1).mean(dim=1)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        loss = self.sample_bits(batch).mean()
        n = batch["x"].shape[0]
        self.log("train/loss", loss.detach(), on_step=True, on_epoch=True, batch_size=n)
        self.log("lr", self.optimizers().param_groups[0]["lr"], on_step=True, prog_bar=True,
                 batch_size=n)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        cost = self.sample_bits(batch)
        n = batch["x"].shape[0]
        self.log("val/loss", cost.mean(), on_epoch=True, batch_size=n)
        for k in torch.unique(batch["max_error"]).tolist():
            sel = batch["max_error"] == k  # Lightning averages over the epoch, weighted by size
            self.log(f"val/bpp_k{int(k)}", cost[sel].mean(), on_epoch=True,
                     batch_size=int(sel.sum()))

    def test_step(self, batch: dict, batch_idx: int) -> None:
        raise CodeczooError("the residual model is evaluated by benchmarks/residual.py")
