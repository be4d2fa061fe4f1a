"""Training the learned entropy stage on the codes of a frozen recurrent codec.

The codec's weights stay as they are; its encoder codes every training image (and a 2x
upscaled, smoother crop of each: large radiographs put less anatomy in a tile than the
~640 px chest X-rays, so their codes are smoother) at ``max_iterations``, tile by tile exactly as
``encode`` does.  A :class:`~codeczoo.entropy.context_model.BinaryContextModel` is then fitted
with Lightning to minimise the bits its binned probabilities cost (the quantization-aware loss
of :meth:`~codeczoo.entropy.context_model.BinaryContextModel.bits_loss`), and written into a
registry beside the codec (:func:`codeczoo.entropy.models.add_entry`).  A seeded tenth of the training
images' tiles are held out to report bits per code bit; the val split is not used.

``codeczoo fit-entropy --codec NAME --config NAME/entropy/cxr-cpu`` runs it.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..entropy.context_model import BinaryContextModel


def collect_codes(codec, paths: Sequence[Path], upscaled: bool = True, seed: int = 0,
                  progress: bool = True) -> list[np.ndarray]:
    """Every tile's codes (T, C, h, w) uint8 of every image at ``max_iterations`` (and of one
    2x-upscaled crop of ``codec.tile_size`` per image when ``upscaled``)."""
    from tqdm import tqdm

    from ..coding.recurrent_payload import tile_codes
    from .data import load_image

    rng = np.random.default_rng(seed)
    tiles: list[np.ndarray] = []
    for path in tqdm(list(paths), desc="codes", disable=not progress):
        image = load_image(Path(path))
        spec = _spec(image)
        tiles += tile_codes(codec, image.values, spec, codec.max_iterations)[0]
        if upscaled:
            big = torch.nn.functional.interpolate(
                torch.from_numpy(image.values.astype(np.float32))[None, None], scale_factor=2,
                mode="bilinear", align_corners=False)[0, 0].round().numpy().astype(np.uint16)
            size = min(codec.tile_size, *big.shape) // codec.downsampling * codec.downsampling
            top = int(rng.integers(0, big.shape[0] - size + 1))
            left = int(rng.integers(0, big.shape[1] - size + 1))
            crop = np.ascontiguousarray(big[top:top + size, left:left + size])
            tiles += tile_codes(codec, crop, spec, codec.max_iterations)[0]
    return tiles


def _spec(image):
    from ..intensity import describe

    return describe(image.values, image.bits_stored, "MONOCHROME2")


def cached_codes(cache: Path | None, base_hash: str, codec, paths: Sequence[Path],
                 upscaled: bool, seed: int, progress: bool) -> list[np.ndarray]:
    """:func:`collect_codes`, kept in ``cache`` (an ``.npz`` per codec weights, image list and
    options) so a second run with other training options does not code the images again."""
    import hashlib

    if cache is None:
        return collect_codes(codec, paths, upscaled, seed, progress)
    key = hashlib.sha256(repr((base_hash, [str(p) for p in paths], upscaled, seed)).encode())
    path = cache / f"{base_hash}-{key.hexdigest()[:12]}.npz"
    if path.is_file():
        with np.load(path) as stored:
            return [stored[f"arr_{k}"] for k in range(len(stored.files))]
    tiles = collect_codes(codec, paths, upscaled, seed, progress)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, *tiles)
    return tiles


class CodeTiles(Dataset):
    """Code tiles as float +-1 tensors (T, 1, C, h, w), one per sample."""

    def __init__(self, tiles: Sequence[np.ndarray]):
        self.tiles = list(tiles)

    def __len__(self) -> int:
        return len(self.tiles)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.tiles[index].astype(np.float32) * 2.0 - 1.0).unsqueeze(1)


class EntropyModule(L.LightningModule):
    """Fits a context model: loss = bits per code bit under its binned probabilities."""

    def __init__(self, code_channels: int, max_iterations: int, hidden: int = 64,
                 groups: int = 4, lr: float = 2e-3, weight_decay: float = 0.0,
                 minutes: float | None = None, steps_per_tile: int = 16):
        super().__init__()
        self.save_hyperparameters()
        self.model = BinaryContextModel(code_channels, max_iterations, hidden, groups)
        self.started: float | None = None

    def on_train_start(self) -> None:
        self.started = time.time()

    def progress(self, step: int) -> float:
        """Fraction of the run done: by the clock when it is time-limited, else by steps."""
        total = max(1, int(self.trainer.estimated_stepping_batches))
        done = step / total
        if self.hparams.minutes and self.started is not None:
            done = max(done, (time.time() - self.started) / (60 * self.hparams.minutes))
        return min(1.0, done)

    def training_step(self, batch, batch_idx):
        codes = batch[0]
        steps = self.model.steps(codes.shape[0])  # a few decoding steps of the tile per update
        pick = torch.randperm(len(steps))[:self.hparams.steps_per_tile].tolist()
        loss = self.model.bits_loss(codes, [steps[k] for k in sorted(pick)])
        self.log("train/bits_per_bit", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val/bits_per_bit", self.model.bits_loss(batch[0]), prog_bar=True,
                 batch_size=int(batch[0].numel()))

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr,
                                weight_decay=self.hparams.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(  # cosine decay over the run
            opt, lambda s: 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * self.progress(s))))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def held_out_bits(model: BinaryContextModel, tiles: Sequence[np.ndarray]) -> float:
    """Bits per code bit the binned model spends on ``tiles`` (exact bins, as the coder)."""
    from ..entropy.learned_stage import iteration_bits

    bits = sum(float(iteration_bits(model, t).sum()) for t in tiles)
    return bits / max(1, sum(t.size for t in tiles))


def fit_entropy(codec_name: str, data_root: str | None = None, train_dir: str = "cxr/train",
                steps: int = 3000, minutes: float | None = None, hidden: int = 64,
                groups: int = 4,
                lr: float = 2e-3, seed: int = 0, upscaled: bool = True, held_out: float = 0.1,
                max_images: int | None = None, cache_dir: str | None = "runs/entropy-codes",
                registry: str | None = None, progress: bool = True,
                command: str | None = None) -> dict:
    """Train and register the entropy model of the weights ``codec_name`` uses now
    (``command``: how it was run, recorded in the card).

    Returns a summary: the weights file, its hash, the base weights' hash, the held-out bits per
    code bit (and gzip's, position-major, for the same tiles), steps and minutes.
    """
    from ..coding.recurrent_payload import pack_codes
    from ..entropy import GzipStage
    from ..entropy.models import add_entry
    from ..registry import current_weights, load, resolve_name, user_registry
    from .data import default_data_root, list_images

    from ..errors import CodeczooError, WeightsError
    from ..models.base import RecurrentBinaryCodec
    from ..registry import codec_class

    name = resolve_name(codec_name)
    if not issubclass(codec_class(name), RecurrentBinaryCodec):
        raise CodeczooError(f"{name} has no binary codes to model: the learned entropy stage is "
                            f"for the recurrent codecs (sushmit2019-*, toderici2017-*)")
    located = current_weights(name)
    if located is None:
        raise WeightsError(f"{name} has no trained weights: its codes would be noise")
    codec = load(name, pretrained=True)
    root = Path(data_root) if data_root else default_data_root()
    paths = list_images(root / train_dir)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(paths))
    n_held = max(1, int(round(held_out * len(paths))))
    held = [paths[i] for i in sorted(order[:n_held])]
    train = [paths[i] for i in sorted(order[n_held:])]
    if max_images:  # coding every image costs minutes per hundred: a seeded subset
        train = train[::max(1, -(-len(train) // max_images))]
    started = time.time()
    cache = Path(cache_dir) / name if cache_dir else None
    base = located.entry.weights_hash
    train_tiles = cached_codes(cache, base, codec, train, upscaled, seed, progress)
    held_tiles = cached_codes(cache, base, codec, held, False, seed, progress)
    code_minutes = (time.time() - started) / 60

    L.seed_everything(seed, workers=True)
    module = EntropyModule(codec.code_channels, codec.max_iterations, hidden, groups, lr,
                           minutes=minutes)
    trainer = L.Trainer(
        max_steps=steps, max_time={"minutes": minutes} if minutes else None, accelerator="cpu",
        devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=progress,
        num_sanity_val_steps=0, limit_val_batches=0, enable_model_summary=False)
    loader = DataLoader(CodeTiles(train_tiles), batch_size=1, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    fit_started = time.time()
    trainer.fit(module, loader)
    fit_minutes = (time.time() - fit_started) / 60
    model = module.model.eval()

    gzip = GzipStage()
    gzip_bits = 8 * sum(len(gzip.compress(pack_codes(t))) for t in held_tiles)
    learned = held_out_bits(model, held_tiles)
    summary = {
        "codec": name, "base_weights_hash": located.entry.weights_hash,
        "train_images": len(train), "held_out_images": len(held), "train_tiles": len(train_tiles),
        "upscaled_crops": upscaled, "max_images": max_images, "steps": int(trainer.global_step), "hidden": hidden, "groups": groups, "lr": lr,
        "seed": seed, "code_minutes": round(code_minutes, 1), "fit_minutes": round(fit_minutes, 1),
        "held_out_bits_per_code_bit": round(learned, 4),
        "held_out_gzip_bits_per_code_bit": round(gzip_bits / sum(t.size for t in held_tiles), 4),
        "data": str(Path(train_dir)), "command": command or f"fit_entropy({name!r})",
    }
    target = Path(registry) if registry else user_registry()
    path = add_entry(target, name, model, located.entry.weights_hash, summary)
    summary["file"] = str(path)
    return summary
