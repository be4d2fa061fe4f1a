"""Bounded-error coding (codeczoo.residual) against the lossless / near-lossless anchors.

Prints a markdown table of bits per pixel, **measured from whole coded files** (bytes x 8 /
pixels, summed over the set), for

* ours: ``residual`` over a JPEG 2000 base, K = 0 (lossless), 1, 2, 4, 8;
* JPEG-LS (ISO/IEC 14495-1, CharLS through ``pyjpegls``) lossless and near-lossless NEAR = K,
  with the image's real bit depth;
* JPEG 2000 lossless (codeczoo's ``jpeg2000``, quality 1);
* JPEG XL lossless (libjxl through ``imagecodecs``, effort 7, real bit depth);
* PNG (``imagecodecs``, zlib level 9; 16-bit samples above 8 bits).

Every coded file is decoded again and checked: exact for lossless, ``max |error| <= K`` for
near-lossless (a broken anchor would be a wrong comparison).  Sets: ``cxr-val`` (the 20
held-out chest X-rays, 8 bit), ``dicom-heldout`` (the three DICOMs the residual model did not
train on) and ``dicom-all`` (all six; three are training images of the residual model).

Anchors need two packages the library itself does not::

    pip install imagecodecs==2025.3.30
    pip install --no-deps pyjpegls==1.5.1   # its metadata asks numpy>=2; it runs on 1.26

Usage::

    python benchmarks/residual.py                       # all sets -> table (docs/results.md)
    python benchmarks/residual.py --sets cxr-val --limit 3
    python benchmarks/residual.py --base-sweep          # total bits vs base rate, training images
    python benchmarks/residual.py --speed               # 3072 x 2614 12-bit: seconds and memory
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("CODECZOO_DATA", REPO.parent / "shared" / "data"))
DICOM_TRAIN = ("RG1_UNCR.dcm", "RG3_UNCR.dcm", "966_fixed.dcm")   # recipes/residual/*.yaml
BOUNDS = (0, 1, 2, 4, 8)


def load_set(name: str, limit: int | None):
    from codeczoo.io import read_image

    if name == "cxr-val":
        paths = sorted((DATA / "cxr" / "val").glob("*.png"))
    elif name == "cxr-train":
        paths = sorted((DATA / "cxr" / "train").glob("*.png"))
    elif name == "dicom-all":
        paths = sorted((DATA / "dicom").glob("*.dcm"))
    elif name == "dicom-heldout":
        paths = [p for p in sorted((DATA / "dicom").glob("*.dcm")) if p.name not in DICOM_TRAIN]
    elif name == "dicom-train":
        paths = [DATA / "dicom" / n for n in DICOM_TRAIN]
    else:
        raise SystemExit(f"unknown set {name}")
    if limit:
        paths = paths[:limit]
    for path in paths:
        image = read_image(path)
        yield path.name, np.ascontiguousarray(image.pixels), image.bits_stored


# -- anchors ---------------------------------------------------------------------------------
def _check(name: str, original: np.ndarray, decoded: np.ndarray, bound: int) -> float:
    err = int(np.abs(decoded.astype(np.int64) - original.astype(np.int64)).max())
    if decoded.shape != original.shape or err > bound:
        raise SystemExit(f"{name}: decoded image violates its bound ({err} > {bound})")
    return err


def jpegls_bytes(img: np.ndarray, bits: int, near: int) -> int:
    import jpeg_ls

    data = bytes(jpeg_ls.encode_buffer(np.ascontiguousarray(img).tobytes(), img.shape[0],
                                       img.shape[1], 1, bits, lossy_error=near))
    buf, info = jpeg_ls.decode_buffer(data)
    out = np.frombuffer(bytes(buf), dtype=img.dtype).reshape(img.shape)
    _check("JPEG-LS", img, out, near)
    return len(data)


def jpegxl_bytes(img: np.ndarray, bits: int) -> int:
    import imagecodecs

    data = imagecodecs.jpegxl_encode(img, lossless=True, effort=7, bitspersample=bits)
    _check("JPEG XL", img, imagecodecs.jpegxl_decode(data), 0)
    return len(data)


def png_bytes(img: np.ndarray) -> int:
    import imagecodecs

    data = imagecodecs.png_encode(img, level=9)
    _check("PNG", img, imagecodecs.png_decode(data), 0)
    return len(data)


def jpeg2000_bytes(img: np.ndarray, bits: int) -> int:
    import codeczoo

    codec = codeczoo.load("jpeg2000")
    data = codec.encode(img, 1, bits_stored=bits)
    _check("JPEG 2000", img, codec.decode(data), 0)
    return len(data)


def psnr(a: np.ndarray, b: np.ndarray, bits: int) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(((1 << bits) - 1) ** 2 / mse)


def run_set(name: str, limit: int | None, base_quality: int | None) -> dict:
    from codeczoo.residual import bounded

    ours = bounded("jpeg2000", base_quality)
    totals: dict[str, float] = {}
    psnrs: dict[str, list[float]] = {}
    pixels = 0
    images = []
    for image_name, img, bits in load_set(name, limit):
        t0 = time.time()
        row = {"image": image_name, "bits": bits, "pixels": int(img.size)}
        for k in BOUNDS:
            data = ours.encode(img, k, bits_stored=bits)
            decoded = ours.decode(data)
            _check("ours", img, decoded, k)
            row[f"ours K={k}"] = len(data)
            row[f"ours K={k} flagged"] = ours.last_stats["flagged"]
            psnrs.setdefault(f"ours K={k}", []).append(psnr(img, decoded, bits))
            unsigned = img if img.dtype.kind == "u" else None
            if unsigned is not None:
                row[f"JPEG-LS NEAR={k}"] = jpegls_bytes(img, bits, k)
        row["JPEG 2000 lossless"] = jpeg2000_bytes(img, bits)
        row["JPEG XL lossless e7"] = jpegxl_bytes(img, bits)
        row["PNG"] = png_bytes(img)
        for key, value in row.items():
            if key not in ("image", "bits", "pixels") and not key.endswith("flagged"):
                totals[key] = totals.get(key, 0) + value
        pixels += img.size
        images.append(row)
        print(f"  {name}: {image_name} ({bits} bit, {img.shape[1]}x{img.shape[0]}) "
              f"{time.time() - t0:.1f} s", file=sys.stderr)
    bpp = {k: v * 8 / pixels for k, v in totals.items()}
    return {"set": name, "images": len(images), "pixels": pixels, "bpp": bpp,
            "psnr_ours": {k: float(np.mean(v)) for k, v in psnrs.items()}, "per_image": images}


def table(results: list[dict]) -> str:
    names = [r["set"] for r in results]
    lines = ["| method | " + " | ".join(f"{n} ({r['images']} images)" for n, r in
                                          zip(names, results)) + " |",
             "|---|" + "---|" * len(results)]

    def row(label, key, bold_if_best_of=None):
        cells = []
        for r in results:
            value = r["bpp"].get(key)
            cells.append("n/a" if value is None else f"{value:.3f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    lines.append("| **lossless** | " + " | " * (len(results) - 1) + " |")
    row("ours (residual over JPEG 2000), K=0", "ours K=0")
    row("JPEG-LS lossless", "JPEG-LS NEAR=0")
    row("JPEG 2000 lossless", "JPEG 2000 lossless")
    row("JPEG XL lossless, effort 7", "JPEG XL lossless e7")
    row("PNG", "PNG")
    for k in BOUNDS[1:]:
        lines.append(f"| **max error {k}** | " + " | " * (len(results) - 1) + " |")
        row(f"ours, K={k}", f"ours K={k}")
        row(f"JPEG-LS NEAR={k}", f"JPEG-LS NEAR={k}")
    return "\n".join(lines)


def base_sweep(limit: int, ratios: list[int]) -> None:
    """Total bits of ours against the JPEG 2000 base ratio, on training images (not held out:
    choosing the default base rate must not look at the evaluation images)."""
    from codeczoo.residual import bounded

    sets = [("cxr-train", limit), ("dicom-train", None)]
    print("| base ratio | " + " | ".join(f"{s} K={k}" for s, _ in sets for k in (0, 2, 8)) + " |")
    print("|---|" + "---|" * (3 * len(sets)))
    loaded = {s: list(load_set(s, lim)) for s, lim in sets}
    for ratio in ratios:
        ours = bounded("jpeg2000", ratio)
        cells = []
        for s, _ in sets:
            for k in (0, 2, 8):
                total = sum(len(ours.encode(img, k, bits_stored=bits)) for _, img, bits in loaded[s])
                pixels = sum(img.size for _, img, _ in loaded[s])
                cells.append(f"{total * 8 / pixels:.3f}")
        print(f"| {ratio} | " + " | ".join(cells) + " |", flush=True)


# -- speed -----------------------------------------------------------------------------------
SPEED_SHAPE = (3072, 2614)


def speed_image() -> np.ndarray:
    """A 3072 x 2614 12-bit radiograph: the real 12-bit DX chest 966_fixed.dcm (2128 x 2000),
    upsampled bilinearly (scipy.ndimage.zoom, order 1)."""
    from scipy.ndimage import zoom

    from codeczoo.io import read_image

    src = read_image(DATA / "dicom" / "966_fixed.dcm").pixels.astype(np.float64)
    big = zoom(src, (SPEED_SHAPE[0] / src.shape[0], SPEED_SHAPE[1] / src.shape[1]), order=1)
    return np.clip(np.rint(big), 0, 4095).astype(np.uint16)[:SPEED_SHAPE[0], :SPEED_SHAPE[1]]


def speed_child(step: str, k: int, folder: Path) -> None:
    import torch

    torch.set_num_threads(2)
    from codeczoo.residual import bounded

    codec = bounded("jpeg2000")
    if step == "encode":
        img = np.load(folder / "image.npy")
        t0 = time.perf_counter()
        data = codec.encode(img, k, bits_stored=12)
        seconds = time.perf_counter() - t0
        (folder / f"k{k}.czoo").write_bytes(data)
        extra = {"bytes": len(data), "bpp": len(data) * 8 / img.size}
    else:
        data = (folder / f"k{k}.czoo").read_bytes()
        t0 = time.perf_counter()
        out = codec.decode(data)
        seconds = time.perf_counter() - t0
        img = np.load(folder / "image.npy")
        extra = {"max_error": int(np.abs(out.astype(np.int64) - img).max())}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(json.dumps({"step": step, "K": k, "seconds": seconds, "peak_rss_gib": peak, **extra}))


def speed(bounds: list[int]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        np.save(folder / "image.npy", speed_image())
        env = {**os.environ, "OMP_NUM_THREADS": "2"}
        print(f"{SPEED_SHAPE[1]}x{SPEED_SHAPE[0]} 12-bit (966_fixed.dcm upsampled), 2 threads, "
              f"{os.cpu_count()} CPUs; peak = max resident set size of the process (imports included)")
        for k in bounds:
            for step in ("encode", "decode"):
                out = subprocess.run([sys.executable, __file__, "--speed-child", step, str(k), tmp],
                                     env=env, capture_output=True, text=True, check=True)
                result = json.loads(out.stdout.strip().splitlines()[-1])
                print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="cxr-val,dicom-heldout,dicom-all")
    parser.add_argument("--limit", type=int, help="first N images of each set")
    parser.add_argument("--base-quality", type=int, help="JPEG 2000 base ratio (default: the codec's)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--base-sweep", action="store_true")
    parser.add_argument("--ratios", default="10,20,40,80,160")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--bounds", default="0,2")
    parser.add_argument("--speed-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.speed_child:
        step, k, folder = args.speed_child
        speed_child(step, int(k), Path(folder))
        return
    if args.speed:
        speed([int(k) for k in args.bounds.split(",")])
        return
    if args.base_sweep:
        base_sweep(args.limit or 10, [int(r) for r in args.ratios.split(",")])
        return
    results = [run_set(s, args.limit, args.base_quality) for s in args.sets.split(",")]
    print(f"command: python benchmarks/residual.py --sets {args.sets}"
          + (f" --limit {args.limit}" if args.limit else ""))
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
