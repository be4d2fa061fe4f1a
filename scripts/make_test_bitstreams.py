"""Write the bitstreams the tests (and CI's installed-wheel check) must always decode.

For every codec that ships weights, the bundled sample ``chest_1_8bit.png`` is coded at quality
4 and written to ``tests/data/bitstreams/<codec>-q4.czoo`` together with what it decodes to
(``<codec>-q4.png``). Shipping new weights must keep these decodable (keep the old weights entry
in ``registry/<codec>/weights.json``) or regenerate them deliberately with this script:

    python scripts/make_test_bitstreams.py            # every codec that ships weights
    python scripts/make_test_bitstreams.py NAME ...   # only these (new codecs)
"""

from __future__ import annotations

import sys
from pathlib import Path

import codeczoo
from codeczoo.io import read_image, write_image

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "data" / "bitstreams"
SAMPLE = REPO / "codeczoo" / "samples" / "chest_1_8bit.png"


def main(names: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    image = read_image(SAMPLE)
    for name in names or codeczoo.list_codecs(pretrained=True):
        data = codeczoo.encode(image.pixels, name, 4, bits_stored=image.bits_stored)
        (OUT / f"{name}-q4.czoo").write_bytes(data)
        write_image(OUT / f"{name}-q4.png", codeczoo.decode(data), overwrite=True)
        print(f"{name}: {len(data)} bytes, weights {codeczoo.read_header(data).weights_hex}")


if __name__ == "__main__":
    main(sys.argv[1:])
