"""The real DICOM tools the compressed-DICOM tests check against, and small real DICOMs.

``dciodvfy`` (Debian/Ubuntu package ``dicom3tools``) validates a file against its IOD;
``dcmdjpls``/``dcmftest`` (package ``dcmtk``) decode JPEG-LS and check the file format. A test
that needs a missing tool skips with the install line, unless ``CODECZOO_REQUIRE_TOOLS=1`` (CI
sets it), in which case it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest

PACKAGES = {"dciodvfy": "dicom3tools", "dcmdjpls": "dcmtk", "dcmftest": "dcmtk"}


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    why = f"{name} not found (apt-get install {PACKAGES.get(name, name)})"
    if os.environ.get("CODECZOO_REQUIRE_TOOLS") == "1":
        pytest.fail(f"CODECZOO_REQUIRE_TOOLS=1 but {why}")
    pytest.skip(why)


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([require_tool(args[0]), *args[1:]], capture_output=True, timeout=120)


def dciodvfy_errors(path: Path) -> set[str]:
    """dciodvfy's error lines (warnings left out), normalised for comparison between files."""
    out = run_tool("dciodvfy", str(path))
    text = (out.stdout + out.stderr).decode("latin-1")
    return {line.strip() for line in text.splitlines() if line.startswith("Error")}


def crop_dicom(source: Path, target: Path, rows: int = 160, columns: int = 224) -> Path:
    """A real DICOM cut down to its central ``rows`` x ``columns`` pixels, stored uncompressed:
    its attributes are the real ones (patient, study, equipment), and coding it is fast."""
    ds = pydicom.dcmread(source)
    top, left = (ds.Rows - rows) // 2, (ds.Columns - columns) // 2
    pixels = ds.pixel_array[top:top + rows, left:left + columns].copy()
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OW" if pixels.dtype.itemsize == 2 else "OB"
    ds["PixelData"].is_undefined_length = False
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.save_as(target, enforce_file_format=True)
    return target
