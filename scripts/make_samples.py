"""Rebuild the demo images bundled in ``codeczoo/samples/`` from the shared data set.

    python scripts/make_samples.py ../shared/data

Chest X-rays (8-bit PNG, CC BY 3.0, Hannover Medical School) are reduced to 256 px wide with a
Lanczos filter and centre-cropped to 256x256; one 16-bit DX chest DICOM (pylibjpeg-data, MIT)
gives a 256x256 12-bit-valued crop stored as 16-bit PNG, so the demo exercises both bit depths.
The images come from the *train* split so that validation numbers stay untouched.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image

OUT = Path(__file__).resolve().parent.parent / "codeczoo" / "samples"
CXR_TRAIN = ("006f3a8a", "00870a9c", "00d96e05")


def crop_center(array: np.ndarray, size: int) -> np.ndarray:
    top = (array.shape[0] - size) // 2
    left = (array.shape[1] - size) // 2
    return array[top:top + size, left:left + size]


def main(data: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for i, image_id in enumerate(CXR_TRAIN, 1):
        image = Image.open(data / "cxr" / "train" / f"{image_id}.png").convert("L")
        scale = 256 / image.width
        image = image.resize((256, max(256, round(image.height * scale))), Image.LANCZOS)
        Image.fromarray(crop_center(np.asarray(image), 256)).save(OUT / f"chest_{i}_8bit.png")
    ds = pydicom.dcmread(data / "dicom" / "JPEG2KLossless_1s_1f_u_16_16.dcm")
    pixels = ds.pixel_array[::4, ::4]  # plain decimation keeps the stored integers
    crop = crop_center(pixels, 256).astype(np.uint16)
    Image.fromarray(crop).save(OUT / "chest_dx_16bit.png")
    print(f"wrote samples to {OUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
