"""Check an installed codeczoo as a user gets it: the zoo is there and nothing loses data.

    python scripts/check_install.py tests/data/bitstreams [--data ../shared/data] [--workdir DIR]

Run it with the Python of the environment to check (CI: a fresh venv holding only the built
wheel, from a folder outside the checkout, so the checkout's sources cannot stand in). It
checks, through the ``codeczoo`` command of that environment:

1. ``codeczoo list --pretrained`` lists the shipped codecs, whose weights load from the
   installed package (not from a checkout);
2. every pretrained codec and JPEG 2000 compress the bundled sample to a file and decompress it;
3. every committed bitstream (written by the shipped weights) decodes to its committed image;
4. a learned codec without trained weights is refused with one line and a non-zero exit, and
   no output file is left behind;
5. the recipes travel too: ``codeczoo list --recipes``, and with ``--data`` one
   ``codeczoo fit --config <recipe name> --trainer.fast_dev_run 1`` step.

Prints one line per check and exits non-zero on the first failure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def fail(message: str) -> None:
    print(f"FAIL: {message}")
    sys.exit(1)


def codeczoo(*args: str, cwd: Path, expect_ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "codeczoo", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=900)
    if expect_ok and proc.returncode != 0:
        fail(f"codeczoo {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
    return proc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bitstreams", help="folder of committed <codec>-q4.czoo + .png pairs")
    parser.add_argument("--data", help="shared data folder: also run one fit step from a recipe")
    parser.add_argument("--workdir", help="scratch folder (default: a new temporary one)")
    parser.add_argument("--installed", action="store_true",
                        help="require codeczoo to be imported from site-packages (a real install)")
    args = parser.parse_args(argv)
    bitstreams = Path(args.bitstreams).resolve()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="codeczoo-check-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ["CODECZOO_REGISTRY"] = str(work / "user-registry")  # an empty user registry

    import numpy as np

    import codeczoo as cz
    from codeczoo.io import read_image
    from codeczoo.registry import current_weights, packaged_registry
    from codeczoo.training.recipes import list_recipes

    where = Path(cz.__file__).resolve()
    if args.installed and "site-packages" not in where.parts:
        fail(f"codeczoo is imported from {where}, not from an installed package")
    print(f"ok: codeczoo {cz.__version__} from {where.parent}")

    listed = codeczoo("list", "--pretrained", cwd=work).stdout
    pretrained = cz.list_codecs(pretrained=True)
    if len(pretrained) < 2 or any(name not in listed for name in pretrained):
        fail(f"pretrained codecs missing: list says {listed!r}")
    for name in pretrained:
        root = current_weights(name).root.resolve()
        if root != packaged_registry().resolve():
            fail(f"{name}: weights come from {root}, not from the package")
    print(f"ok: pretrained codecs {', '.join(pretrained)} (weights in {packaged_registry()})")

    sample = Path(cz.__file__).resolve().parent / "samples" / "chest_1_8bit.png"
    original = read_image(sample).pixels
    for name in [*pretrained, "jpeg2000"]:
        packed, restored = work / f"{name}.czoo", work / f"{name}.png"
        codeczoo("compress", str(sample), "-o", str(packed), "--codec", name, "--force", cwd=work)
        codeczoo("decompress", str(packed), "-o", str(restored), "--force", cwd=work)
        back = read_image(restored).pixels
        error = np.abs(back.astype(int) - original).mean()
        if back.shape != original.shape or error > 20:
            fail(f"{name}: decoded {back.shape}, mean abs error {error:.1f}")
        print(f"ok: {name} round trip, {packed.stat().st_size} bytes, mean abs error {error:.2f}")

    # the learned entropy stage and adaptive iterations, from the packaged entropy models
    packed, restored = work / "adaptive.czoo", work / "adaptive.png"
    codeczoo("compress", str(sample), "-o", str(packed), "--codec", "sushmit2019-rnnconv",
             "--entropy", "learned", "--psnr", "36", "--force", cwd=work)
    codeczoo("decompress", str(packed), "-o", str(restored), "--force", cwd=work)
    back = read_image(restored).pixels.astype(np.float64)
    psnr = 10 * np.log10(255.0 ** 2 / np.mean((back - original) ** 2))
    if psnr < 35.9:
        fail(f"adaptive learned-stage round trip reached {psnr:.2f} dB, 36 requested")
    print(f"ok: --entropy learned --psnr 36 round trip, {packed.stat().st_size} bytes, {psnr:.2f} dB")

    streams = sorted(bitstreams.glob("*.czoo"))
    if not streams:
        fail(f"no committed bitstreams in {bitstreams}")
    for stream in streams:
        expected = read_image(stream.with_suffix(".png")).pixels
        decoded = cz.decode(stream.read_bytes())
        diff = np.abs(decoded.astype(int) - expected)
        # bit-exact on the machine that wrote them; another CPU's float rounding may move a
        # handful of pixels by one grey level
        if decoded.shape != expected.shape or diff.max() > 1 or (diff > 0).mean() > 0.001:
            fail(f"{stream.name} decodes differently (max diff {diff.max()})")
        print(f"ok: committed {stream.name} decodes to its image")

    untrained = [n for n in cz.list_codecs(pretrained=False) if cz.registry.codec_class(n).learned]
    if untrained:
        target = work / "refused.czoo"
        proc = codeczoo("compress", str(sample), "-o", str(target), "--codec", untrained[0],
                        cwd=work, expect_ok=False)
        lines = proc.stderr.strip().splitlines()
        if proc.returncode == 0 or len(lines) != 1 or "no trained weights" not in lines[0]:
            fail(f"untrained {untrained[0]} was not refused cleanly: {proc.returncode} {lines}")
        if target.exists():
            fail("a refused compression left a file behind")
        print(f"ok: untrained {untrained[0]} refused: {lines[0][:90]}...")

    recipes = list_recipes()
    listed = codeczoo("list", "--recipes", cwd=work).stdout.split()
    if not recipes or listed != recipes:
        fail(f"recipes missing from the package: {listed}")
    print(f"ok: {len(recipes)} recipes packaged")
    if args.data:
        name = next(r for r in recipes if r.endswith("cpu"))
        run = work / "fit"
        codeczoo("fit", "--config", name, "--trainer.fast_dev_run", "1",
                 "--trainer.default_root_dir", str(run), "--data.init_args.data_root",
                 str(Path(args.data).resolve()), "--data.init_args.limit_images", "2", cwd=work)
        print(f"ok: codeczoo fit --config {name} (fast_dev_run) from the package")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
