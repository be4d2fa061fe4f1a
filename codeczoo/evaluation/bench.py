"""Benchmark: every codec over a range of rates against JPEG 2000, on a data folder or the samples.

For each codec :func:`codeczoo.evaluation.evaluate.evaluate` writes ``<codec>.json`` (CompressAI's
schema); then the Bjøntegaard delta rate of each codec against JPEG 2000 (the anchor) is computed
for PSNR and MS-SSIM (dB), and a markdown table (``table.md``, ready to paste into
``docs/results.md``, with the exact command that made it) and an RD plot (``rd.png``) are written.

Which codecs: every classic codec (JPEG 2000, JPEG-LS, HTJ2K, JPEG XL, AVIF) and every learned
codec that ships pretrained weights (``codeczoo.list_codecs(pretrained=True)``); untrained
learned ones only when asked
(``include_untrained=True``: useful to test the pipeline, meaningless as results, and labelled
"(untrained)").
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .. import __version__
from ..atomic import ensure_folder, write_text
from ..errors import CodeczooError
from ..registry import codec_class, list_codecs
from .bdrate import BDRateError, bd_rate, ms_ssim_db, overlap, quality_at_rates
from .data import describe_source, find_images
from .evaluate import evaluate, write_results
from .plot import rd_plot

ANCHOR = "jpeg2000"


@dataclass
class BenchReport:
    """What a bench run produced."""

    results: dict[str, dict[str, Any]]
    bd_rates: dict[str, dict[str, float | str]]
    table: str
    files: list[Path] = field(default_factory=list)
    not_run: dict[str, str] = field(default_factory=dict)


def bench_codecs(codecs: Sequence[str] | None = None, include_untrained: bool = False) -> list[str]:
    """The codecs to benchmark (the anchor ``jpeg2000`` always last, and always included)."""
    if codecs:
        names = []
        for name in codecs:
            codec_class(name)  # UnknownCodecError for a typo
            if name not in names:
                names.append(name)
    else:
        names = list_codecs(pretrained=True)
        names += [n for n in list_codecs() if not codec_class(n).learned and n not in names]
        if include_untrained:
            names += [n for n in list_codecs(pretrained=False) if n not in names]
    names = [n for n in names if n != ANCHOR]
    return names + [ANCHOR]


def bd_rates_against(anchor: dict[str, Any], result: dict[str, Any], method: str = "pchip"
                     ) -> dict[str, float | str]:
    """BD-rate (%) of ``result`` against ``anchor`` for PSNR and MS-SSIM (dB); a reason string
    instead of a number where the curves cannot be compared. ``<metric>-overlap`` is the shared
    fraction of the two quality spans: below :data:`SMALL_OVERLAP` the table flags the number."""
    out: dict[str, float | str] = {}
    for metric in ("psnr", "ms-ssim"):
        a, t = anchor["results"], result["results"]
        qa, qt = a.get(metric), t.get(metric)
        if metric == "ms-ssim":
            qa, qt = ms_ssim_db(qa or []), ms_ssim_db(qt or [])
        try:
            out[metric] = bd_rate(a["bpp"], qa, t["bpp"], qt, method=method)
            out[f"{metric}-overlap"] = overlap(qa, qt)
        except BDRateError as exc:
            out[metric] = f"n/a ({exc})"
    return out


SMALL_OVERLAP = 0.75  # the bjontegaard package's warning threshold


def _fmt_bd(bd: dict[str, float | str], metric: str) -> str:
    value = bd[metric]
    if not isinstance(value, float):
        return "n/a"
    shared = bd.get(f"{metric}-overlap", 1.0)
    flag = f" (curves overlap {shared:.0%} only)" if shared < SMALL_OVERLAP else ""
    return f"{value:+.1f} %{flag}"


def _span(values: Sequence[float | None], fmt: str) -> str:
    kept = [v for v in values if v is not None]
    if not kept:
        return "–"
    return f"{format(min(kept), fmt)}–{format(max(kept), fmt)}"


def markdown_table(results: dict[str, dict[str, Any]], bd: dict[str, dict[str, float | str]],
                   command: str, source: str, method: str,
                   not_run: dict[str, str] | None = None) -> str:
    """The bench table in markdown, with the data, the command and the method stated
    (``not_run``: codecs that could not code the data, with the reason)."""
    any_result = next(iter(results.values()))
    ds = any_result["dataset"]
    lines = [
        f"Data: {source} ({ds['images']} image(s), bit depth {ds['bit_depths']}, "
        f"{ds['ms_ssim_images']} large enough for MS-SSIM). "
        f"codeczoo {__version__}, Python {platform.python_version()}.",
        "",
        f"Command: `{command}`",
        "",
        f"BD-rate against JPEG 2000 ({method} interpolation of log-rate over quality; negative = "
        "fewer bits than JPEG 2000 at equal quality). bpp from whole bitstreams.",
        "",
        "| codec | weights | qualities | bpp | PSNR [dB] | MS-SSIM | BD-rate (PSNR) | BD-rate (MS-SSIM) | enc s/img | dec s/img |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        r, codec = result["results"], result["codec"]
        weights = ("pretrained " + (codec["weights_hash"] or "")[:8]) if codec["pretrained"] \
            else ("untrained" if codec["learned"] else "–")
        quals = ",".join(str(q) for q in result["quality"])
        bdp = "anchor" if name == ANCHOR else _fmt_bd(bd[name], "psnr")
        bdm = "anchor" if name == ANCHOR else _fmt_bd(bd[name], "ms-ssim")
        enc = [v for v in r["encoding_time"] if v is not None]
        dec = [v for v in r["decoding_time"] if v is not None]
        lines.append(
            f"| {result['name']} | {weights} | {quals} | {_span(r['bpp'], '.3f')} | "
            f"{_span(r['psnr'], '.2f')} | {_span(r.get('ms-ssim', []), '.4f')} | {bdp} | {bdm} | "
            f"{sum(enc) / max(len(enc), 1):.3f} | {sum(dec) / max(len(dec), 1):.3f} |")
    notes = [f"- {n}: BD-rate {m}: {v}" for n, per in bd.items() for m, v in per.items()
             if isinstance(v, str)]
    if notes:
        lines += ["", "Not comparable:"] + notes
    if not_run:
        lines += ["", "Not run (could not code these images):"]
        lines += [f"- {name}: {reason}" for name, reason in not_run.items()]
    lines += ["", lossless_table(results), "", psnr_at_rates_table(results)]
    return "\n".join(lines) + "\n"


def lossless_table(results: dict[str, dict[str, Any]]) -> str:
    """Markdown: each codec's lossless rate (where it has a lossless quality in the sweep),
    fewest bits first."""
    rows = []
    for name, result in results.items():
        lossless = result["codec"].get("lossless_qualities") or []
        if not lossless:
            continue
        index = list(result["quality"]).index(lossless[0])
        r = result["results"]
        rows.append((r["bpp"][index], result["name"], lossless[0], r["payload_bpp"][index],
                     r["encoding_time"][index], r["decoding_time"][index]))
    if not rows:
        return "No codec was run at a lossless quality."
    lines = ["Lossless (every stored integer back exactly; bpp of the whole bitstream, and of "
             "the codec's payload alone):", "",
             "| codec | quality | bpp | payload bpp | enc s/img | dec s/img |",
             "|---|---|---|---|---|---|"]
    for bpp, name, quality, payload, enc, dec in sorted(rows, key=lambda row: row[0]):
        lines.append(f"| {name} | {quality} | {bpp:.3f} | {payload:.3f} | {enc:.3f} | {dec:.3f} |")
    return "\n".join(lines)


MATCHED_RATES = (0.1, 0.25, 0.5, 1.0)


def psnr_at_rates(results: dict[str, dict[str, Any]], rates: Sequence[float] = MATCHED_RATES
                  ) -> dict[str, list[float | None]]:
    """Each codec's mean PSNR at the given bpp (pchip over log-rate through its measured points;
    ``None`` outside its measured rates)."""
    return {name: quality_at_rates(r["results"]["bpp"], r["results"]["psnr"], rates)
            for name, r in results.items()}


def psnr_at_rates_table(results: dict[str, dict[str, Any]], rates: Sequence[float] = MATCHED_RATES
                        ) -> str:
    """Markdown: PSNR at matched bpp, and the difference to JPEG 2000 where both were measured."""
    at = psnr_at_rates(results, rates)
    anchor = at.get(ANCHOR)
    lines = ["PSNR [dB] at matched bpp (pchip interpolation over log-rate between measured points; "
             "\"–\" outside a codec's measured rates; in brackets: difference to JPEG 2000).", "",
             "| codec | " + " | ".join(f"{r:g} bpp" for r in rates) + " |",
             "|---|" + "---|" * len(rates)]
    for name, values in at.items():
        cells = []
        for i, v in enumerate(values):
            if v is None:
                cells.append("–")
            elif name != ANCHOR and anchor is not None and anchor[i] is not None:
                cells.append(f"{v:.2f} ({v - anchor[i]:+.2f})")
            else:
                cells.append(f"{v:.2f}")
        lines.append(f"| {results[name]['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _reusable(path: Path, name: str, n_images: int, qualities: Sequence[int] | None
              ) -> dict[str, Any] | None:
    """An earlier result for ``name`` if it matches this run (images, qualities, weights)."""
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    from ..registry import load

    codec = load(name)
    if (result.get("dataset", {}).get("images") != n_images
            or (qualities is not None and list(result.get("quality", [])) != list(qualities))
            or result.get("codec", {}).get("weights_hash") != codec.weights_hash().hex()
            or result.get("codec", {}).get("coding", {}) != codec.coding_state()):
        return None
    if codec.model_per_quality:  # each quality's own network must be the one measured
        try:
            hashes = [codec.for_quality(int(q)).weights_hash().hex() for q in result["quality"]]
        except CodeczooError:
            return None
        if result["codec"].get("weights_hashes") != hashes:
            return None
    return result


def run_bench(data=None, codecs: Sequence[str] | None = None, output_dir: str | Path = "bench",
              qualities: dict[str, Sequence[int]] | None = None, include_untrained: bool = False,
              limit: int | None = None, device: str | None = None, method: str = "pchip",
              progress: bool = True, command: str | None = None, reuse: bool = False
              ) -> BenchReport:
    """Run the benchmark and write ``<codec>.json``, ``bd_rates.json``, ``table.md``, ``rd.png``
    into ``output_dir``.

    ``data`` is a folder, file or list (``None``: the bundled samples); ``qualities`` maps a codec
    name to the rates to sweep (default: each codec's ``default_eval_qualities()``).
    ``reuse=True`` takes ``<codec>.json`` already in ``output_dir`` (from an earlier bench or a
    ``codeczoo eval -o``) instead of re-running a codec, when it covers the same number of images,
    the same qualities and the same weights.
    """
    names = bench_codecs(codecs, include_untrained)
    images = find_images(data, limit=limit)
    source = describe_source(data)
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise CodeczooError(f"output {out} is a file, not a folder")
    ensure_folder(out)
    qualities = qualities or {}
    unknown = set(qualities) - set(names)
    if unknown:
        raise CodeczooError(f"qualities given for codecs not benchmarked: {', '.join(sorted(unknown))}")

    results: dict[str, dict[str, Any]] = {}
    not_run: dict[str, str] = {}
    files: list[Path] = []
    for name in names:
        previous = _reusable(out / f"{name}.json", name, len(images), qualities.get(name)) \
            if reuse else None
        if previous is not None:
            results[name] = previous
            files.append(out / f"{name}.json")
            continue
        pretrained = False if name == ANCHOR else None
        try:
            results[name] = evaluate(name, images, qualities.get(name), pretrained=pretrained,
                                     device=device, progress=progress, source=source)
        except CodeczooError as exc:
            if name == ANCHOR:
                raise
            not_run[name] = str(exc)  # e.g. AVIF on a 16-bit image: the others still run
            continue
        files.append(write_results(results[name], out / f"{name}.json"))

    anchor = results[ANCHOR]
    bd = {name: bd_rates_against(anchor, result, method) for name, result in results.items()
          if name != ANCHOR}
    command = command or f"codeczoo bench {data if data is not None else ''} --codecs {','.join(names)}"
    table = markdown_table(results, bd, command, source, method, not_run)
    write_text(out / "table.md", table, overwrite=True)
    write_text(out / "bd_rates.json", json.dumps(
        {"anchor": ANCHOR, "method": method, "bd_rate_percent": bd, "not_run": not_run,
         "psnr_at_bpp": {"bpp": list(MATCHED_RATES), **psnr_at_rates(results)}},
        indent=2) + "\n", overwrite=True)
    files += [out / "table.md", out / "bd_rates.json"]
    files.append(rd_plot(list(results.values()), out / "rd.png",
                         title=f"Rate–distortion on {Path(source).name if data is not None else 'bundled samples'}"))
    return BenchReport(results, bd, table, files, not_run)
