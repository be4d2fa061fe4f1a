"""Training crops cut on the accelerator from images kept in its memory.

A GPU trains the zoo's small codecs on thousands of crops a second; cutting, flipping, normalising
and copying each crop on the host (and pinning and transferring the batch) becomes the limit.
:class:`ImageStack` keeps every training image once in device memory, as stored integers in one
zero-padded tensor, and cuts a whole batch with one gather from the positions that
:class:`~codeczoo.training.data.CropPositionDataset` yields (``XrayDataModule(crops_on_device=True)``).
The result equals the host path (:class:`~codeczoo.training.data.RandomCropDataset`) bit for bit:
same pixels, same flips, the same float32 division by ``2**bits_stored - 1``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import CodeczooError


class ImageStack:
    """Images of different sizes in one ``(N, H_max, W_max)`` tensor (``uint8`` when every image
    has at most 8 bits stored, else ``int32``) plus each image's scale ``2**bits - 1``."""

    def __init__(self, images: Sequence, device: torch.device | str = "cpu"):
        if not images:
            raise CodeczooError("no images to stack")
        height = max(img.values.shape[0] for img in images)
        width = max(img.values.shape[1] for img in images)
        small = all(img.bits_stored <= 8 for img in images)
        pixels = np.zeros((len(images), height, width), dtype=np.uint8 if small else np.int32)
        for k, img in enumerate(images):
            h, w = img.values.shape
            pixels[k, :h, :w] = img.values
        self.pixels = torch.from_numpy(pixels).to(device)
        self.scale = torch.tensor([img.scale for img in images], dtype=torch.float32, device=device)

    @property
    def device(self) -> torch.device:
        return self.pixels.device

    @property
    def nbytes(self) -> int:
        return self.pixels.numel() * self.pixels.element_size()

    def to(self, device: torch.device | str) -> "ImageStack":
        self.pixels, self.scale = self.pixels.to(device), self.scale.to(device)
        return self

    def crops(self, positions: Tensor, size: int) -> Tensor:
        """Crops ``(B, 1, size, size)`` float32 in [0, 1] for rows ``(image, top, left, hflip,
        vflip)`` of ``positions`` (int64, on this stack's device): one gather, no host work."""
        image, top, left, hflip, vflip = positions.to(self.device).unbind(1)
        ramp = torch.arange(size, device=self.device)
        back = size - 1 - ramp
        rows = top[:, None] + torch.where(vflip[:, None].bool(), back, ramp)
        cols = left[:, None] + torch.where(hflip[:, None].bool(), back, ramp)
        patch = self.pixels[image[:, None, None], rows[:, :, None], cols[:, None, :]]
        return (patch.to(torch.float32) / self.scale[image][:, None, None])[:, None]
