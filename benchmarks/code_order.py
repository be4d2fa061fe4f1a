"""Bytes each payload layout of the recurrent codecs takes, on real chest X-rays.

The recurrent codecs pack their binary codes 8 to a byte and DEFLATE them (the paper's gzip
stage).  The order the bits are packed in changes what DEFLATE can find: planar order
(iteration, channel, row, column) against position-major order (iteration, row, column,
channel), each as one stream or one stream per tile.  The encoder writes the smallest of the
four; this script prints what each would have cost, so the choice is checked on data, not
assumed.  Codes of the first ``q`` iterations do not depend on the quality asked for (the
iterations are progressive), so each image is encoded once at the highest quality listed.

Usage::

    python benchmarks/code_order.py                         # shipped codecs, 5 val images
    python benchmarks/code_order.py --images 20 --qualities 1,2,4,8
    python benchmarks/code_order.py --split train --codecs toderici2017-lstm-oneshot-small
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

import codeczoo
from codeczoo import intensity
from codeczoo.errors import CodeczooError
from codeczoo.io import read_image
from codeczoo.coding import recurrent_payload
from codeczoo.coding.recurrent_payload import LAYOUT_PER_TILE, LAYOUTS, POSITION_MAJOR

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("CODECZOO_DATA", REPO.parent / "shared" / "data"))
SHIPPED = ("sushmit2019-rnnconv", "toderici2017-lstm-oneshot-small")


def layout_name(kind: int) -> str:
    order = "position-major" if kind & POSITION_MAJOR else "planar"
    return f"{order}, {'per tile' if kind & LAYOUT_PER_TILE else 'one stream'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codecs", default=",".join(SHIPPED))
    parser.add_argument("--images", type=int, default=5, help="first N images of the split")
    parser.add_argument("--split", default="val")
    parser.add_argument("--qualities", default="1,4,8")
    args = parser.parse_args()
    folder = DATA / "cxr" / args.split
    files = sorted(folder.glob("*.png"))[:args.images]
    if not files:
        raise SystemExit(f"no PNG images in {folder} (set CODECZOO_DATA)")
    qualities = sorted(int(q) for q in args.qualities.split(","))
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    print(f"{len(files)} {args.split} images from {folder}; payload bytes summed over images\n")
    for name in args.codecs.split(","):
        try:
            model = codeczoo.load(name, pretrained=True)
        except CodeczooError as exc:
            raise SystemExit(f"error: {exc}") from None
        if not model.progressive:
            raise SystemExit(f"error: {name} is not a recurrent binary codec (no code order)")
        totals = {(q, kind): 0 for q in qualities for kind in LAYOUTS}
        pixels = 0
        for path in files:
            image = read_image(path)
            values = intensity.to_unsigned(image.pixels, image.spec)
            pixels += values.size
            codes, (rows, cols), _ = recurrent_payload.tile_codes(model, values, image.spec,
                                                                  qualities[-1])
            for q in qualities:
                for kind in LAYOUTS:
                    totals[q, kind] += len(recurrent_payload.pack_payload(
                        [c[:q] for c in codes], q, model.tile_size, rows, cols, kind))
        print(f"## {name}\n")
        print("| quality | " + " | ".join(layout_name(k) for k in LAYOUTS)
              + " | position-major / planar (one stream) |")
        print("|---:|" + "---:|" * (len(LAYOUTS) + 1))
        for q in qualities:
            cells = [f"{totals[q, k]:,} B ({8 * totals[q, k] / pixels:.4f} bpp)" for k in LAYOUTS]
            ratio = totals[q, LAYOUTS[0]] / totals[q, LAYOUTS[2]]
            print(f"| {q} | " + " | ".join(cells) + f" | {ratio:.3f} |")
        print()


if __name__ == "__main__":
    main()
