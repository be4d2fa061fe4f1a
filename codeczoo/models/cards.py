"""Write the static parts of the learned codecs' cards (``registry/<name>/card.json``).

Reproducible: the architecture arguments, rate table and parameter count are read from the code;
speed figures come from a ``benchmarks/speed.py --json`` file.  Fields written by training
(``weights``, ``metrics``, ``data``, ``recipe``...) are kept as they are.

    python -m codeczoo.models.cards [--speed results.json] [--large large.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..registry import codec_class, default_arguments, docstring_summary, registry_root

TODERICI = {
    "title": "Full Resolution Image Compression with Recurrent Neural Networks",
    "authors": ["George Toderici", "Damien Vincent", "Nick Johnston", "Sung Jin Hwang",
                "David Minnen", "Joel Shor", "Michele Covell"],
    "venue": "IEEE Conference on Computer Vision and Pattern Recognition (CVPR) 2017",
    "arxiv": "1608.05148",
}
SUSHMIT = {
    "title": "X-Ray Image Compression Using Convolutional Recurrent Neural Networks",
    "authors": ["Asif Shahriyar Sushmit", "Shakib Uz Zaman", "Ahmed Imtiaz Humayun",
                "Taufiq Hasan", "Mohammed Imamul Hassan Bhuiyan"],
    "venue": "IEEE EMBS International Conference on Biomedical and Health Informatics (BHI) 2019",
    "arxiv": "1904.12271",
}

TILING_NOTES = {
    "tile_size": "byte layer only: independent tiles bound peak memory on large images; "
                 "512 px keeps seams rare on 1024-2000 px radiographs",
    "tile_batch": "byte layer only: tiles coded together (speed against memory)",
}
TODERICI_NOTES = {
    "stem_channels": "published shape (GUIDE.md section 2, the PyTorch port)",
    "encoder_channels": "published shape",
    "code_channels": "published: 32 bits per 16x16 block = 0.125 bpp per iteration",
    "decoder_first_channels": "published shape",
    "decoder_channels": "published shape",
    "decoder_hidden_kernels": "published shape (1x1 hidden kernels in the two coarse cells)",
    "gamma": "0 one-shot (compared with by Sushmit et al.), 1 additive",
    "max_iterations": "published: 16 iterations reach 2 bpp",
    "default_quality": "8 iterations = 1 bpp raw, a mid-range rate for X-rays",
    **TILING_NOTES,
}
SMALL_NOTES = {
    **TODERICI_NOTES,
    "stem_channels": "published 64 / 4: trainable on a CPU (NOT the published size)",
    "encoder_channels": "published (256, 512, 512) / 4",
    "decoder_first_channels": "published 512 / 4",
    "decoder_channels": "published (512, 512, 256, 128) / 4",
    "tile_batch": "4 tiles at once: the small model's activations allow it",
}
SUSHMIT_NOTES = {
    "front_channels": "paper gives no width; 16 keeps the full-resolution front end cheap",
    "encoder_channels": "three stride-2 ConvLSTMs after the stride-2 front end = downsampling "
                        "16 (as Toderici); widths chosen for a 2-core CPU (< 1 M parameters)",
    "kernel_size": "3x3, the smallest spatial kernel (paper: padded convolutions, size lost)",
    "encoder_hidden_kernel": "1x1 as in Toderici's encoder (cheap state update)",
    "pooling": "average pooling: smooth coarse context for smooth radiographs; 'max' available",
    "code_channels": "32 bottleneck kernels: 0.125 bpp per iteration, same rate grid as "
                     "Toderici so the two compare at equal bits",
    "decoder_first_channels": "64: the 1x1 linear combination along depth",
    "decoder_channels": "one module per x2 upsampling; (64, 64, 32, 32) leaves 8 channels at full "
                        "resolution: the earlier (64, 32, 16, 8) left 2 and stalled near 18 dB in "
                        "training probes, while this reached 26 dB in 100 steps",
    "branch_kernels": "two branches with different receptive fields: 3x3 input / 1x1 hidden "
                      "and 1x1 input / 3x3 hidden, averaged (paper: two RNN-Conv branches)",
    "gamma": "0 one-shot: like the Toderici variant the paper compares with, and it trained "
             "faster than additive in short CPU runs",
    "max_iterations": "16 iterations = 2 bpp raw",
    "default_quality": "4 iterations = 0.5 bpp raw: within the 10 s / 1024x1024 CPU budget (8 take 11-12 s)",
    **TILING_NOTES,
}

SPEED_NOTE = ("2-core shared CPU; peak_rss_mib is the whole process (about 1020 MiB is the "
              "Python + torch + codeczoo import); time and memory do not depend on the weights")

CODECS = {
    "sushmit2019-rnnconv": (SUSHMIT, SUSHMIT_NOTES),
    "toderici2017-lstm-oneshot": (TODERICI, TODERICI_NOTES),
    "toderici2017-lstm-additive": (TODERICI, TODERICI_NOTES),
    "toderici2017-lstm-oneshot-small": (TODERICI, SMALL_NOTES),
}


def architecture_arguments(cls: type) -> dict[str, Any]:
    """Every constructor default of ``cls``, following ``**kwargs`` up the class hierarchy."""
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if "__init__" in vars(klass) and klass.__module__.startswith("codeczoo.models"):
            out.update(default_arguments(klass))
    return {k: ([list(v) for v in val] if isinstance(val, list) and val and isinstance(val[0], tuple)
                else val) for k, val in out.items()}


def static_card(name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    """The card fields derived from the code (no measurement, no weights).

    ``arguments`` overrides the class defaults: a card with shipped weights describes the
    arguments those weights were trained with.
    """
    cls = codec_class(name)
    paper, notes = CODECS[name]
    arguments = {**architecture_arguments(cls), **(arguments or {})}
    model = cls(**arguments)
    return {
        "name": name,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "paper": paper,
        "baseline_paper": TODERICI if paper is SUSHMIT else None,
        "description": docstring_summary(cls),
        "arguments": arguments,
        "argument_notes": {k: notes[k] for k in arguments if k in notes},
        "parameters": sum(p.numel() for p in model.parameters()),
        "downsampling": model.downsampling,
        "code_channels": model.code_channels,
        "bpp_per_iteration": model.bpp_per_iteration,
        "default_quality": model.default_quality,
        "rate_note": "quality = iterations; bpp_raw = bits of binary codes before the gzip "
                     "stage (the file is smaller: bpp is always measured from bytes)",
        "rate_table": model.rate_table(),
        "input": {
            "channels": 1,
            "dtypes": ["uint8", "uint16", "int8", "int16"],
            "bit_depths": [1, 16],
            "value_range": "stored integers [0, 2^bits - 1] (signed data offset by 2^(bits-1)) "
                           "mapped linearly to [0, 1]; MONOCHROME1/2 recorded, never applied",
            "spatial": f"any size; replicate-padded to a multiple of {model.downsampling}; coded "
                       f"in independent tiles of {model.tile_size} px, {model.tile_batch} at a time",
        },
        "weights": None,
    }


def speed_entries(rows: list[dict], name: str) -> list[dict]:
    keep = ("quality", "height", "width", "bits", "device", "threads", "encode_s", "decode_s",
            "peak_rss_mib")
    return [{k: (round(r[k], 3) if isinstance(r[k], float) else r[k]) for k in keep}
            for r in rows if r["codec"] == name]


def write_cards(speed: list[dict] | None = None, large: list[dict] | None = None,
                names=None, speed_command: str = "", large_command: str = "") -> list[Path]:
    written = []
    for name in names or CODECS:
        path = registry_root() / name / "card.json"
        card = json.loads(path.read_text()) if path.is_file() else {}
        new = static_card(name, card.get("arguments") if card.get("weights") else None)
        for key in ("weights", "training", "validation", "evaluation", "metrics", "data",
                    "recipe", "speed", "large_image"):
            if key in card:
                new[key] = card[key]
        if speed and speed_entries(speed, name):
            new["speed"] = {"command": speed_command, "note": SPEED_NOTE,
                            "results": speed_entries(speed, name)}
        if large and speed_entries(large, name):
            new["large_image"] = {"command": large_command, "note": SPEED_NOTE,
                                  "results": speed_entries(large, name)}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(new, indent=2) + "\n")
        written.append(path)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speed", help="benchmarks/speed.py --json output (1024x1024)")
    parser.add_argument("--speed-command", default="python benchmarks/speed.py")
    parser.add_argument("--large", help="benchmarks/speed.py --large --json output")
    parser.add_argument("--large-command", default="python benchmarks/speed.py --large")
    args = parser.parse_args(argv)
    load = lambda p: json.loads(Path(p).read_text()) if p else None  # noqa: E731
    for path in write_cards(load(args.speed), load(args.large), None, args.speed_command,
                            args.large_command):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
