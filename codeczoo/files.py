"""Image files <-> codeczoo bitstreams: what ``codeczoo compress`` and ``decompress`` do.

This is the file-level glue between :mod:`codeczoo.io` (read and write PNG, JPEG, NPY, DICOM) and
the byte layer of a codec. A DICOM's data set (without its pixel data) travels in the container's
metadata block, so a DICOM comes back as a DICOM with its original attributes; the lossy
attributes (0028,2110/2112/2114) are set by the writer when the codec was lossy.

Safety rules, enforced here for every caller:

* an input is never modified, an output may never be one of the inputs, and two inputs may not
  map to the same output (checked for the whole batch before anything is written);
* every output is written atomically (:mod:`codeczoo.atomic`): complete, or not at all;
* a batch keeps going: each file that fails is recorded with its reason and reported at the end
  (:func:`run_batch`), the others are done;
* an existing output is never replaced unless ``force``; but when it is **this job's finished
  output** it is skipped, so rerunning a batch after a failure only does what is left, without
  ``--force``. "Finished" is decided like ``make`` does, and then verified: the output is at
  least as new as its input, it is complete and readable, and it holds what this job would write
  (compress: a valid bitstream with the same codec, codec version, weights, rate setting and
  image description as the input; decompress: an image of the bitstream's size and type). Why
  not re-encode and compare bytes: that costs as much as the first run (a learned codec on a CPU
  takes seconds an image), while a half-written output cannot exist (atomic writes), so these
  checks only have to tell this job's output from some other file.
"""

from __future__ import annotations

import io as _io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from .errors import CodeczooError, ImageFormatError, OutputError, one_line

BITSTREAM_SUFFIX = ".czoo"


@dataclass(frozen=True)
class Job:
    """One input file and the output it goes to."""

    source: Path
    target: Path


def plan(inputs: Sequence[str], output: str, suffixes: Sequence[str],
         new_suffix: str | Callable[[Path], str], what: str = "image") -> list[Job]:
    """Decide every output path before anything is written, and check the batch-wide rules.

    ``output`` is a file path when there is exactly one input file and it does not name an
    existing folder (nor ends with a path separator); otherwise a folder that mirrors the inputs.
    ``new_suffix`` is the outputs' suffix, or a function of the input path that returns it.
    Whether an existing output may be replaced is decided per job, by :func:`run_batch`.
    """
    from .io import find_files

    sources = find_files(inputs, suffixes, what=what)
    single = len(sources) == 1 and Path(inputs[0]).is_file()
    out = Path(output)
    as_folder = not single or out.is_dir() or output.endswith(os.sep)
    jobs = []
    for found in sources:
        suffix = new_suffix(found.path) if callable(new_suffix) else new_suffix
        target = out / found.relative.with_suffix(suffix) if as_folder else out
        jobs.append(Job(found.path, target))
    resolved_inputs = {job.source.resolve() for job in jobs}
    targets = set()
    for job in jobs:
        resolved = job.target.resolve()
        if resolved in resolved_inputs:
            raise CodeczooError(f"output {job.target} would overwrite an input file")
        if resolved in targets:
            raise CodeczooError(f"two inputs map to the same output {job.target}")
        targets.add(resolved)
    return jobs


# -- running a batch -----------------------------------------------------------------------------

@dataclass
class BatchReport:
    """What a batch did: jobs done, jobs skipped as already finished, and failures with reasons."""

    done: list[Job] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)
    failed: list[tuple[Job, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.done) + len(self.skipped) + len(self.failed)


def _reason(job: Job, exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return f"{job.source}: out of memory"
    if isinstance(exc, OSError) and not isinstance(exc, CodeczooError):
        where = exc.filename or job.source
        return f"{where}: {exc.strerror or type(exc).__name__}"
    text = one_line(str(exc)) or type(exc).__name__
    return text if str(job.source) in text else f"{job.source}: {text}"


def run_batch(jobs: Sequence[Job], work: Callable[[Job], None],
              finished: Callable[[Job], str | None], force: bool = False,
              desc: str = "") -> BatchReport:
    """Run ``work(job)`` for every job; never stop at a failing one.

    An existing target is replaced only with ``force``; otherwise ``finished(job)`` says whether
    it is this job's finished output (``None``: skip the job) or why not (the job fails with
    "exists and <reason> (use --force to replace it)"). Errors codeczoo raises, operating-system
    errors and running out of memory are recorded per job; anything else is a bug and propagates.
    """
    from tqdm import tqdm

    report = BatchReport()
    # a progress bar on a terminal only (disable=None): logs and pipes get one line per error
    for job in tqdm(jobs, desc=desc, unit="file", disable=True if len(jobs) < 2 else None):
        try:
            if os.path.lexists(job.target) and not force:
                why_not = finished(job)
                if why_not is None:
                    report.skipped.append(job)
                    continue
                raise OutputError(f"output {job.target} exists and {why_not} "
                                  "(use --force to replace it)")
            work(job)
            report.done.append(job)
        except (CodeczooError, OSError, MemoryError) as exc:
            report.failed.append((job, _reason(job, exc)))
    return report


def report_failures(report: BatchReport) -> int:
    """Print every failure (one line each) on stderr; the exit code: 0 if none failed, else 1.

    A single job's failure is raised instead, so the command line prints it as its one line.
    """
    if not report.failed:
        return 0
    if report.total == 1:
        raise CodeczooError(report.failed[0][1])
    for _, reason in report.failed:
        print(f"codeczoo: error: {reason}", file=sys.stderr)
    print(f"codeczoo: error: {len(report.failed)} of {report.total} file(s) failed "
          "(the others are done; rerun the same command to retry only these)", file=sys.stderr)
    return 1


def output_age_problem(job: Job) -> str | None:
    try:
        if os.stat(job.target).st_mtime_ns < os.stat(job.source).st_mtime_ns:
            return "is older than its input"
    except OSError as exc:
        return f"cannot be checked ({exc.strerror})"
    return None


# -- compress ------------------------------------------------------------------------------------

def dataset_to_bytes(dataset) -> bytes:
    """A pydicom data set (pixel data removed) as DICOM Part 10 bytes."""
    import pydicom

    ds = dataset.copy()
    for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if tag in ds:
            del ds[tag]
    buffer = _io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=False)
    return buffer.getvalue()


def dataset_from_bytes(data: bytes):
    import pydicom

    try:
        return pydicom.dcmread(_io.BytesIO(data), force=True)
    except Exception as exc:  # pydicom raises many types for damaged data
        raise ImageFormatError(
            f"DICOM metadata in the bitstream is unreadable ({one_line(str(exc))})") from exc


def compress_file(source: Path, codec, quality: int | None) -> bytes:
    """Read one image file and return its codeczoo bitstream."""
    from .io import read_image

    image = read_image(source)
    metadata, kind = b"", "none"
    if image.dataset is not None:
        metadata, kind = dataset_to_bytes(image.dataset), "dicom"
    return codec.encode(image.pixels, quality, bits_stored=image.bits_stored,
                        photometric=image.photometric, metadata=metadata, metadata_kind=kind)


def compressed_output_problem(job: Job, codec, quality: int | None) -> str | None:
    """``None`` if ``job.target`` is the finished bitstream of ``job.source`` by ``codec`` at
    ``quality``, else why not (see the module docstring)."""
    from .bitstream import read_header
    from .io import read_image

    age = output_age_problem(job)
    if age:
        return age
    try:
        header = read_header(read_bitstream(job.target))
    except CodeczooError:
        return "is not a complete codeczoo bitstream"
    quality = codec.default_quality if quality is None else quality
    if (header.codec, header.codec_version, header.weights_hash, header.quality) != (
            codec.codec_name, codec.codec_version, codec.weights_hash(), quality):
        return (f"was written with other settings ({header.codec} version "
                f"{header.codec_version}, quality {header.quality}, weights {header.weights_hex})")
    if read_image(job.source).spec != header.spec:
        return "holds another image than its input"
    return None


# -- decompress ----------------------------------------------------------------------------------

def read_bitstream(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CodeczooError(f"cannot read {path}: {exc.strerror}") from exc


def output_suffix(data: bytes, requested: str = "auto") -> str:
    """The file type a bitstream decompresses to: DICOM when it came from one, else PNG."""
    from .bitstream import read_header

    if requested != "auto":
        return "." + requested.lstrip(".")
    return ".dcm" if read_header(data).metadata_kind == "dicom" else ".png"


def decompress_file(data: bytes, target: Path, codec=None, weights=None, *,
                    max_pixels: int | None = None) -> None:
    """Decode a bitstream and write the image to ``target`` (format from its suffix).

    ``max_pixels`` overrides the pixel limit (:mod:`codeczoo.limits`).
    """
    from . import decoder_for
    from .bitstream import unpack
    from .io import lossy_method_for, write_image
    from .limits import check_pixels
    from .metrics import dicom_lossy_ratio

    header, payload = unpack(data)
    check_pixels(header.spec.height + header.pad_bottom, header.spec.width + header.pad_right,
                 max_pixels)
    codec = codec or decoder_for(header, weights)
    pixels = codec.decode_payload(header, payload, max_pixels=max_pixels)
    source = None
    if header.metadata_kind == "dicom" and target.suffix.lower() in (".dcm", ".dicom"):
        source = dataset_from_bytes(header.metadata)
    elif target.suffix.lower() in (".dcm", ".dicom"):
        raise CodeczooError(f"{target}: this bitstream has no DICOM metadata; write .png or .npy")
    write_image(target, pixels, bits_stored=header.spec.bits_stored,
                photometric=header.spec.photometric, dataset=source,
                lossy=not codec.is_lossless(header.quality),
                ratio=dicom_lossy_ratio(header.payload_length, header.spec.pixels,
                                        pixels.dtype.itemsize * 8),
                method=lossy_method_for(header.codec),
                derivation=codec.derivation_description(header, payload),
                overwrite=True)


def decompressed_output_problem(job: Job) -> str | None:
    """``None`` if ``job.target`` is the finished image of bitstream ``job.source``, else why
    not."""
    from .bitstream import read_header
    from .io import read_image

    age = output_age_problem(job)
    if age:
        return age
    header = read_header(read_bitstream(job.source))
    try:
        image = read_image(job.target)
    except CodeczooError:
        return "is not a readable image"
    spec = header.spec
    if image.pixels.shape != (spec.height, spec.width) or image.pixels.dtype.name != spec.dtype:
        return "holds another image than this bitstream's"
    if image.source_format == "dicom" and (image.bits_stored, image.photometric) != (
            spec.bits_stored, spec.photometric):
        return "holds another image than this bitstream's"
    return None
