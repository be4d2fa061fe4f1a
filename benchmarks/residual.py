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

The anchors use packages codeczoo depends on anyway (imagecodecs, pyjpegls; see pyproject.toml).

Usage::

    python benchmarks/residual.py --json benchmarks/results/residual.json   # docs/results.md
    python benchmarks/residual.py --sets cxr-val --limit 3
    python benchmarks/residual.py --base-sweep          # total bits vs base rate, training images
    python benchmarks/residual.py --speed               # 3072 x 2614 12-bit: seconds and memory
    python benchmarks/residual.py --float-noise         # how far floats move: margins' basis
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


_ROWS: dict[str, dict] = {}   # image file -> measured row (a DICOM in two sets is coded once)


def measure_image(image_name: str, img: np.ndarray, bits: int, ours) -> dict:
    if image_name in _ROWS:
        return _ROWS[image_name]
    t0 = time.time()
    row = {"image": image_name, "bits": bits, "pixels": int(img.size), "bytes": {}, "psnr": {},
           "flagged": {}}
    for k in BOUNDS:
        data = ours.encode(img, k, bits_stored=bits)
        decoded = ours.decode(data)
        _check("ours", img, decoded, k)
        row["bytes"][f"ours K={k}"] = len(data)
        row["flagged"][f"ours K={k}"] = ours.last_stats["flagged"]
        row["psnr"][f"ours K={k}"] = psnr(img, decoded, bits)
        if img.dtype.kind == "u":
            row["bytes"][f"JPEG-LS NEAR={k}"] = jpegls_bytes(img, bits, k)
    row["bytes"]["JPEG 2000 lossless"] = jpeg2000_bytes(img, bits)
    row["bytes"]["JPEG XL lossless e7"] = jpegxl_bytes(img, bits)
    row["bytes"]["PNG"] = png_bytes(img)
    row["seconds"] = time.time() - t0
    print(f"  {image_name} ({bits} bit, {img.shape[1]}x{img.shape[0]}) {row['seconds']:.1f} s",
          file=sys.stderr, flush=True)
    _ROWS[image_name] = row
    return row


def run_set(name: str, limit: int | None, base_quality: int | None) -> dict:
    from codeczoo.residual import bounded

    ours = bounded("jpeg2000", base_quality)
    rows = [measure_image(n, img, bits, ours) for n, img, bits in load_set(name, limit)]
    pixels = sum(r["pixels"] for r in rows)
    keys = rows[0]["bytes"].keys() if rows else []
    bpp = {k: sum(r["bytes"][k] for r in rows) * 8 / pixels for k in keys}
    mean_psnr = {k: float(np.mean([r["psnr"][k] for r in rows])) for k in rows[0]["psnr"]} if rows else {}
    return {"set": name, "images": len(rows), "pixels": pixels, "bpp": bpp,
            "psnr_ours": mean_psnr, "per_image": rows}


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
        lines.append(f"| PSNR of ours, K={k} (dB, mean) | " + " | ".join(
            f"{r['psnr_ours'].get(f'ours K={k}', float('nan')):.2f}" for r in results) + " |")
    return "\n".join(lines)


def per_image_table(results: list[dict]) -> str:
    """One line per image of the DICOM sets: ours against JPEG-LS and JPEG 2000 (bpp)."""
    rows = {r["image"]: r for res in results if res["set"].startswith("dicom")
            for r in res["per_image"]}
    keys = ["ours K=0", "JPEG-LS NEAR=0", "JPEG 2000 lossless", "JPEG XL lossless e7", "PNG",
            "ours K=2", "JPEG-LS NEAR=2"]
    lines = ["| DICOM | bits | trained on | " + " | ".join(keys) + " |",
             "|---|---|---|" + "---|" * len(keys)]
    for name, r in sorted(rows.items()):
        cells = [f"{r['bytes'][k] * 8 / r['pixels']:.3f}" if k in r["bytes"] else "n/a" for k in keys]
        lines.append(f"| {name} | {r['bits']} | {'yes' if name in DICOM_TRAIN else 'no'} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def _centre(img: np.ndarray, size: int) -> np.ndarray:
    top, left = max(0, (img.shape[0] - size) // 2), max(0, (img.shape[1] - size) // 2)
    return np.ascontiguousarray(img[top:top + size, left:left + size])


def base_sweep(limit: int, ratios: list[int]) -> None:
    """Total bits of ours against the JPEG 2000 base ratio, on training images (not held out:
    choosing the default base rate must not look at the evaluation images)."""
    from codeczoo.residual import bounded

    sets = [("cxr-train", limit), ("dicom-train", None)]
    print("| base ratio | " + " | ".join(f"{s} K={k}" for s, _ in sets for k in (0, 2, 8)) + " |")
    print("|---|" + "---|" * (3 * len(sets)))
    loaded = {s: list(load_set(s, lim)) for s, lim in sets}
    # the centre 1024 x 1024 of each training DICOM keeps the sweep within minutes
    loaded["dicom-train"] = [(n, _centre(img, 1024), b) for n, img, b in loaded["dicom-train"]]
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


def float_noise() -> None:
    """How much the floats that stable rounding quantizes move when the computation changes
    (thread count, strip height: summation order, which another machine may also change), in
    the units the margins are given in."""
    import torch

    from codeczoo.residual import bounded, coder
    from codeczoo.residual.codec import BASE_PRECISION

    _, img, bits = next(load_set("cxr-val", 1))
    codec = bounded("jpeg2000", 40)
    c0 = codec.base.decode(codec.base.encode(img, 40)).astype(np.int64)
    grid = coder._Grid(*img.shape)
    c0s = grid.split(grid.pad(c0))
    context = ((grid.split(grid.pad(img.astype(np.int64))) - c0s) / 255.0).astype(np.float32)

    def indices(threads: int, rows: int) -> np.ndarray:
        torch.set_num_threads(threads)
        coder.STRIP_ROWS = rows
        predictor = coder._Predictor(codec.model, c0s, bits, 5, 0)
        out = []
        for p in range(4):
            a, s = predictor.predict(context, p, coder.PASS_ORDER[p])
            out += list(predictor.index_values(a, s))
        return np.stack(out)

    reference = indices(1, 128)
    for label, args in (("2 threads", (2, 128)), ("strips of 32 rows", (1, 32)),
                        ("one strip", (1, 4096))):
        diff = np.abs(indices(*args) - reference).max()
        print(f"residual model, {label} vs 1 thread / 128 rows: max |change| {diff:.3g} index units "
              f"(margin {coder.MARGIN:.3g})")
    learned = bounded("toderici2017-lstm-oneshot-small", 4)
    data = learned.base.encode(img, 4)
    from codeczoo import bitstream

    header, payload = bitstream.unpack(data)
    units = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        units.append(learned.base.decode_unit_values(payload, header).astype(np.float64))
    diff = np.abs(units[0] - units[1]).max() * ((1 << BASE_PRECISION) - 1)
    print(f"learned base (toderici2017-lstm-oneshot-small, 4 iterations), 2 vs 1 thread: max "
          f"|change| {diff:.3g} units of the {BASE_PRECISION}-bit grid")


def record(results: list[dict], command: str) -> None:
    """Record the cxr-val results in the residual weights' training.json (``evaluations``, as
    ``codeczoo eval --record`` does), with the weights hash they were measured with."""
    from codeczoo.residual import bounded
    from codeczoo.training.export import record_evaluation

    val = next((r for r in results if r["set"] == "cxr-val"), None)
    if val is None:
        raise SystemExit("--record needs the cxr-val set")
    finite = lambda v: None if not np.isfinite(v) else float(v)  # noqa: E731
    record_evaluation("residual", {
        "command": command, "dataset": {"source": "../shared/data/cxr/val", "images": val["images"],
                                        "pixels": val["pixels"], "bit_depths": [8]},
        "bit_depth": 8, "quality": list(BOUNDS),
        "weights_hash": bounded("jpeg2000").weights_hash().hex(),
        "base": "jpeg2000 (reversible 5/3), default ratio",
        "results": {"bpp": [val["bpp"][f"ours K={k}"] for k in BOUNDS],
                    "psnr": [finite(val["psnr_ours"][f"ours K={k}"]) for k in BOUNDS],
                    "max_error": list(BOUNDS)},
        "anchors_bpp": {k: v for k, v in val["bpp"].items() if not k.startswith("ours")},
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="cxr-val,dicom-all,dicom-heldout")
    parser.add_argument("--limit", type=int, help="first N images of each set")
    parser.add_argument("--base-quality", type=int, help="JPEG 2000 base ratio (default: the codec's)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--record", action="store_true",
                        help="record the cxr-val results in registry/residual/training.json")
    parser.add_argument("--base-sweep", action="store_true")
    parser.add_argument("--ratios", default="10,20,40,80,160")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--bounds", default="0,2")
    parser.add_argument("--float-noise", action="store_true")
    parser.add_argument("--speed-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.speed_child:
        step, k, folder = args.speed_child
        speed_child(step, int(k), Path(folder))
        return
    if args.float_noise:
        float_noise()
        return
    if args.speed:
        speed([int(k) for k in args.bounds.split(",")])
        return
    if args.base_sweep:
        base_sweep(args.limit or 10, [int(r) for r in args.ratios.split(",")])
        return
    results = [run_set(s, args.limit, args.base_quality) for s in args.sets.split(",")]
    command = "python " + " ".join(["benchmarks/residual.py"] + sys.argv[1:])
    print(f"command: {command}")
    print(table(results))
    print()
    print(per_image_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    if args.record:
        record(results, command)


if __name__ == "__main__":
    main()
