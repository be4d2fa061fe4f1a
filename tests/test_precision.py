"""Every precision: learned codecs in fp16 / bf16 / fp32 / fp64 (tensor and byte layers), and
training in bf16-mixed and fp16-mixed (with a gradient scaler) on the CPU.

The models are the shipped weights; the inputs are crops of the package's real sample X-ray.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import codeczoo
from codeczoo import intensity
from codeczoo.io import read_image
from codeczoo.models.base import unpack_codes

SAMPLE = Path(codeczoo.__file__).parent / "samples" / "chest_1_8bit.png"
LEARNED = ["sushmit2019-rnnconv", "toderici2017-lstm-oneshot-small"]
# largest |x_hat(dtype) - x_hat(fp32)| from the same codes: a few units of each dtype's epsilon
TOLERANCE = {torch.float16: 4e-3, torch.bfloat16: 3e-2, torch.float32: 0.0, torch.float64: 1e-6}
DTYPES = list(TOLERANCE)


@pytest.fixture(scope="module")
def sample_values() -> np.ndarray:
    image = read_image(SAMPLE)
    return intensity.to_unsigned(image.pixels, image.spec)


@pytest.fixture(scope="module")
def crops(sample_values) -> torch.Tensor:
    """Two real 32 x 32 crops in [0, 1], float32 (what a caller hands in)."""
    return torch.cat([intensity.to_unit(sample_values[r:r + 32, 100:132], 8) for r in (40, 150)])


@pytest.mark.parametrize("name", LEARNED)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_compress_decompress_round_trip_in_every_dtype(name, dtype, crops):
    reference = codeczoo.load(name, pretrained=True).eval()
    model = codeczoo.load(name, pretrained=True).eval().to(dtype)
    iterations = 3
    codes = model.encode_codes(crops, iterations)  # float32 input, cast to the model's dtype
    assert codes.dtype == dtype
    out = model.compress(crops, iterations=iterations)
    h, w, t = out["shape"]
    # the codes that left torch come back bit-identical
    for i, string in enumerate(out["strings"][0]):
        raw = model.gzip.decompress(string)
        unpacked = unpack_codes(raw, (t, model.code_channels, h, w))
        assert np.array_equal(unpacked, codes[:, i].float().numpy())
    x_hat = model.decompress(out["strings"], out["shape"])["x_hat"]
    assert x_hat.dtype == dtype and x_hat.shape == crops.shape
    assert torch.equal(x_hat, model.decode_codes(codes).clamp(0, 1))
    # the same codes decode to the fp32 reconstruction within the dtype's rounding
    same_codes = model.decode_codes(codes.float()).double()
    fp32 = reference.decode_codes(codes.float()).double()
    assert (same_codes - fp32).abs().max().item() <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_byte_layer_encodes_and_decodes_in_every_dtype(dtype, sample_values):
    image = sample_values[:80, :72].astype(np.uint8)  # padded to 80 x 80 inside
    reference = codeczoo.load("sushmit2019-rnnconv", pretrained=True)
    model = codeczoo.load("sushmit2019-rnnconv", pretrained=True).to(dtype)
    data = model.encode(image, 2)
    out = model.decode(data)
    assert out.shape == image.shape and out.dtype == image.dtype
    ref = reference.decode(reference.encode(image, 2))
    psnr = [10 * math.log10(255 ** 2 / np.mean((o.astype(float) - image) ** 2)) for o in (out, ref)]
    assert abs(psnr[0] - psnr[1]) < 0.5  # a few codes may flip in low precision
    if dtype in (torch.float16, torch.float32, torch.float64):
        # fp16 weights stored, so fp16 / fp64 copies hash equal and read fp32 bitstreams
        assert model.weights_hash() == reference.weights_hash()
        assert np.abs(model.decode(reference.encode(image, 2)).astype(int) - ref).max() <= 1


def test_fp16_mixed_training_with_a_gradient_scaler_on_cpu(data_dir):
    """fp16 autocast with a GradScaler (what 16-mixed is on a GPU; Lightning turns 16-mixed into
    bf16 on a CPU unless given the plugin): clipping sees unscaled gradients, validation and the
    real-bpp path run under autocast."""
    import lightning as L
    from lightning.pytorch.plugins.precision import MixedPrecision

    from codeczoo.training.data import XrayDataModule
    from codeczoo.training.module import CodecModule

    module = CodecModule("toderici2017-lstm-oneshot-small", val_qualities=[1, 2],
                         codec_args={"max_iterations": 2, "default_quality": 1})
    data = XrayDataModule(data_root=str(data_dir), limit_images=4, batch_size=2, crops_per_image=2,
                          val_crop_size=32, val_crops_per_image=1)
    plugin = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))
    trainer = L.Trainer(accelerator="cpu", devices=1, plugins=[plugin], max_steps=2,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, gradient_clip_val=0.5, limit_val_batches=1,
                        num_sanity_val_steps=0)
    before = {k: v.clone() for k, v in module.model.state_dict().items()}
    trainer.fit(module, data)
    assert trainer.global_step == 2
    assert any(not torch.equal(before[k], v) for k, v in module.model.state_dict().items())
    metrics = trainer.validate(module, data, verbose=False)[0]
    assert metrics["val/bpp_q2"] > metrics["val/bpp_q1"] > 0 and math.isfinite(metrics["val/psnr_q2"])
