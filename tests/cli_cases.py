"""Run codeczoo cases in a separate process, under real operating-system limits.

Used by ``tests/test_robustness.py`` where a test needs what a pytest process cannot give itself
and take back: a file size limit (a full disk, ``RLIMIT_FSIZE`` with ``SIGXFSZ`` ignored, so a
write fails with ``EFBIG`` as on a full device), permissions that bind even root (the
``CAP_DAC_OVERRIDE`` capability dropped from the bounding set before ``exec``), or a clean
process whose peak memory can be measured and capped.

``python tests/cli_cases.py CASES.json`` reads a list of cases and prints one JSON line of
results. A case is ``{"argv": [...], "fsize": N}`` (run ``codeczoo.cli.main(argv)`` with the file
size limit ``N`` bytes, or none) or ``{"decode": PATH, "max_pixels": N}`` (``codeczoo.decode`` the
file, measuring time and peak memory). Each result records the exit code (or exception), stdout,
stderr and whether anything escaped ``main``.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import os
import resource
import signal
import sys
import time
import traceback

#: Linux capability numbers and prctl option (linux/capability.h, linux/prctl.h).
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, PR_CAPBSET_DROP = 1, 2, 24


def drop_file_capabilities() -> None:
    """``preexec_fn``: make permission bits bind even for root in the child (after ``exec``).

    Raises ``OSError`` where the bounding set cannot be changed (no ``CAP_SETPCAP``).
    """
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _vm_size() -> int:
    """Virtual memory of this process (Linux); 0 where /proc does not tell."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_main(argv: list[str], fsize: int | None) -> dict:
    from codeczoo.cli import main

    out, err = io.StringIO(), io.StringIO()
    resource.setrlimit(resource.RLIMIT_FSIZE,
                       (resource.RLIM_INFINITY if fsize is None else fsize, resource.RLIM_INFINITY))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        escaped = None
    except BaseException:  # noqa: BLE001 - what the test looks for
        code, escaped = None, traceback.format_exc()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    return {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue(), "escaped": escaped}


def run_decode(path: str, max_pixels: int | None) -> dict:
    import codeczoo

    data = open(path, "rb").read()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    try:
        codeczoo.decode(data, max_pixels=max_pixels)
        error = None
    except BaseException as exc:  # noqa: BLE001
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"error": error, "seconds": seconds, "extra_peak_bytes": after - before}


def main(cases_file: str) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    cases = json.load(open(cases_file))
    if any("decode" in case for case in cases):
        import codeczoo

        for name in {case.get("warm") for case in cases} - {None}:
            codeczoo.load(name, pretrained=codeczoo.registry.has_pretrained(name))
        # A safety net, not the measurement: a regression that tries to allocate gigabytes fails
        # here (and the test with it) instead of exhausting a shared machine.
        if _vm_size():
            resource.setrlimit(resource.RLIMIT_AS, (_vm_size() + (1 << 30), resource.RLIM_INFINITY))
    results = []
    for case in cases:
        if "decode" in case:
            results.append(run_decode(case["decode"], case.get("max_pixels")))
        else:
            results.append(run_main(case["argv"], case.get("fsize")))
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1])
