"""What each stage of a recurrent codec's byte layer buys, measured in one pass per image.

For every image the codec's network runs twice at ``max_iterations``: once on the tiles uniform
coding uses (``tile_size``, 512 px) and once on the adaptive tiles (``adaptive_tile_size``,
128 px), keeping every tile's codes and its squared error after every iteration.  From those,
exactly as ``encode`` writes them, it builds the real payloads (and containers) of

* uniform iterations, quality 1..T, with the gzip stage and with the learned entropy stage
  (the same codes: identical reconstructions, only the bytes differ);
* adaptive iterations at matched PSNR: each image coded adaptively for exactly the PSNR uniform
  coding reaches on it at quality q, so adaptive and uniform are compared at equal quality
  image by image (a fixed dB target is out of reach on some images and trivially met on others:
  averaged over images, fixed targets alone cannot compare the two at equal quality);
* adaptive iterations at the PSNR targets a user states (``--psnr DB``), with how many images
  reach each and what JPEG 2000 spends for the same PSNR on the same images (its per-image
  curve from a ``codeczoo eval --per-image`` JSON, log-bpp interpolated; images outside its
  measured range are left out of that column);

each with either stage (each stage allocates iterations with its own bit costs, so the maps may
differ), and the PSNR each reaches, per image (peak ``2**bits_stored - 1``), averaged over images
as ``codeczoo eval`` does.  The PSNR is the encoder's reconstruction, which is what the decoder
computes; the script checks that by decoding bitstreams of the first image for real.
Prints markdown (bytes, savings, BD-rates between the rows, and against JPEG 2000) and writes it
with ``--output`` (a ``.json`` of every number, per image too, beside it).

Usage::

    codeczoo eval ../shared/data/dicom --codec jpeg2000 --per-image \\
        --quality 6,8,12,16,24,32,48,64,96,128,192,256,384,512,768,1000 \\
        -o results/dicom/jpeg2000-per-image.json
    python benchmarks/stages.py ../shared/data/dicom --jpeg2000 results/dicom/jpeg2000-per-image.json \\
        --targets 32,34,36,38,40 -o results/dicom/stages.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

import codeczoo
from codeczoo import intensity
from codeczoo.coding import recurrent_payload as rp
from codeczoo.coding.adaptive import choose_iterations, psnr_of, target_squared_error
from codeczoo.entropy.learned_stage import iteration_bits, tile_bins
from codeczoo.evaluation.bdrate import BDRateError, bd_rate
from codeczoo.evaluation.data import find_images, read_sample

SHIPPED = ("sushmit2019-rnnconv", "toderici2017-lstm-oneshot-small")
UNIFORM = ("uniform gzip", "uniform learned")
#: adaptive coding asked, per image, for exactly the PSNR uniform coding reaches on it at quality q:
#: bits at equal PSNR, image by image (a fixed dB target is out of reach on some images and
#: trivially met on others, so fixed targets alone cannot compare the two at equal quality)
MATCHED = ("adaptive gzip", "adaptive learned")
#: adaptive coding at the PSNR targets a user states (``--psnr DB``)
TARGETS = ("target gzip", "target learned")
ROWS = UNIFORM + MATCHED + TARGETS
#: what ``--entropy learned`` writes: per image the smaller of the learned-stage and the gzip
#: payload (``recurrent_payload._payload``), derived from the two measured rows
WRITTEN = {"uniform written": UNIFORM, "adaptive written": MATCHED, "target written": TARGETS}


def measure_image(model, values, spec, targets, check: bool) -> dict:
    """Every row's (bytes, PSNR) per quality / target for one image."""
    context, _ = model.entropy_model()
    t_max = model.max_iterations
    out = {row: {} for row in ROWS}

    def container(quality, payload, pads):
        return model._container(spec, quality, payload, pads)

    def checked(data, psnr):
        decoded = codeczoo.decode(data)
        assert abs(_psnr(values, decoded, spec) - psnr) < 0.02, "encoder/decoder PSNR"

    # the context model's bins of every tile at max_iterations, computed once: the first q
    # iterations' bins are the ones coding q iterations (learned_stage.encode_tiles)
    codes, (rows, cols), pads, sse = rp.tile_codes_and_errors(model, values, spec, t_max)
    bins = [tile_bins(context, c) for c in codes]
    uniform_psnr = {}
    for q in range(1, t_max + 1):
        cut = [c[:q] for c in codes]
        psnr = uniform_psnr[q] = psnr_of(sum(float(e[q - 1]) for e in sse), spec)
        gzip = container(q, rp.pack_payload(cut, q, model.tile_size, rows, cols), pads)
        learned = container(q, rp.pack_learned_payload(model, cut, q, model.tile_size, rows, cols,
                                                       bins_per_tile=bins), pads)
        out["uniform gzip"][q] = (len(gzip), psnr)
        out["uniform learned"][q] = (len(learned), psnr)
        if check and q == t_max // 2:
            checked(gzip, psnr)
            checked(learned, psnr)

    tile = model.adaptive_tile_size
    codes, (rows, cols), pads, sse = rp.tile_codes_and_errors(model, values, spec, t_max, tile)
    bins = [tile_bins(context, c) for c in codes]
    costs = {"gzip": rp.iteration_costs(model, codes),
             "learned": [iteration_bits(context, c, b) for c, b in zip(codes, bins)]}

    def adaptive(stage: str, target_db: float, label: int) -> tuple[int, float]:
        counts = choose_iterations(sse, costs[stage], target_squared_error(target_db, spec))
        cut = [c[:n] for c, n in zip(codes, counts)]
        pack = rp.pack_payload if stage == "gzip" else \
            partial(rp.pack_learned_payload, model, bins_per_tile=bins)
        payload = pack(cut, max(counts), tile, rows, cols, adaptive=True)
        return len(container(label, payload, pads)), \
            psnr_of(sum(float(e[n - 1]) for e, n in zip(sse, counts)), spec), payload

    for stage in ("gzip", "learned"):
        for q, psnr in uniform_psnr.items():
            size, reached, _ = adaptive(stage, psnr, max(1, int(psnr)))
            out[f"adaptive {stage}"][q] = (size, reached)
        for target in targets:
            size, reached, payload = adaptive(stage, target, target)
            out[f"target {stage}"][target] = (size, reached)
            if check and target == targets[len(targets) // 2]:
                checked(container(target, payload, pads), reached)
    return out


def _psnr(values, decoded, spec) -> float:
    stored = intensity.to_unsigned(decoded, spec).astype(np.float64)
    return psnr_of(float(((stored - values) ** 2).sum()), spec)


def measure(name: str, images, targets) -> dict:
    model = codeczoo.load(name, pretrained=True)
    _, digest = model.entropy_model()
    per_image = []
    started = time.time()
    for k, path in enumerate(tqdm(images, desc=name)):
        sample = read_sample(path)
        spec = intensity.describe(np.asarray(sample.pixels), sample.bits_stored, sample.photometric)
        values = intensity.to_unsigned(np.asarray(sample.pixels), spec)
        rows = measure_image(model, values, spec, targets, check=k == 0)
        per_image.append({"image": Path(path).name, "pixels": spec.pixels,
                          "rows": {row: {str(key): {"bytes": b, "psnr": p}
                                         for key, (b, p) in keyed.items()}
                                   for row, keyed in rows.items()}})
    return {"codec": name, "weights": model.weights_hash().hex(), "entropy_model": digest.hex(),
            "images": len(images), "adaptive_tile_size": model.adaptive_tile_size,
            "command": f"python benchmarks/stages.py {' '.join(sys.argv[1:])}",
            "per_image": per_image, "minutes": round((time.time() - started) / 60, 1)}


def with_written(per_image: list[dict]) -> list[dict]:
    """Each image's :data:`WRITTEN` rows: the smaller of its gzip and learned payloads per
    quality or target (the PSNR of the one chosen)."""
    for m in per_image:
        for row, (gzip, learned) in WRITTEN.items():
            m["rows"][row] = {key: min(m["rows"][learned][key], m["rows"][gzip][key],
                                       key=lambda r: r["bytes"])
                              for key in m["rows"][gzip]}
    return per_image


def aggregate(result: dict) -> dict:
    """Bytes summed and PSNR averaged over the images, per row and quality (as ``codeczoo
    eval``: bpp over all pixels, PSNR the mean of the images')."""
    per_image = with_written(result["per_image"])
    pixels = sum(m["pixels"] for m in per_image)
    rows = {}
    for row in per_image[0]["rows"]:
        rows[row] = {}
        for key in per_image[0]["rows"][row]:
            total = sum(m["rows"][row][key]["bytes"] for m in per_image)
            rows[row][key] = {"bytes": total, "bpp": 8 * total / pixels,
                              "psnr": float(np.mean([m["rows"][row][key]["psnr"]
                                                     for m in per_image]))}
    return {**result, "pixels": pixels, "rows": rows}


def _curve(row: dict) -> tuple[list[float], list[float]]:
    keys = list(row)
    return [row[k]["bpp"] for k in keys], [row[k]["psnr"] for k in keys]


def _bd(anchor, test) -> str:
    try:
        return f"{bd_rate(*anchor, *test):+.1f} %"
    except BDRateError as exc:
        return f"n/a ({exc})"


def jpeg2000_bpp_at(curves: dict, image: str, psnr: float) -> float | None:
    """JPEG 2000's bpp on ``image`` at ``psnr`` (log-bpp interpolated between its measured
    rates), None outside them."""
    if image not in curves:
        return None
    points = sorted(curves[image], key=lambda bp: bp[1])
    bpps, psnrs = [p[0] for p in points], [p[1] for p in points]
    if not psnrs[0] <= psnr <= psnrs[-1]:
        return None
    return float(np.exp(np.interp(psnr, psnrs, np.log(bpps))))


def jpeg2000_per_image(jpeg2000: dict) -> dict:
    curves: dict[str, list[tuple[float, float]]] = {}
    for row in jpeg2000.get("per_image", []):
        if row.get("psnr") is not None:
            curves.setdefault(row["image"], []).append((row["bpp"], row["psnr"]))
    return curves


def _saves(row: dict, anchor: dict) -> str:
    return f"{100 * (1 - row['bytes'] / anchor['bytes']):.1f} %"


def _stated_targets(res: dict, j2k_images: dict) -> list[str]:
    lines = ["| target [dB] | bpp | mean PSNR [dB] | images reaching it "
             "| JPEG 2000 bpp at the same PSNR (images in its range) |",
             "|---:|---:|---:|---:|---:|"]
    for t, row in res["rows"]["target written"].items():
        reached = sum(m["rows"]["target written"][t]["psnr"] >= float(t) - 0.005
                      for m in res["per_image"])
        ours = theirs = pixels = 0.0  # over the images inside JPEG 2000's measured range
        for m in res["per_image"]:
            own = m["rows"]["target written"][t]
            at = jpeg2000_bpp_at(j2k_images, m["image"], own["psnr"])
            if at is not None:
                ours, theirs = ours + 8 * own["bytes"], theirs + at * m["pixels"]
                pixels += m["pixels"]
        versus = (f"{theirs / pixels:.4f} vs ours {ours / pixels:.4f} "
                  f"({100 * (ours / theirs - 1):+.0f} %)" if pixels else "n/a")
        lines.append(f"| {t} | {row['bpp']:.4f} | {row['psnr']:.2f} | "
                     f"{reached}/{res['images']} | {versus} |")
    return lines


def report(results: list[dict], source: str, jpeg2000: dict | None) -> str:
    lines = [f"Data: {source}. Command: `{results[0]['command']}`", "",
             "bpp from whole bitstreams (container included) over all pixels, PSNR averaged "
             "over images (each image's peak 2^bits - 1). *Uniform*: quality = iterations "
             "everywhere (the codec's own tiles). *Learned stage*: the same codes through the "
             "learned entropy stage alone; *`--entropy learned`*: what the encoder writes with "
             "it, per image the smaller of the learned and the gzip payload. *Adaptive at "
             "matched PSNR*: each image coded adaptively for exactly the PSNR uniform coding "
             "reaches on it at that quality, so adaptive and uniform are compared at equal "
             "quality image by image. *Stated targets*: `--psnr DB --entropy learned` as a user "
             "runs it.", ""]
    j2k, j2k_images = None, {}
    if jpeg2000:
        r = jpeg2000["results"]
        pairs = [(b, p) for b, p in zip(r["bpp"], r["psnr"]) if p is not None]
        j2k = ([b for b, _ in pairs], [p for _, p in pairs])
        j2k_images = jpeg2000_per_image(jpeg2000)
    for res in results:
        rows = res["rows"]
        lines += [f"### {res['codec']} (weights {res['weights'][:8]}, entropy model "
                  f"{res['entropy_model'][:8]}, adaptive tiles {res['adaptive_tile_size']} px)", "",
                  "Entropy stage, uniform iterations (identical reconstructions):", "",
                  "| quality | PSNR [dB] | gzip bpp | learned stage bpp | saves "
                  "| `--entropy learned` bpp | saves |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for q, g in rows["uniform gzip"].items():
            lrn, wr = rows["uniform learned"][q], rows["uniform written"][q]
            lines.append(f"| {q} | {g['psnr']:.2f} | {g['bpp']:.4f} | {lrn['bpp']:.4f} | "
                         f"{_saves(lrn, g)} | {wr['bpp']:.4f} | {_saves(wr, g)} |")
        lines += ["", "Adaptive iterations at matched PSNR (each image at the PSNR uniform "
                  "quality q reaches on it):", "",
                  "| quality | PSNR [dB] | adaptive gzip bpp | saves vs uniform gzip "
                  "| adaptive `--entropy learned` bpp | saves vs uniform `--entropy learned` "
                  "| saves vs uniform gzip |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for q, g in rows["uniform gzip"].items():
            ag, aw, uw = rows["adaptive gzip"][q], rows["adaptive written"][q], \
                rows["uniform written"][q]
            lines.append(f"| {q} | {g['psnr']:.2f} | {ag['bpp']:.4f} | {_saves(ag, g)} | "
                         f"{aw['bpp']:.4f} | {_saves(aw, uw)} | {_saves(aw, g)} |")
        lines += ["", "Stated PSNR targets (`--psnr DB --entropy learned`; images whose network "
                  "cannot reach the target are coded at every iteration and miss it):", ""]
        lines += _stated_targets(res, j2k_images)
        curves = {row: _curve(rows[row]) for row in rows}
        lines += ["", "BD-rate on mean PSNR (negative = fewer bits at equal mean PSNR):", "",
                  "| test | anchor | BD-rate |", "|---|---|---|"]
        for test, anchor in (("uniform learned", "uniform gzip"),
                             ("uniform written", "uniform gzip"),
                             ("adaptive gzip", "uniform gzip"),
                             ("adaptive written", "uniform written"),
                             ("adaptive written", "uniform gzip")):
            lines.append(f"| {test} | {anchor} | {_bd(curves[anchor], curves[test])} |")
        if j2k:
            for row in ("uniform gzip", "uniform written", "adaptive written"):
                lines.append(f"| {row} | JPEG 2000 | {_bd(j2k, curves[row])} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="image folder or file")
    parser.add_argument("--codecs", default=",".join(SHIPPED))
    parser.add_argument("--targets", default="31,33,35,37,39", help="PSNR targets (dB)")
    parser.add_argument("--jpeg2000", help="codeczoo eval JSON of jpeg2000 on the same images")
    parser.add_argument("--limit", type=int, help="first N images")
    parser.add_argument("-o", "--output", help="markdown file to write (a .json beside it)")
    parser.add_argument("--from-json", help="tabulate an earlier run's .json again instead of "
                                            "measuring (e.g. after a change to the report)")
    args = parser.parse_args()
    if args.from_json:
        measured = json.loads(Path(args.from_json).read_text())
        count = measured[0]["images"]
    else:
        images = find_images(args.data, limit=args.limit)
        targets = [int(t) for t in args.targets.split(",")]
        measured = [measure(name, images, targets) for name in args.codecs.split(",")]
        count = len(images)
    results = [aggregate(result) for result in measured]
    anchor = json.loads(Path(args.jpeg2000).read_text()) if args.jpeg2000 else None
    text = report(results, f"{args.data} ({count} images)", anchor)
    print(text)
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
        if not args.from_json:
            out.with_suffix(".json").write_text(json.dumps(measured, indent=2) + "\n")


if __name__ == "__main__":
    main()
