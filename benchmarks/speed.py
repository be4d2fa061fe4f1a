"""Encode / decode speed and peak memory of every codeczoo codec, as a markdown table.

Each (codec, quality) case runs in its own subprocess, so its peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``: everything torch allocates, not only what
``tracemalloc`` sees) belongs to that case alone.  The image is a real chest X-ray from
``<data>/cxr/val`` upsampled (bicubic) to the requested size, or a smooth synthetic image when
the data folder is absent (the table says which).

Usage::

    python benchmarks/speed.py                                  # every codec, 1024x1024, CPU
    python benchmarks/speed.py --codecs sushmit2019-rnnconv --qualities 1,4,8,16
    python benchmarks/speed.py --device cuda                    # on a GPU, when there is one
    python benchmarks/speed.py --large                          # the 3072x2614, 12-bit check
    python benchmarks/speed.py --codecs toderici2017-lstm-oneshot --qualities 1 --threads 2
    python benchmarks/speed.py --device cuda --batch 32 --qualities 8   # images/s, batched

``--batch N`` codes N different X-rays (each val image resized to the size) with
``encode_batch`` / ``decode_batch``: their tiles share network batches (``--batch-tiles``,
default all of them) and DEFLATE runs in a thread pool beside the network; the table then
reports images per second, after one untimed warm-up batch. ``--dtype float16`` and
``--channels-last`` run the network in half precision / NHWC (fp16 copies of the shipped fp16
weights hash the same, so their bitstreams decode anywhere).

Figures are for the codecs' current weights (random until trained: speed and memory do not
depend on the weights; bpp does, a little, through the gzip stage).
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
LARGE = (3072, 2614)


def test_image(height: int, width: int, bits: int, index: int = 0) -> tuple[np.ndarray, str]:
    """A real chest X-ray (the ``index``-th of cxr/val, cycling) resized to height x width at
    ``bits`` bits (or a synthetic one)."""
    from PIL import Image

    paths = sorted((DATA / "cxr" / "val").glob("*.png"))
    if paths:
        path = paths[index % len(paths)]
        img = Image.open(path).convert("F").resize((width, height), Image.BICUBIC)
        arr, source = np.asarray(img, dtype=np.float64) / 255.0, f"cxr/val/{path.name}"
    else:
        yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
        arr, source = 0.5 + 0.4 * np.sin(6 * xx) * np.cos(4 * yy), "synthetic"
    top = (1 << bits) - 1
    values = np.clip(np.rint(arr * top), 0, top)
    return values.astype(np.uint8 if bits <= 8 else np.uint16), source


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def run_case(args) -> dict:
    """Child process: one codec at one quality; prints a JSON line."""
    import torch

    torch.set_num_threads(args.threads)
    import codeczoo

    device = args.device
    codec = codeczoo.load(args.codecs)
    if device != "cpu":
        codec.to(device)
    if args.dtype != "float32":
        codec.to(getattr(torch, args.dtype))
    if args.channels_last:
        codec.to(memory_format=torch.channels_last)
    if args.batch > 1:
        return run_batch_case(args, codec, torch)
    height, width = args.size
    image, source = test_image(height, width, args.bits)
    base = rss_mib()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    if device.startswith("cuda"):
        codec.encode(image[:64, :64], args.quality, bits_stored=args.bits)  # warm-up kernels
        torch.cuda.reset_peak_memory_stats()
    sync()
    t0 = time.perf_counter()
    data = codec.encode(image, args.quality, bits_stored=args.bits)
    sync()
    t1 = time.perf_counter()
    peak_enc = rss_mib()
    out = codec.decode(data)
    sync()
    t2 = time.perf_counter()
    assert out.shape == image.shape and out.dtype == image.dtype
    err = out.astype(np.float64) - image
    psnr = 10 * np.log10(((1 << args.bits) - 1) ** 2 / max(float(np.mean(err ** 2)), 1e-12))
    result = {
        "codec": args.codecs, "quality": args.quality, "height": height, "width": width,
        "bits": args.bits, "device": device, "threads": args.threads, "image": source,
        "encode_s": t1 - t0, "decode_s": t2 - t1, "bytes": len(data),
        "bpp": len(data) * 8 / (height * width), "psnr_db": psnr,
        "rss_after_load_mib": base, "peak_rss_encode_mib": peak_enc, "peak_rss_mib": rss_mib(),
    }
    if device.startswith("cuda"):
        result["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return result


def run_batch_case(args, codec, torch) -> dict:
    """``--batch N``: N images through ``encode_batch`` / ``decode_batch``; images per second."""
    device = args.device
    height, width = args.size
    made = [test_image(height, width, args.bits, i) for i in range(args.batch)]
    images = [image for image, _ in made]
    source = made[0][1] if made[0][1] == "synthetic" else f"{args.batch} cxr/val images resized"
    if hasattr(codec, "batch_tiles"):  # default: every tile of the batch in one network batch
        tile = codec.tile_size
        per_image = -(-height // tile) * -(-width // tile)
        codec.batch_tiles = args.batch_tiles or per_image * args.batch
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    codec.decode_batch(codec.encode_batch(images, args.quality, bits_stored=args.bits))  # warm-up
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    base = rss_mib()
    sync()
    t0 = time.perf_counter()
    data = codec.encode_batch(images, args.quality, bits_stored=args.bits)
    sync()
    t1 = time.perf_counter()
    outs = codec.decode_batch(data)
    sync()
    t2 = time.perf_counter()
    errs = [o.astype(np.float64) - i for o, i in zip(outs, images)]
    psnr = float(np.mean([10 * np.log10(((1 << args.bits) - 1) ** 2 / max(float(np.mean(e ** 2)), 1e-12))
                          for e in errs]))
    total = sum(len(d) for d in data)
    result = {
        "codec": args.codecs, "quality": args.quality, "height": height, "width": width,
        "bits": args.bits, "device": device, "threads": args.threads, "batch": args.batch,
        "image": source, "dtype": args.dtype,
        "encode_s": (t1 - t0) / args.batch, "decode_s": (t2 - t1) / args.batch,
        "encode_images_per_s": args.batch / (t1 - t0), "decode_images_per_s": args.batch / (t2 - t1),
        "bytes": total // args.batch, "bpp": total * 8 / (height * width * args.batch),
        "psnr_db": psnr, "rss_after_load_mib": base, "peak_rss_mib": rss_mib(),
    }
    if device.startswith("cuda"):
        result["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return result


def default_qualities(name: str) -> list[int]:
    import codeczoo

    codec = codeczoo.load(name)
    wanted = codec.eval_qualities
    if not wanted:
        qualities = list(codec.qualities)
        wanted = sorted({q for q in (1, 2, 4, 8, 16, codec.default_quality) if q in qualities})
    return [int(q) for q in wanted]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--codecs", default=None,
                        help="comma-separated codec names (default: every registered codec)")
    parser.add_argument("--qualities", default=None,
                        help="comma-separated qualities, or 'default' (default: a subset)")
    parser.add_argument("--size", default="1024x1024", help="HxW of the test image")
    parser.add_argument("--bits", type=int, default=8, help="bit depth of the test image")
    parser.add_argument("--large", action="store_true",
                        help="peak-memory check: 3072x2614, 12-bit, default quality")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--batch", type=int, default=1,
                        help="images coded together (encode_batch / decode_batch): images/s")
    parser.add_argument("--batch-tiles", type=int, default=None,
                        help="tiles per network batch with --batch (default: all of them)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"),
                        help="network precision of learned codecs")
    parser.add_argument("--channels-last", action="store_true",
                        help="NHWC memory format for learned codecs")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--quality", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--case", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.size = tuple(int(v) for v in args.size.lower().split("x"))
    if args.large:
        args.size, args.bits = LARGE, 12
        args.qualities = args.qualities or "default"
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"

    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print("no CUDA GPU available", file=sys.stderr)
            return 1
    if args.case:
        print(json.dumps(run_case(args)))
        return 0

    import codeczoo

    names = args.codecs.split(",") if args.codecs else codeczoo.list_codecs()
    rows = []
    for name in names:
        if args.qualities == "default":
            qualities = [codeczoo.load(name).default_quality]
        elif args.qualities:
            qualities = [int(q) for q in args.qualities.split(",")]
        else:
            qualities = default_qualities(name)
        for quality in qualities:
            cmd = [sys.executable, __file__, "--case", "--codecs", name, "--quality", str(quality),
                   "--size", "x".join(map(str, args.size)), "--bits", str(args.bits),
                   "--device", args.device, "--threads", str(args.threads),
                   "--batch", str(args.batch), "--dtype", args.dtype]
            if args.batch_tiles:
                cmd += ["--batch-tiles", str(args.batch_tiles)]
            if args.channels_last:
                cmd.append("--channels-last")
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{name} q={quality}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{name} q={quality}: enc {row['encode_s']:.2f}s dec {row['decode_s']:.2f}s "
                  f"peak {row['peak_rss_mib']:.0f} MiB", file=sys.stderr)

    if not rows:
        return 1
    r0 = rows[0]
    batch = r0.get("batch", 1)
    print(f"\n{r0['height']}x{r0['width']} {r0['bits']}-bit image ({r0['image']}), device "
          f"{r0['device']}, {r0['threads']} torch threads"
          + (f", batches of {batch} images" if batch > 1 else "")
          + (f", {r0['dtype']} network" if r0.get("dtype", "float32") != "float32" else "") + "\n")
    cuda = any("peak_cuda_mib" in r for r in rows)
    print("| codec | quality | bpp (bytes) | PSNR dB | encode s | decode s | encode img/s | "
          "decode img/s | peak RSS MiB |" + (" peak CUDA MiB |" if cuda else ""))
    print("|---|---|---|---|---|---|---|---|---|" + ("---|" if cuda else ""))
    for r in rows:
        print(f"| {r['codec']} | {r['quality']} | {r['bpp']:.4f} | {r['psnr_db']:.2f} | "
              f"{r['encode_s']:.3f} | {r['decode_s']:.3f} | {1 / r['encode_s']:.3g} | "
              f"{1 / r['decode_s']:.3g} | {r['peak_rss_mib']:.0f} |"
              + (f" {r.get('peak_cuda_mib', 0):.0f} |" if cuda else ""))
    print("\nencode / decode s: per image (a batch's time over its images); img/s = 1 / that")
    if args.json:
        from codeczoo.atomic import write_text

        write_text(args.json, json.dumps(rows, indent=1), overwrite=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
