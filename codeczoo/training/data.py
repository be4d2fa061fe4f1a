"""X-ray crops for training learned codecs: :class:`XrayDataModule`.

What it does (Sushmit et al. 2019 train one network per crop size on random n x n crops of chest
X-rays with patient-exclusive splits; Toderici et al. 2017 on 32 x 32 crops):

* reads every image (PNG, JPEG, ``.npy``, DICOM) directly in the split folders with :func:`codeczoo.io.read_image` and
  keeps the decoded stored integers in memory (unsigned working range, ``uint16``);
* splits **by patient**: either the folders are given (``train_dir`` / ``val_dir`` /
  ``test_dir``; the CSVs, when given, are used to check that no patient is in two of them), or
  one folder (``split_dir``) is split by patient with ``split_seed`` and ``split_fractions``
  using a CSV that maps ``image_id`` (the file stem) to ``patient_id``;
* training samples are random ``crop_size`` squares with random flips, ``crops_per_image`` per
  image per epoch; their positions are a pure function of ``(seed, epoch, index)``, so they do
  not depend on the number of workers or ranks, and a resumed run sees the crops it would have;
* validation / test samples are fixed (seeded) crops of ``val_crop_size``, the same in every run,
  so numbers are comparable between runs and checkpoints;
* intensities are normalised by each image's own bit depth: ``values / (2**bits_stored - 1)``
  in [0, 1]. Photometric interpretation is kept as stored (MONOCHROME1 is not inverted): the
  codecs code stored integers, so they train on them.

Paths: ``data_root`` defaults to ``$CODECZOO_DATA`` or else ``../shared/data`` beside the
repository; relative folder and CSV paths are taken relative to ``data_root``.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .. import intensity
from ..errors import CodeczooError

DATA_ENV = "CODECZOO_DATA"
_REPO = Path(__file__).resolve().parents[2]

PathList = Union[str, Sequence[str], None]


def default_data_root() -> Path:
    """``$CODECZOO_DATA``, else ``../shared/data`` beside the repository root."""
    env = os.environ.get(DATA_ENV)
    return Path(env) if env else _REPO.parent / "shared" / "data"


@dataclass
class CachedImage:
    """A decoded image kept in memory: unsigned stored values and their bit depth."""

    image_id: str
    values: np.ndarray  # uint16, H x W, in [0, 2**bits_stored - 1]
    bits_stored: int

    @property
    def scale(self) -> float:
        return float((1 << self.bits_stored) - 1)


def list_images(folder: Path) -> list[Path]:
    """The images directly in ``folder`` (not its subfolders), sorted (:func:`codeczoo.io.find_files`)."""
    from ..io import find_files

    if not folder.is_dir():
        raise CodeczooError(f"image folder {folder} does not exist")
    return [found.path for found in find_files(folder, recursive=False)]


def load_image(path: Path) -> CachedImage:
    """Decode ``path`` and keep its stored integers in the unsigned working range."""
    from ..io import read_image

    image = read_image(path)
    spec = intensity.describe(np.asarray(image.pixels), image.bits_stored, image.photometric)
    return CachedImage(path.stem, intensity.to_unsigned(np.asarray(image.pixels), spec),
                       spec.bits_stored)


def read_patient_map(csv_paths: Sequence[Path]) -> dict[str, str]:
    """``image_id -> patient_id`` from one or more CSVs with those two columns."""
    mapping: dict[str, str] = {}
    for path in csv_paths:
        if not path.is_file():
            raise CodeczooError(f"patient CSV {path} does not exist")
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            missing = {"image_id", "patient_id"} - set(reader.fieldnames or ())
            if missing:
                raise CodeczooError(f"{path} lacks the column(s) {', '.join(sorted(missing))}")
            for row in reader:
                image_id, patient = row["image_id"].strip(), row["patient_id"].strip()
                if mapping.get(image_id, patient) != patient:
                    raise CodeczooError(f"image {image_id} is mapped to two patients in {path}")
                mapping[image_id] = patient
    return mapping


def patients_of(paths: Sequence[Path], mapping: dict[str, str]) -> list[str]:
    unknown = [p.stem for p in paths if p.stem not in mapping]
    if unknown:
        raise CodeczooError(
            f"{len(unknown)} image(s) have no patient in the CSV (first: {unknown[0]}); "
            "a patient-exclusive split needs every image mapped")
    return [mapping[p.stem] for p in paths]


def split_by_patient(paths: Sequence[Path], mapping: dict[str, str],
                     fractions: Sequence[float], seed: int) -> list[list[Path]]:
    """Split ``paths`` into ``len(fractions)`` patient-exclusive groups.

    Patients are shuffled with ``seed`` and dealt to the splits in order until each split holds
    about its fraction of the images; every split with a positive fraction gets at least one
    patient. The result depends only on the file names, the CSV, the fractions and the seed.
    """
    fractions = [float(f) for f in fractions]
    if any(f < 0 for f in fractions) or not abs(sum(fractions) - 1.0) < 1e-6:
        raise CodeczooError(f"split_fractions must be non-negative and sum to 1, got {fractions}")
    by_patient: dict[str, list[Path]] = {}
    for path, patient in zip(paths, patients_of(paths, mapping)):
        by_patient.setdefault(patient, []).append(path)
    patients = sorted(by_patient)
    wanted = sum(1 for f in fractions if f > 0)
    if len(patients) < wanted:
        raise CodeczooError(f"{len(patients)} patient(s) cannot fill {wanted} non-empty splits")
    order = [patients[i] for i in np.random.default_rng(seed).permutation(len(patients))]
    total = len(paths)
    targets = np.cumsum(fractions) * total
    splits: list[list[Path]] = [[] for _ in fractions]
    split, taken, remaining_patients = 0, 0, len(order)
    for patient in order:
        # move on once this split has its share, keeping a patient for each later non-empty split
        later = sum(1 for f in fractions[split + 1:] if f > 0)
        while split < len(fractions) - 1 and (
                fractions[split] == 0 or (splits[split] and taken >= targets[split] - 1e-9)
                or remaining_patients <= later):
            split += 1
            later = sum(1 for f in fractions[split + 1:] if f > 0)
        splits[split].extend(by_patient[patient])
        taken += len(by_patient[patient])
        remaining_patients -= 1
    return [sorted(s) for s in splits]


def _crop_flip(img: CachedImage, top: int, left: int, size: int, hflip: bool, vflip: bool
               ) -> torch.Tensor:
    patch = img.values[top:top + size, left:left + size]
    if hflip:
        patch = patch[:, ::-1]
    if vflip:
        patch = patch[::-1, :]
    unit = np.ascontiguousarray(patch, dtype=np.float32) / np.float32(img.scale)
    return torch.from_numpy(unit)[None]


def _check_size(images: Sequence[CachedImage], size: int) -> None:
    for img in images:
        h, w = img.values.shape
        if h < size or w < size:
            raise CodeczooError(f"image {img.image_id} ({h}x{w}) is smaller than the crop size {size}")


class RandomCropDataset(Dataset):
    """``crops_per_image`` random crops (with random flips) of every image, per epoch, shuffled.

    At :meth:`set_epoch` the whole epoch is drawn at once from ``(seed, epoch)``: its order (a
    permutation of the samples) and each crop's image, position and flips (:attr:`positions`).
    So a crop is a pure function of ``(seed, epoch, index)``: it does not depend on workers, ranks
    or a sampler's state, loaders need no shuffling, a resumed run draws what it would have, and
    cutting crops on the device (:class:`~codeczoo.training.device_crops.ImageStack`) gives the
    very same crops.  The :class:`~codeczoo.training.module.CodecModule` sets the epoch at the
    start of each training epoch through :meth:`XrayDataModule.set_epoch`.
    """

    def __init__(self, images: Sequence[CachedImage], crop_size: int, crops_per_image: int,
                 seed: int = 0, hflip: bool = True, vflip: bool = False):
        if crop_size < 1 or crops_per_image < 1:
            raise CodeczooError("crop_size and crops_per_image must be positive")
        _check_size(images, crop_size)
        self.images = list(images)
        self.crop_size, self.crops_per_image = crop_size, crops_per_image
        self.seed, self.hflip, self.vflip = seed, hflip, vflip
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw epoch ``epoch``: :attr:`positions`, int64 rows ``(image, top, left, hflip,
        vflip)`` in the order the epoch visits them."""
        self.epoch = int(epoch)
        rng = np.random.default_rng((self.seed, self.epoch))
        n = len(self)
        image = rng.permutation(n) // self.crops_per_image
        shapes = np.array([img.values.shape for img in self.images], dtype=np.int64)[image]
        top = rng.integers(0, shapes[:, 0] - self.crop_size + 1)
        left = rng.integers(0, shapes[:, 1] - self.crop_size + 1)
        hflip = rng.integers(0, 2, n) if self.hflip else np.zeros(n, np.int64)
        vflip = rng.integers(0, 2, n) if self.vflip else np.zeros(n, np.int64)
        self.positions = np.stack([image, top, left, hflip, vflip], axis=1).astype(np.int64)

    def __len__(self) -> int:
        return len(self.images) * self.crops_per_image

    def __getitem__(self, index: int) -> torch.Tensor:
        k, top, left, hflip, vflip = (int(v) for v in self.positions[index])
        return _crop_flip(self.images[k], top, left, self.crop_size, bool(hflip), bool(vflip))


class CropPositionDataset(RandomCropDataset):
    """The same epochs as :class:`RandomCropDataset`, but items are the crops' positions
    (int64 ``(image, top, left, hflip, vflip)``): the loader moves a few bytes per crop and the
    pixels are cut on the device (``XrayDataModule(crops_on_device=True)``)."""

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.positions[index].copy())


class FixedCropDataset(Dataset):
    """``crops_per_image`` crops per image at positions fixed by ``seed`` (no flips)."""

    def __init__(self, images: Sequence[CachedImage], crop_size: int, crops_per_image: int,
                 seed: int = 0):
        _check_size(images, crop_size)
        self.images = list(images)
        self.crop_size = crop_size
        self.positions = []
        for k, img in enumerate(self.images):
            rng = np.random.default_rng((seed, k))
            h, w = img.values.shape
            for _ in range(crops_per_image):
                self.positions.append((k, int(rng.integers(0, h - crop_size + 1)),
                                       int(rng.integers(0, w - crop_size + 1))))

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int) -> torch.Tensor:
        k, top, left = self.positions[index]
        return _crop_flip(self.images[k], top, left, self.crop_size, False, False)


class XrayDataModule(L.LightningDataModule):
    """Patient-exclusive n x n crops of X-rays (PNG, JPEG or DICOM) for codec training.

    Args:
        data_root: base folder for relative paths (default ``$CODECZOO_DATA`` or
            ``../shared/data`` beside the repository).
        train_dir, val_dir, test_dir: given split folders (relative to ``data_root``). ``test_dir``
            ``None`` tests on the validation folder.
        split_dir: instead of given folders, one folder split by patient (needs
            ``patients_csv``); ``split_fractions`` (train, val, test) and ``split_seed`` decide it.
        patients_csv: CSV file(s) with ``image_id`` and ``patient_id`` columns. With given folders
            they are used to check that no patient appears in two splits.
        crop_size: training crop side n (the paper trains one network per n).
        crops_per_image: random crops drawn from each training image per epoch.
        val_crop_size: side of the fixed validation/test crops (default ``crop_size``; MS-SSIM is
            only computed on crops larger than 160 px).
        val_crops_per_image: fixed crops per validation/test image.
        batch_size, val_batch_size: loader batch sizes (``val_batch_size`` defaults to
            ``batch_size``).
        num_workers: DataLoader worker processes.
        hflip, vflip: random horizontal / vertical flips of training crops.
        seed: seed of the crop positions (training and validation).
        limit_images: keep only the first N images (sorted by name) of each split (quick runs).
        crops_on_device: keep the training images in the accelerator's memory (one padded
            tensor, the stored integers) and cut each batch's crops there with one gather; the
            loader only carries crop positions. The crops are exactly the host path's. For data
            sets that fit in device memory (the shared chest X-rays: about 100 MB).
    """

    def __init__(self, data_root: Optional[str] = None, train_dir: Optional[str] = "cxr/train",
                 val_dir: Optional[str] = "cxr/val", test_dir: Optional[str] = None,
                 split_dir: Optional[str] = None, patients_csv: PathList = None,
                 split_fractions: Sequence[float] = (0.8, 0.1, 0.1), split_seed: int = 0,
                 crop_size: int = 32, crops_per_image: int = 32,
                 val_crop_size: Optional[int] = None, val_crops_per_image: int = 4,
                 batch_size: int = 32, val_batch_size: Optional[int] = None,
                 num_workers: int = 0, hflip: bool = True, vflip: bool = False, seed: int = 0,
                 limit_images: Optional[int] = None, crops_on_device: bool = False):
        super().__init__()
        self.save_hyperparameters()
        if split_dir is None and train_dir is None:
            raise CodeczooError("give either train_dir (and val_dir) or split_dir")
        if split_dir is not None and not patients_csv:
            raise CodeczooError("split_dir needs patients_csv to split by patient")
        self.root = Path(data_root) if data_root else default_data_root()
        self.crop_size, self.crops_per_image = int(crop_size), int(crops_per_image)
        self.val_crop_size = int(val_crop_size or crop_size)
        self.val_crops_per_image = int(val_crops_per_image)
        self.batch_size = int(batch_size)
        self.val_batch_size = int(val_batch_size or batch_size)
        self.num_workers, self.seed = int(num_workers), int(seed)
        self.hflip, self.vflip = hflip, vflip
        self.limit_images = limit_images
        self.crops_on_device = bool(crops_on_device)
        self._stack = None  # ImageStack of the training images (crops_on_device)
        self.split_paths: dict[str, list[Path]] = {}
        self._cache: dict[Path, CachedImage] = {}
        self.train_set: Optional[RandomCropDataset] = None
        self.val_set: Optional[FixedCropDataset] = None
        self.test_set: Optional[FixedCropDataset] = None

    # -- paths and splits ------------------------------------------------------------------
    def _path(self, p: str) -> Path:
        path = Path(os.path.expanduser(p))
        return path if path.is_absolute() else self.root / path

    def _csvs(self) -> list[Path]:
        csvs = self.hparams.patients_csv
        if not csvs:
            return []
        if isinstance(csvs, (str, os.PathLike)):
            csvs = [csvs]
        return [self._path(c) for c in csvs]

    def resolve_splits(self) -> dict[str, list[Path]]:
        """``{"train", "val", "test"}`` -> image paths, patient-exclusive (checked or made)."""
        if self.split_paths:
            return self.split_paths
        hp = self.hparams
        mapping = read_patient_map(self._csvs()) if hp.patients_csv else None
        if hp.split_dir is not None:
            fractions = list(hp.split_fractions)
            if len(fractions) != 3:
                raise CodeczooError("split_fractions needs three values (train, val, test)")
            parts = split_by_patient(list_images(self._path(hp.split_dir)), mapping, fractions,
                                     hp.split_seed)
            splits = dict(zip(("train", "val", "test"), parts))
        else:
            splits = {"train": list_images(self._path(hp.train_dir))}
            splits["val"] = list_images(self._path(hp.val_dir)) if hp.val_dir else []
            splits["test"] = list_images(self._path(hp.test_dir)) if hp.test_dir else splits["val"]
            if mapping is not None:
                self._check_exclusive(splits, mapping)
        if self.limit_images:
            splits = {k: v[: int(self.limit_images)] for k, v in splits.items()}
        self.split_paths = splits
        return splits

    @staticmethod
    def _check_exclusive(splits: dict[str, list[Path]], mapping: dict[str, str]) -> None:
        seen: dict[str, str] = {}
        for name in ("train", "val", "test"):
            if name == "test" and splits["test"] is splits["val"]:
                continue
            for patient in set(patients_of(splits[name], mapping)):
                if seen.get(patient, name) != name:
                    raise CodeczooError(
                        f"patient {patient} has images in both {seen[patient]} and {name}: "
                        "the splits are not patient-exclusive")
                seen[patient] = name

    def describe(self) -> dict:
        """What the data were (recorded on the codec card by ``codeczoo export``)."""
        splits = self.resolve_splits()
        return {
            # relative to the repository, so a card does not carry one machine's absolute path
            "root": os.path.relpath(self.root, Path(__file__).resolve().parents[2]),
            "splits": {k: len(v) for k, v in splits.items()},
            "split": ("given folders" if self.hparams.split_dir is None else
                      f"{self.hparams.split_dir} by patient, fractions "
                      f"{list(self.hparams.split_fractions)}, seed {self.hparams.split_seed}"),
            "crop_size": self.crop_size, "crops_per_image": self.crops_per_image,
            "val_crop_size": self.val_crop_size, "hflip": self.hflip, "vflip": self.vflip,
        }

    # -- Lightning hooks ---------------------------------------------------------------------
    def _images(self, paths: Sequence[Path]) -> list[CachedImage]:
        out = []
        for path in paths:
            if path not in self._cache:
                self._cache[path] = load_image(path)
            out.append(self._cache[path])
        return out

    def setup(self, stage: Optional[str] = None) -> None:
        splits = self.resolve_splits()
        if stage in (None, "fit") and self.train_set is None:
            kind = CropPositionDataset if self.crops_on_device else RandomCropDataset
            self.train_set = kind(self._images(splits["train"]), self.crop_size,
                                  self.crops_per_image, self.seed, self.hflip, self.vflip)
            if self.crops_on_device:
                from .device_crops import ImageStack

                self._stack = ImageStack(self.train_set.images)
        if stage in (None, "fit", "validate") and self.val_set is None and splits["val"]:
            self.val_set = FixedCropDataset(self._images(splits["val"]), self.val_crop_size,
                                            self.val_crops_per_image, self.seed)
        if stage in (None, "test") and self.test_set is None:
            if not splits["test"]:
                raise CodeczooError("no test images (set test_dir, or split_dir with a test fraction)")
            self.test_set = FixedCropDataset(self._images(splits["test"]), self.val_crop_size,
                                             self.val_crops_per_image, self.seed + 1)

    def set_epoch(self, epoch: int) -> None:
        """Select the random crops of training epoch ``epoch``."""
        if self.train_set is not None:
            self.train_set.set_epoch(epoch)

    def _loader(self, dataset, batch_size: int, train: bool) -> DataLoader:
        # No loader shuffling: RandomCropDataset shuffles itself as a function of the epoch.
        # Workers are not persistent so each epoch's workers see the epoch set by set_epoch.
        if dataset is None:
            raise CodeczooError("the data module has no such split (call setup first)")
        return DataLoader(dataset, batch_size=batch_size, shuffle=False, drop_last=train,
                          num_workers=self.num_workers, persistent_workers=False,
                          pin_memory=torch.cuda.is_available())

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """With ``crops_on_device``: crop positions (on the device already) -> crops."""
        if (self._stack is not None and isinstance(batch, torch.Tensor)
                and batch.dtype == torch.int64 and batch.dim() == 2):
            if self._stack.device != batch.device:
                self._stack = self._stack.to(batch.device)
            return self._stack.crops(batch, self.crop_size)
        return batch

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.val_batch_size, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, self.val_batch_size, train=False)
