"""Rate–distortion of one codec over a set of images, written in CompressAI's results schema.

For every image and every quality: ``codec.encode(image, quality)`` gives real bytes (the whole
codeczoo bitstream: header, payload and CRC), ``codec.decode(bytes)`` gives the image back; the
rate is ``len(bytes) * 8 / pixels of the original image`` and the distortion is measured on the
stored integers with the image's own bit depth (:mod:`codeczoo.metrics`). Results are averaged
over images per quality (mean of per-image values, CompressAI's convention)::

    {"name": "jpeg2000", "description": "...",
     "results": {"bpp": [...], "psnr": [...], "ms-ssim": [...], "ssim": [...],
                 "encoding_time": [...], "decoding_time": [...], "payload_bpp": [...],
                 "psnr-rgb": [...], "ms-ssim-rgb": [...]},
     "quality": [...], "bit_depth": 8, "dataset": {...}, "codec": {...}}

``payload_bpp`` counts the codec's payload alone (without the codeczoo header and CRC, about 40
bytes: what matters on small crops). ``psnr-rgb`` / ``ms-ssim-rgb`` repeat ``psnr`` / ``ms-ssim`` (our images are one channel): they
are the keys CompressAI 1.2.8's ``python -m compressai.utils.plot`` reads for ``-m psnr`` and
``-m ms-ssim``, so our files plot there unchanged. Non-finite values (the PSNR of a lossless
result is infinite) are written as ``null``; MS-SSIM (and ``ms-ssim-rgb``) is omitted when no
image is large enough for it (176 px a side), so CompressAI's plot says it is not available
instead of crashing.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .. import metrics
from ..atomic import ensure_folder, write_bytes, write_text
from ..bitstream import read_header
from ..errors import CodeczooError
from .data import Sample, describe_source, iter_samples

#: keys of ``results`` that are means of per-image values, in output order.
RESULT_KEYS = ("bpp", "psnr", "ms-ssim", "ssim", "encoding_time", "decoding_time", "payload_bpp")
#: CompressAI 1.2.8 plot aliases (see the module docstring).
COMPRESSAI_ALIASES = {"psnr-rgb": "psnr", "ms-ssim-rgb": "ms-ssim"}


@dataclass
class Measurement:
    """One image coded at one quality."""

    image: str
    quality: int
    bytes: int
    payload_bytes: int
    pixels: int
    bits_stored: int
    bpp: float
    psnr: float
    ssim: float | None
    ms_ssim: float | None
    encoding_time: float
    decoding_time: float

    def as_result(self) -> dict[str, Any]:
        out = asdict(self)
        out["ms-ssim"] = out.pop("ms_ssim")
        out["payload_bpp"] = metrics.bpp(self.payload_bytes, self.pixels)
        return out


def load_codec(codec, pretrained: bool | None = None, device: str | None = None):
    """A codec instance from a registered name (or the instance itself).

    ``pretrained=None`` loads the weights in use where the codec has them and builds it fresh
    otherwise (``codeczoo.load``'s ``"auto"``); ``True`` insists on weights (``WeightsError`` if
    none); ``False`` never loads them. Learned codecs are moved to ``device`` when given.
    """
    if isinstance(codec, str):
        from ..registry import load

        codec = load(codec, pretrained="auto" if pretrained is None else pretrained)
    if device is not None:
        codec = codec.to(device)
    return codec


def coders_for(codec, qualities: Sequence[int]) -> dict[int, Any]:
    """quality -> the instance that codes it: ``codec`` itself, or, for a codec with one
    network per quality (CompressAI's families), each quality's network
    (:meth:`~codeczoo.codec.Codec.for_quality`), loaded once, before any image is coded."""
    return {int(q): codec.for_quality(int(q)) for q in qualities}


def uses_trained_weights(codec) -> bool:
    """Whether a learned codec instance carries registered weights (not seeded untrained ones)."""
    from ..registry import find_weights

    return bool(codec.learned and find_weights(codec.codec_name, codec.weights_hash().hex()))


def parse_ints(text: str | Sequence[int] | None, what: str = "qualities") -> list[int] | None:
    """``"1,2,4"`` (or a list) -> ``[1, 2, 4]``; ``None`` stays ``None``."""
    if text is None:
        return None
    if isinstance(text, str):
        try:
            values = [int(v) for v in text.replace(" ", "").split(",") if v]
        except ValueError:
            raise CodeczooError(f"{what} must be integers separated by commas, got {text!r}") from None
    else:
        values = [int(v) for v in text]
    if not values:
        raise CodeczooError(f"no {what} given")
    return values


def parse_qualities(text: str | Sequence[int] | None) -> list[int] | None:
    """Rate settings from the command line; ``None`` means the codec's default sweep."""
    return parse_ints(text, "qualities")


def measure(codec, sample: Sample, quality: int | None, bitstream_path: Path | None = None,
            **encode_options) -> Measurement:
    """Encode and decode one image at one quality; the rate comes from the bytes (on disk if
    ``bitstream_path`` is given: the file is written and its size read back).

    ``encode_options`` go to ``codec.encode`` (e.g. ``bpp=`` for JPEG 2000, with
    ``quality=None``); the quality recorded is the one the bitstream header holds.
    """
    import torch

    with torch.no_grad():
        start = time.perf_counter()
        data = codec.encode(sample.pixels, quality, bits_stored=sample.bits_stored,
                            photometric=sample.photometric, **encode_options)
        encoding_time = time.perf_counter() - start
        start = time.perf_counter()
        restored = codec.decode(data)
        decoding_time = time.perf_counter() - start
    if restored.shape != sample.pixels.shape or restored.dtype != sample.pixels.dtype:
        raise CodeczooError(
            f"{sample.name}: {codec.codec_name} returned {restored.shape} "
            f"{restored.dtype}, the original is {sample.pixels.shape} {sample.pixels.dtype}")
    size = len(data)
    header = read_header(data)
    if bitstream_path is not None:
        if bitstream_path.exists():
            raise CodeczooError(f"bitstream {bitstream_path} exists: choose an empty folder")
        write_bytes(bitstream_path, data)
        size = os.path.getsize(bitstream_path)
    bits = sample.bits_stored
    return Measurement(
        image=sample.name, quality=int(header.quality), bytes=size,
        payload_bytes=header.payload_length,
        pixels=sample.pixel_count,
        bits_stored=bits, bpp=metrics.bpp(size, sample.pixel_count),
        psnr=metrics.psnr(sample.pixels, restored, bits),
        ssim=metrics.ssim(sample.pixels, restored, bits) if min(restored.shape) >= metrics.SSIM_KERNEL else None,
        ms_ssim=metrics.ms_ssim(sample.pixels, restored, bits),
        encoding_time=encoding_time, decoding_time=decoding_time)


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def summarize(measurements: list[Measurement], qualities: list[int]) -> dict[str, list]:
    """Per-quality means of every result key (``None`` where no image had a value).

    MS-SSIM is left out entirely when no image was large enough for it (176 px a side): a list of
    nulls would crash ``python -m compressai.utils.plot -m ms-ssim``, which instead reports the
    metric as not available.
    """
    results: dict[str, list] = {key: [] for key in RESULT_KEYS}
    for quality in qualities:
        rows = [m.as_result() for m in measurements if m.quality == quality]
        for key in RESULT_KEYS:
            results[key].append(_mean(row[key] for row in rows))
    if all(v is None for v in results["ms-ssim"]):
        del results["ms-ssim"]
    for alias, key in COMPRESSAI_ALIASES.items():
        if key in results:
            results[alias] = list(results[key])
    return results


def evaluate(codec, images: Iterable, qualities: Sequence[int] | None = None, *,
             pretrained: bool | None = None, per_image: bool = False,
             save_bitstreams: str | Path | None = None, device: str | None = None,
             progress: bool = False, source: str | None = None) -> dict[str, Any]:
    """Evaluate ``codec`` (a registered name or an instance) on ``images`` at ``qualities``.

    Args:
        codec: codec name (built with :func:`load_codec`) or a codec instance.
        images: paths, :class:`~codeczoo.evaluation.data.Sample`\\ s, images from
            :func:`codeczoo.io.read_image` or 8-bit 2-D arrays (a 16-bit array needs a
            ``Sample`` with its bits stored); read one at a time.
        qualities: rate settings (validated before any work); default
            ``codec.default_eval_qualities()``.
        pretrained: see :func:`load_codec`.
        per_image: also return every measurement under ``"per_image"``.
        save_bitstreams: folder to write every bitstream to (``<index>_<stem>_q<quality>.czoo``);
            the rate is then read back from the file sizes on disk.
        device: move a learned codec there (``"cuda"``) before coding.
        progress: show a tqdm progress bar.
        source: description of the data set for the results (default: derived from ``images``).

    Returns:
        A dict in CompressAI's results schema (see the module docstring); JSON-safe (no inf/NaN).
    """
    instance = load_codec(codec, pretrained, device)
    name = instance.label or type(instance).__name__
    qualities = instance.default_eval_qualities() if qualities is None else \
        [instance.check_quality(int(q)) for q in qualities]
    images = list(images) if not isinstance(images, (list, tuple)) else images
    if not images:
        raise CodeczooError("no images to evaluate")
    out_dir = None
    if save_bitstreams is not None:
        out_dir = Path(save_bitstreams)
        if out_dir.exists() and not out_dir.is_dir():
            raise CodeczooError(f"--save-bitstreams {out_dir} is a file, not a folder")
        ensure_folder(out_dir)

    from tqdm import tqdm

    coders = coders_for(instance, qualities)
    measurements: list[Measurement] = []
    bit_depths, photometrics, sizes = set(), set(), []
    total = len(images) * len(qualities)
    with tqdm(total=total, desc=f"eval {name}", unit="code", disable=not progress) as bar:
        for index, sample in enumerate(iter_samples(images)):
            bit_depths.add(sample.bits_stored)
            photometrics.add(sample.photometric)
            sizes.append(sample.pixels.shape)
            for quality in qualities:
                path = None
                if out_dir is not None:
                    path = out_dir / f"{index:04d}_{Path(sample.name).stem}_q{quality}.czoo"
                measurements.append(measure(coders[quality], sample, quality, path))
                bar.update(1)

    learned = instance.learned
    trained = all(uses_trained_weights(c) for c in coders.values())
    label = f"{name} (untrained)" if learned and not trained else name
    header_hash = instance.weights_hash().hex()
    depth = sorted(bit_depths)
    source = source or describe_source(images)
    result: dict[str, Any] = {
        "name": label,
        "description": (
            f"codeczoo eval of {name} on {source}; bpp = bitstream bytes * 8 / original pixels "
            f"(whole codeczoo container), PSNR with peak 2^bits_stored - 1, SSIM/MS-SSIM "
            f"(torchmetrics, 11-px Gaussian window); means over {len(images)} image(s)"),
        "results": summarize(measurements, list(qualities)),
        "quality": list(qualities),
        "bit_depth": depth[0] if len(depth) == 1 else depth,
        "dataset": {
            "source": source,
            "images": len(images),
            "pixels": int(sum(h * w for h, w in sizes)),
            "bit_depths": depth,
            "photometric": sorted(photometrics),
            "smallest": list(min(sizes, key=lambda s: s[0] * s[1])),
            "largest": list(max(sizes, key=lambda s: s[0] * s[1])),
            "ms_ssim_images": sum(metrics.ms_ssim_supported(*s) for s in sizes),
        },
        "codec": {
            "name": name,
            "version": instance.codec_version,
            "learned": learned,
            "pretrained": trained if learned else None,
            "weights_hash": header_hash,
            # per quality: differs from weights_hash where each quality is its own network
            "weights_hashes": [coders[q].weights_hash().hex() for q in qualities],
            "lossless_qualities": [q for q in qualities if instance.is_lossless(q)],
            "coding": instance.coding_state(),  # non-default coding options (entropy stage...)
        },
    }
    if device is not None:
        result["device"] = str(device)
    if per_image:
        result["per_image"] = [m.as_result() for m in measurements]
    return metrics.json_safe(result)


def write_results(result: dict[str, Any], path: str | Path, overwrite: bool = True) -> Path:
    """Write a results dict as strict JSON (``null`` for non-finite values)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise CodeczooError(f"{path} exists")
    return write_text(path, json.dumps(metrics.json_safe(result), indent=2, allow_nan=False) + "\n",
                      overwrite=True)
