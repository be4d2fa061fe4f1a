"""The classic members of the zoo: JPEG-LS, HTJ2K, JPEG XL and AVIF on real and synthetic
images, through the real libraries (CharLS, OpenJPH, libjxl, libaom), with every payload's
declared size checked before it is decoded (issue 15)."""

from __future__ import annotations

import numpy as np
import pytest

import codeczoo
from codeczoo import bitstream, metrics
from codeczoo.bitstream import Header
from codeczoo.classic.declared import avif_size, j2k_size, jpegls_size, jxl_size
from codeczoo.classic.jpegxl import distance_for
from codeczoo.errors import BitstreamError, CodeczooError
from codeczoo.evaluation.evaluate import evaluate
from codeczoo.io import read_image

NEW = ("jpegls", "htj2k", "jpegxl", "avif")
LOSSLESS = {"jpegls": 1, "htj2k": 1, "jpegxl": 100, "avif": 100}
#: bit depths each format codes (AVIF: AV1 has at most 12 bits; JPEG-LS at least 2)
DEPTHS = {"jpegls": (2, 8, 10, 12, 16), "htj2k": (1, 8, 12, 16), "jpegxl": (1, 8, 12, 16),
          "avif": (1, 8, 10, 12)}
PARSERS = {"jpegls": jpegls_size, "htj2k": j2k_size, "jpegxl": jxl_size, "avif": avif_size,
           "jpeg2000": j2k_size}


@pytest.fixture(scope="module")
def crop(cxr_val_images):
    """A real 8-bit chest X-ray crop."""
    return read_image(cxr_val_images[0]).pixels[100:292, 120:376]


@pytest.fixture(scope="module")
def crop12(dicom_dir):
    """A real 12-bit radiograph crop (DX chest, JPEG 2000 source)."""
    return read_image(dicom_dir / "966_fixed.dcm").pixels[600:760, 700:924]


def _synthetic(bits: int, shape=(37, 53), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = np.add.outer(np.arange(shape[0]), np.arange(shape[1])) * ((1 << bits) // 97 + 1)
    noise = rng.integers(0, 1 << max(1, bits - 3), shape)
    values = (smooth + noise) % (1 << bits)
    return values.astype(np.uint8 if bits <= 8 else np.uint16)


@pytest.mark.parametrize("name", NEW)
def test_registered_with_cards(name):
    assert name in codeczoo.list_codecs()
    card = codeczoo.get_card(name)
    assert card.paper and card.rate and card.license and card.intended_use
    codec = codeczoo.load(name)
    assert codec.default_eval_qualities()  # declared and valid
    assert LOSSLESS[name] in codec.default_eval_qualities()
    assert codec.is_lossless(LOSSLESS[name])


@pytest.mark.parametrize("name", NEW)
def test_lossless_at_every_depth(name):
    codec = codeczoo.load(name)
    for bits in DEPTHS[name]:
        image = _synthetic(bits)
        data = codec.encode(image, LOSSLESS[name], bits_stored=bits)
        assert np.array_equal(codec.decode(data), image), (name, bits)
        declared = PARSERS[name](bitstream.unpack(data)[1])
        assert (declared.height, declared.width) == image.shape


@pytest.mark.parametrize("name", NEW)
def test_real_crops_lossless_and_lossy(name, crop, crop12):
    codec = codeczoo.load(name)
    for image, bits in ((crop, 8), (crop12, 12)):
        lossless = codec.encode(image, LOSSLESS[name], bits_stored=bits)
        assert np.array_equal(codec.decode(lossless), image)
        lossy_q = [q for q in codec.default_eval_qualities() if not codec.is_lossless(q)]
        sizes, psnrs = [], []
        for quality in (lossy_q[0], lossy_q[-1]):
            data = codec.encode(image, quality, bits_stored=bits)
            restored = codec.decode(data)
            assert restored.dtype == image.dtype and restored.shape == image.shape
            sizes.append(len(data))
            psnrs.append(metrics.psnr(image, restored, bits))
        assert len(lossless) > max(sizes), name
        # a rate setting moves rate and quality together, in the card's direction
        assert (sizes[0] - sizes[1]) * (psnrs[0] - psnrs[1]) > 0, (name, sizes, psnrs)


def test_signed_images_round_trip():
    image = (_synthetic(12).astype(np.int16) - 2048)
    for name in NEW:
        codec = codeczoo.load(name)
        assert np.array_equal(codec.decode(codec.encode(image, LOSSLESS[name], bits_stored=12)),
                              image), name


def test_jpegls_near_lossless_bound(crop12):
    codec = codeczoo.load("jpegls")
    for near in (1, 4, 16):
        restored = codec.decode(codec.encode(crop12, near + 1, bits_stored=12))
        assert np.abs(restored.astype(int) - crop12).max() <= near
    with pytest.raises(CodeczooError, match="too large for 8-bit"):
        codec.encode((crop12[:8, :8] % 256).astype(np.uint8), 200, bits_stored=8)


def test_jpegls_precision_is_bits_stored(crop12):
    data = codeczoo.load("jpegls").encode(crop12, 1, bits_stored=12)
    assert jpegls_size(bitstream.unpack(data)[1]).precision == 12


def test_jpeg2000_precision_is_bits_stored(crop12):
    data = codeczoo.load("jpeg2000").encode(crop12, 1, bits_stored=12)
    assert j2k_size(bitstream.unpack(data)[1]).precision == 12


def test_htj2k_ratio_targets_like_jpeg2000(crop12):
    codec = codeczoo.load("htj2k")
    for ratio in (8, 32):
        data = codec.encode(crop12, ratio, bits_stored=12)
        payload = bitstream.unpack(data)[1]
        assert len(payload) <= 12 * crop12.size / (8 * ratio)
        assert len(payload) > 0.7 * 12 * crop12.size / (8 * ratio)  # the search lands close


def test_jpegxl_quality_scale():
    assert distance_for(100) == 0 and distance_for(90) == pytest.approx(1.0)
    assert distance_for(30) == pytest.approx(6.4) and distance_for(10) > distance_for(29)


def test_avif_refuses_more_than_12_bits():
    with pytest.raises(CodeczooError, match="at most 12 bits.*jpegxl"):
        codeczoo.load("avif").encode(_synthetic(14), 100, bits_stored=14)


def _with_payload(data: bytes, payload: bytes) -> bytes:
    """``data``'s container (valid CRC) around another payload."""
    header = bitstream.unpack(data)[0]
    return bitstream.pack(Header(header.codec, header.codec_version, header.weights_hash,
                                 header.quality, header.spec, header.pad_bottom,
                                 header.pad_right, len(payload), header.metadata_kind,
                                 header.metadata), payload)


@pytest.mark.parametrize("name", NEW + ("jpeg2000",))
def test_declared_size_is_checked_before_decoding(name):
    codec = codeczoo.load(name)
    lossless = LOSSLESS.get(name, 1)
    small = codec.encode(_synthetic(8, (16, 24)), lossless, bits_stored=8)
    large = codec.encode(_synthetic(8, (48, 40)), lossless, bits_stored=8)
    with pytest.raises(BitstreamError, match="declares (a )?48x40.*header says 16x24"):
        codec.decode(_with_payload(small, bitstream.unpack(large)[1]))
    # damaged payloads: one line, never a library traceback
    payload = bitstream.unpack(small)[1]
    for broken in (payload[:20], payload[:-2], b"\0" * 64):
        with pytest.raises(BitstreamError) as info:
            codec.decode(_with_payload(small, broken))
        assert "\n" not in str(info.value)


def test_jxl_size_header_on_many_shapes():
    codec = codeczoo.load("jpegxl")
    for shape in ((1, 1), (8, 8), (100, 120), (96, 128), (100, 133), (90, 160), (100, 200),
                  (300, 200), (513, 1025), (64, 256)):
        data = codec.encode(np.zeros(shape, np.uint8), 100, bits_stored=8)
        declared = jxl_size(bitstream.unpack(data)[1])
        assert (declared.height, declared.width) == shape


@pytest.mark.parametrize("name", NEW)
def test_evaluate_measures_bytes(name, crop):
    codec = codeczoo.load(name)
    qualities = [LOSSLESS[name], next(q for q in codec.default_eval_qualities() if not codec.is_lossless(q))]
    result = evaluate(name, [crop], qualities)
    data = codec.encode(crop, qualities[0], bits_stored=8)
    assert result["results"]["bpp"][0] == pytest.approx(len(data) * 8 / crop.size)
    assert result["codec"]["lossless_qualities"] == [LOSSLESS[name]]


def test_tensor_layer(crop):
    import torch

    from codeczoo import intensity

    x = intensity.to_unit(crop, 8)
    for name in NEW:
        codec = codeczoo.load(name, quality=LOSSLESS[name])
        out = codec.compress(torch.cat([x, x]))
        x_hat = codec.decompress(out["strings"], out["shape"])["x_hat"]
        assert torch.equal(x_hat[1:], x), name


def test_bench_lists_classic_codecs_and_runs_on_what_each_can_code(crop, crop12, tmp_path):
    from codeczoo.evaluation import bench
    from codeczoo.io import write_image

    assert set(NEW) <= set(bench.bench_codecs()) and bench.bench_codecs()[-1] == "jpeg2000"
    folder = tmp_path / "images"
    folder.mkdir()
    write_image(folder / "a.png", crop[:64, :96])
    write_image(folder / "b.png", crop12[:64, :96] * 16)  # a 16-bit PNG, which AVIF cannot code
    report = bench.run_bench(folder, ["avif", "jpegls", "jpeg2000"], tmp_path / "b",
                             {"avif": [100, 50], "jpegls": [1, 5], "jpeg2000": [1, 8]},
                             progress=False)
    assert "at most 12 bits" in report.not_run["avif"] and "avif" not in report.results
    assert "Not run" in report.table and "Lossless" in report.table
    lossless = report.table.split("Lossless")[1]
    assert "| jpegls | 1 |" in lossless and "| jpeg2000 | 1 |" in lossless
