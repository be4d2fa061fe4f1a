"""Shared fixtures: where the real data lives, and small real images.

The real radiographs come from ``../shared/data`` (override with ``CODECZOO_DATA``). Where they are
absent, tests that need them skip with a reason, unless ``CODECZOO_REQUIRE_DATA=1`` (set by
``.ci/run``), in which case a missing data folder fails the run.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("CODECZOO_DATA", REPO.parent / "shared" / "data"))

# An empty user registry for the whole run (subprocesses inherit it): weights a developer
# exported into their own per-user registry must not change what the tests see.
os.environ["CODECZOO_REGISTRY"] = tempfile.mkdtemp(prefix="codeczoo-test-registry-")

# Two CPU cores: keep torch from oversubscribing them when tests run.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def _require(path: Path) -> Path:
    if path.exists():
        return path
    if os.environ.get("CODECZOO_REQUIRE_DATA") == "1":
        pytest.fail(f"CODECZOO_REQUIRE_DATA=1 but the data folder {path} is missing")
    pytest.skip(f"real data not found at {path} (set CODECZOO_DATA to the shared data folder)")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data folder (cxr/ and dicom/)."""
    return _require(DATA)


@pytest.fixture(scope="session")
def cxr_dir(data_dir) -> Path:
    return _require(data_dir / "cxr")


@pytest.fixture(scope="session")
def dicom_dir(data_dir) -> Path:
    return _require(data_dir / "dicom")


@pytest.fixture(scope="session")
def cxr_val_images(cxr_dir):
    """Paths of the validation chest X-rays (8-bit PNG)."""
    return sorted((cxr_dir / "val").glob("*.png"))


@pytest.fixture(scope="session")
def cxr_train_images(cxr_dir):
    return sorted((cxr_dir / "train").glob("*.png"))


@pytest.fixture(scope="session")
def dicom_files(dicom_dir):
    return sorted(dicom_dir.glob("*.dcm"))


# -- committed synthetic fixtures (tests/fixtures, made by tests/fixtures/make_fixtures.py) -------
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def fixture_dir() -> Path:
    """Tiny synthetic X-rays (PNG and DICOM, 8 to 16 bit) that ship with the tests."""
    return FIXTURES


@pytest.fixture(scope="session")
def fixture_dicoms() -> list[Path]:
    return sorted(FIXTURES.glob("*.dcm"))


@pytest.fixture(scope="module")
def val_image(request):
    """A 128x160 region of a real validation chest X-ray (uint8)."""
    import numpy as np
    from PIL import Image

    path = request.getfixturevalue("cxr_val_images")[0]
    img = np.asarray(Image.open(path).convert("L"))
    h, w = img.shape
    return np.ascontiguousarray(img[h // 2 - 64:h // 2 + 64, w // 2 - 80:w // 2 + 80])


@pytest.fixture
def one_torch_thread():
    """Tiny models run faster on one thread (and leave the other core to the rest); modules
    that want it say ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
