"""``codeczoo demo``: the main job on an embedded default.

Compresses the bundled sample radiographs (or the images given) with every available codec
(the classic codecs and each learned codec with pretrained weights), writes each bitstream to
disk, reads it back, decodes it and prints size, bits per pixel measured from the file, and PSNR.
An image deeper than a codec's card allows (AVIF: 12 bits) is skipped with a note.
"""

from __future__ import annotations

from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="compress the bundled sample X-rays with every codec")
    parser.add_argument("images", nargs="*", help="images to use instead of the bundled samples")
    parser.add_argument("-o", "--output", help="keep the bitstreams in this folder (default: temp)")
    parser.add_argument("--codecs", help="comma-separated codec names (default: all available)")
    parser.set_defaults(func=run)


def available_codecs() -> list[str]:
    from .. import list_codecs
    from ..registry import codec_class

    classic = [n for n in list_codecs() if not codec_class(n).learned and n != "jpeg2000"]
    return ["jpeg2000", *classic, *list_codecs(pretrained=True)]


def demo_rows(images: list[Path], codec_names: list[str], folder: Path):
    """Yield one result row per (image, codec, quality): bytes on disk, bpp, PSNR, exactness."""
    import numpy as np

    from .. import decode, load_for_encoding
    from ..atomic import write_bytes
    from ..io import read_image
    from ..metrics import bpp, psnr

    from .. import get_card

    for name in codec_names:
        codec = load_for_encoding(name)
        qualities = codec.demo_qualities or (codec.default_quality,)
        low, high = get_card(name).input.bit_depths
        for path in images:
            image = read_image(path)
            if not low <= image.bits_stored <= high:
                yield {"image": path.name, "codec": name, "bits": image.bits_stored,
                       "skipped": f"{name} codes {low}-{high} bits"}
                continue
            for quality in qualities:
                data = codec.for_quality(quality).encode(
                    image.pixels, quality, bits_stored=image.bits_stored,
                    photometric=image.photometric)
                target = folder / f"{path.stem}.{name}.q{quality}.czoo"
                write_bytes(target, data, overwrite=True)
                size = target.stat().st_size
                restored = decode(target.read_bytes())
                yield {
                    "image": path.name, "codec": name, "quality": quality,
                    "bits": image.bits_stored, "bytes": size,
                    "bpp": bpp(size, image.pixels),
                    "psnr": psnr(image.pixels, restored, image.bits_stored),
                    "exact": bool(np.array_equal(image.pixels, restored)),
                }


def run(args) -> int:
    import tempfile

    from ..atomic import ensure_folder
    from ..evaluation.data import find_images

    images = find_images(args.images or SAMPLES)
    names = args.codecs.split(",") if args.codecs else available_codecs()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.output or tmp)
        ensure_folder(folder)
        print(f"{'image':<20} {'codec':<34} {'q':>3} {'bits':>4} {'bytes':>7} {'bpp':>7} "
              f"{'PSNR dB':>8}")
        for row in demo_rows(images, names, folder):
            if "skipped" in row:
                print(f"{row['image']:<20} {row['codec']:<34} {'':>3} {row['bits']:>4} "
                      f"skipped: {row['skipped']}")
                continue
            psnr_text = "lossless" if row["exact"] else f"{row['psnr']:.2f}"
            print(f"{row['image']:<20} {row['codec']:<34} {row['quality']:>3} {row['bits']:>4} "
                  f"{row['bytes']:>7} {row['bpp']:>7.3f} {psnr_text:>8}")
    if SAMPLES in {p.parent for p in images}:
        print("Sample images: see codeczoo/samples/README.md for sources and licenses "
              "(chest X-rays: Hannover Medical School, CC BY 3.0).")
    return 0
