"""Write the bitstreams the tests (and CI's installed-wheel check) must always decode.

For every codec that ships weights, the bundled sample ``chest_1_8bit.png`` is coded at quality
4 and written to ``tests/data/bitstreams/<codec>-q4.czoo`` together with what it decodes to
(``<codec>-q4.png``). Shipping new weights must keep these decodable (keep the old weights entry
in ``registry/<codec>/weights.json``) or regenerate them deliberately with this script:

    python scripts/make_test_bitstreams.py            # every codec that ships weights
    python scripts/make_test_bitstreams.py NAME ...   # only these (new codecs)
    python scripts/make_test_bitstreams.py NAME@option=value/Q   # coding options, quality Q

A name may carry coding options and a quality after a slash: the learned entropy stage with
adaptive iterations at a 36 dB target is
``sushmit2019-rnnconv@entropy=learned@rate_control=psnr/36`` (written as
``sushmit2019-rnnconv-learned-psnr36.czoo``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import codeczoo
from codeczoo.io import read_image, write_image

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "data" / "bitstreams"
SAMPLE = REPO / "codeczoo" / "samples" / "chest_1_8bit.png"


def file_stem(name: str, quality: int) -> str:
    """``NAME-q4``; with coding options ``NAME-learned-psnr36`` (no ``@`` or ``=`` in names)."""
    base, options = codeczoo.registry.split_spec(name)
    parts = [base]
    if options.get("entropy") == "learned":
        parts.append("learned")
    if options.get("rate_control") == "psnr":
        return "-".join(parts) + f"-psnr{quality}"
    return "-".join(parts) + f"-q{quality}"


def main(names: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    image = read_image(SAMPLE)
    for item in names or codeczoo.list_codecs(pretrained=True):
        name, _, quality = item.partition("/")
        quality = int(quality or 4)
        data = codeczoo.encode(image.pixels, name, quality, bits_stored=image.bits_stored)
        stem = file_stem(name, quality)
        (OUT / f"{stem}.czoo").write_bytes(data)
        write_image(OUT / f"{stem}.png", codeczoo.decode(data), overwrite=True)
        print(f"{name}: {len(data)} bytes, weights {codeczoo.read_header(data).weights_hex}")


if __name__ == "__main__":
    main(sys.argv[1:])
