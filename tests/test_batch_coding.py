"""Batched coding: several images' tiles through the network together, DEFLATE in a pool."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import codeczoo
from codeczoo import intensity
from codeczoo.coding import recurrent_payload
from codeczoo.errors import CodecMismatchError
from codeczoo.io import read_image


@pytest.fixture(scope="module")
def images(cxr_val_images, dicom_dir):
    """Two 8-bit chest X-rays of different sizes, cut to keep the test fast, and a 10-bit
    DICOM crop: mixed shapes, bit depths and edge tiles."""
    pngs = [np.asarray(read_image(p).pixels)[200:296, 150:262] for p in cxr_val_images[:2]]
    dicom = read_image(dicom_dir / "RG3_UNCR.dcm")
    return pngs + [np.asarray(dicom.pixels)[300:380, 300:390].astype(np.uint16)]


def _bits(image):
    return 10 if image.dtype == np.uint16 else None


@pytest.mark.parametrize("name", ["sushmit2019-rnnconv", "toderici2017-lstm-oneshot-small"])
def test_batch_bitstreams_decode_like_single_ones(name, images):
    codec = codeczoo.load(name, pretrained=True)
    codec.tile_size = 64  # several tiles per image, edge tiles of other shapes
    codec.batch_tiles = 3  # runs that mix images
    singles = [codec.encode(img, 1, bits_stored=_bits(img)) for img in images]
    pngs, dicom = images[:2], images[2]
    batch = codec.encode_batch(pngs, 1) + codec.encode_batch([dicom], 1, bits_stored=10)
    assert batch[2] == singles[2]  # one image alone is cut and coded exactly as before
    for single, data, img in zip(singles, batch, images):
        assert codeczoo.read_header(data) == codeczoo.read_header(single)
        out = codec.decode(data)
        assert out.shape == img.shape and out.dtype == img.dtype
        # shared batches may round a few codes differently, never more than that
        ref = codec.decode(single)
        assert np.mean(out != ref) < 0.01
    decoded = codec.decode_batch(batch)
    for data, out in zip(batch, decoded):
        assert np.array_equal(out, codec.decode(data)) or np.abs(
            out.astype(int) - codec.decode(data)).max() <= 1


def test_stored_values_on_the_device_round_as_from_unit():
    x = torch.tensor([0.0, 0.5 / 255, 1.5 / 255, 0.25, 0.5, 254.5 / 255, 1.0, -0.1, 1.2,
                      1023.5 / 1023, 511.5 / 1023]).view(1, 1, 1, -1)
    for bits in (8, 10, 12, 16):
        assert np.array_equal(recurrent_payload._stored_values(x, bits)[0],
                              intensity.from_unit(x[0, 0], bits))


def test_one_worker_thread_does_not_deadlock(images, monkeypatch):
    monkeypatch.setattr(recurrent_payload, "_POOL", ThreadPoolExecutor(max_workers=1))
    codec = codeczoo.load("sushmit2019-rnnconv", pretrained=True)
    data = codec.encode_batch(images[:2], 1)
    assert len(codec.decode_batch(data)) == 2
    assert codec.decode(codec.encode(images[0], 1)).shape == images[0].shape


def test_classic_codecs_batch_one_by_one_and_mismatches_are_refused(images):
    j2k = codeczoo.load("jpeg2000")
    data = j2k.encode_batch(images[:2], 32)
    assert [d.shape for d in j2k.decode_batch(data)] == [i.shape for i in images[:2]]
    learned = codeczoo.load("sushmit2019-rnnconv", pretrained=True)
    with pytest.raises(CodecMismatchError):
        learned.decode_batch(data)
