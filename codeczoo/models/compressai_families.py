"""CompressAI's own model families as one-channel zoo members, trained on chest X-rays.

Thin registrations of CompressAI's classes (no copy of their code: their ``forward``,
``compress``, ``decompress``, entropy models and rANS coder are used as they are):

* ``bmshj2018-factorized``: the factorized-prior model of Ballé, Minnen, Singh, Hwang, Johnston,
  "Variational image compression with a scale hyperprior", ICLR 2018 (arXiv:1802.01436), the
  architecture of Ballé, Laparra, Simoncelli, "End-to-end optimized image compression", ICLR 2017
  (arXiv:1611.01704); CompressAI's ``FactorizedPrior``;
* ``bmshj2018-hyperprior``: the scale hyperprior of Ballé et al. 2018; ``ScaleHyperprior``;
* ``mbt2018-mean``: the mean-scale hyperprior of Minnen, Ballé, Toderici, "Joint autoregressive
  and hierarchical priors for learned image compression", NeurIPS 2018 (arXiv:1809.02736);
  ``MeanScaleHyperprior``;
* ``mbt2018``: the same paper's joint autoregressive and hierarchical prior;
  ``JointAutoregressiveHierarchicalPriors`` (its context model decodes latent by latent, on the
  CPU: slow on large images, as in CompressAI).

**One channel, least code.** CompressAI builds RGB models: the analysis transform ``g_a`` starts
with ``conv(3, N)`` and the synthesis ``g_s`` ends with ``deconv(N, 3)``. The adapter
(:class:`OneChannelCompressAI`) lets CompressAI's constructor build everything, then swaps those
two layers for CompressAI's own ``conv(1, N)`` / ``deconv(N, 1)`` (same kernel and stride). That is
two assignments instead of a copied architecture, the state-dict keys stay CompressAI's (only
two tensors change shape), and every method is CompressAI's. Feeding a grey image three times
into the RGB model instead would triple the first layer's work and leave the model free to
output three different channels.

**Names.** ``<CompressAI zoo name>[-small]-cxr``: the CompressAI name, ``-small`` where the widths
are not the published ones, and ``-cxr``, what the weights were trained on: chest X-rays (the
shared MHH training split, 8-bit CLAHE PNGs). Entries without ``-small`` have CompressAI's
published sizes per quality (``compressai.zoo.image.cfgs``: e.g. N=128, M=192 for qualities
1-5 and N=192, M=320 for 6-8 of ``bmshj2018-hyperprior``), for a GPU; ``-small`` entries have
N=64, M=96 at every quality (the published low-rate widths halved, their 2:3 ratio kept), so
they train on a CPU.

**One network per quality** (``model_per_quality``), as in CompressAI's zoo: quality ``q`` of 1-8
is a network trained with CompressAI's ``lmbda`` ladder (:data:`LAMBDAS`, ``lmbda * 255**2 *
MSE + bpp``). It is one zoo entry whose registry holds one weights entry per quality (their
``arguments["quality"]``), so ``codeczoo.load(name, quality=q)`` is CompressAI's
``bmshj2018_hyperprior(quality=q, pretrained=True)``: the network of quality ``q``. Variants
as separate names per quality would break ``load(name, quality=q)`` and every tool that sweeps
``quality``; a single network per entry would not be CompressAI's models. An instance codes its
own quality; :meth:`OneChannelCompressAI.for_quality` gives another quality's network (the
evaluation tools use it to sweep the ladder).

**Byte layer.** ``encode_values`` / ``decode_values`` delegate to
:mod:`codeczoo.coding.compressai_payload`: [0, 1] floats of any bit depth 1-16
(:func:`codeczoo.intensity.to_unit`), replicate padding to the network's downsampling factor,
CompressAI's ``compress`` / ``decompress`` (rANS), strings and latent shape in a small checked
layout.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from compressai.models import (FactorizedPrior, JointAutoregressiveHierarchicalPriors,
                               MeanScaleHyperprior, ScaleHyperprior)
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.models import CompressionModel
from compressai.models.utils import conv, deconv
from compressai.zoo.image import cfgs as COMPRESSAI_SIZES

from ..bitstream import Header
from ..cards import CodecCard, InputFormat, Paper
from ..codec import Codec, cached_weights_hash, state_dict_hash
from ..coding import compressai_payload
from ..errors import CodecMismatchError, CodeczooError
from ..intensity import ImageSpec
from ..registry import register_codec

#: CompressAI's rate-distortion trade-offs per quality for MSE (its zoo's training table, also
#: ``compressai.models.vbr``): ``lmbda * 255**2 * MSE + bpp``.
LAMBDAS = {1: 0.0018, 2: 0.0035, 3: 0.0067, 4: 0.0130, 5: 0.0250, 6: 0.0483, 7: 0.0932, 8: 0.1800}

BALLE2017 = Paper(
    title="End-to-end Optimized Image Compression",
    authors=("Johannes Ballé", "Valero Laparra", "Eero P. Simoncelli"),
    venue="International Conference on Learning Representations (ICLR) 2017",
    arxiv="1611.01704")
BALLE2018 = Paper(
    title="Variational Image Compression with a Scale Hyperprior",
    authors=("Johannes Ballé", "David Minnen", "Saurabh Singh", "Sung Jin Hwang",
             "Nick Johnston"),
    venue="International Conference on Learning Representations (ICLR) 2018",
    arxiv="1802.01436")
MINNEN2018 = Paper(
    title="Joint Autoregressive and Hierarchical Priors for Learned Image Compression",
    authors=("David Minnen", "Johannes Ballé", "George Toderici"),
    venue="Advances in Neural Information Processing Systems (NeurIPS) 2018",
    arxiv="1809.02736")
COMPRESSAI = Paper(
    title="CompressAI: a PyTorch library and evaluation platform for end-to-end compression "
          "research",
    authors=("Jean Bégaint", "Fabien Racapé", "Simon Feltman", "Akshay Pushparaja"),
    venue="arXiv 2020", arxiv="2011.03029", url="https://github.com/InterDigitalInc/CompressAI")


class OneChannelCompressAI(CompressionModel, Codec):
    """Adapter: a CompressAI model family with one channel in and out and the codeczoo byte layer.

    A family subclasses this and the CompressAI class (``class X(OneChannelCompressAI,
    ScaleHyperprior)``) and names its CompressAI zoo architecture in ``family``.

    Args:
        N, M: CompressAI's widths (``N`` channels in the transforms, ``M`` latent channels);
            ``None``: CompressAI's published size for ``quality`` (``compressai.zoo.image.cfgs``).
        quality: 1-8, which network of CompressAI's ladder this is: it sets ``lmbda``
            (:data:`LAMBDAS`), the container's rate setting and, with ``N`` / ``M`` ``None``,
            the published size.
    """

    family: ClassVar[str] = ""  # CompressAI zoo architecture name (key of compressai.zoo cfgs)
    latent_strings: ClassVar[int] = 2  # string groups compress() returns: [y] or [y, z]
    codec_version: ClassVar[str] = "1"
    learned: ClassVar[bool] = True
    model_per_quality: ClassVar[bool] = True
    qualities = tuple(LAMBDAS)
    eval_qualities = tuple(LAMBDAS)  # untrained: the ladder; trained: the trained qualities

    def __init__(self, N: int | None = None, M: int | None = None, quality: int = 4):
        if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) \
                or int(quality) not in LAMBDAS:
            raise ValueError(f"quality must be one of 1..{len(LAMBDAS)} (CompressAI's ladder), "
                             f"got {quality!r}")
        quality = int(quality)
        published_n, published_m = COMPRESSAI_SIZES[self.family][quality]
        sizes = {"N": published_n if N is None else N, "M": published_m if M is None else M}
        for key, value in sizes.items():
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        super().__init__(int(sizes["N"]), int(sizes["M"]))  # CompressAI builds the RGB model
        self._make_one_channel()
        self.given_sizes = {"N": N, "M": M}  # as asked for (None: published, per quality)
        self.quality = self.default_quality = quality
        self.lmbda = LAMBDAS[quality]
        self.spatial_multiple = self.downsampling_factor
        self.update(force=True)  # CDF tables from the start: compress() works on any instance

    def _make_one_channel(self) -> None:
        first, last = self.g_a[0], self.g_s[-1]
        if first.in_channels != 3 or last.out_channels != 3:
            raise TypeError(f"{type(self).__name__}: CompressAI's g_a[0] / g_s[-1] are no longer "
                            "the RGB input / output layers this adapter replaces")
        self.g_a[0] = conv(1, first.out_channels, first.kernel_size[0], first.stride[0])
        self.g_s[-1] = deconv(last.in_channels, 1, last.kernel_size[0], last.stride[0])

    # -- what the zoo reads ------------------------------------------------------------------------
    def weights_hash(self) -> bytes:
        """First 8 bytes of the sha256 of the weights and CDF tables (cached)."""
        return cached_weights_hash(self)

    def rate_table(self) -> list[dict]:
        """quality -> lmbda and the widths of that quality's network in this entry."""
        rows = []
        for quality, lmbda in LAMBDAS.items():
            n, m = COMPRESSAI_SIZES[self.family][quality]
            rows.append({"quality": quality, "lmbda": lmbda,
                         "N": self.given_sizes["N"] or n, "M": self.given_sizes["M"] or m})
        return rows

    def default_eval_qualities(self, count: int = 8) -> list[int]:
        """The qualities with trained weights when this network's weights are registered (the
        ladder the zoo holds), else the declared ladder."""
        from ..registry import find_weights, trained_qualities

        if self.codec_name and find_weights(self.codec_name, self.weights_hash().hex()):
            return trained_qualities(self.codec_name)
        return super().default_eval_qualities(count)

    def for_quality(self, quality: int) -> "OneChannelCompressAI":
        """The network of ``quality``: this one, or that quality's, loaded the way this one was
        (registered trained weights, or the seeded untrained initialisation) on its device."""
        from ..registry import build, find_weights, load

        quality = self.check_quality(quality)
        if quality == self.quality:
            return self
        name = self.codec_name
        if find_weights(name, self.weights_hash().hex()) is not None:
            other = load(name, quality, pretrained=True)
        elif build(name, quality=self.quality, **self.given_sizes).weights_hash() == \
                self.weights_hash():
            other = load(name, quality, pretrained=False, **self.given_sizes)
        else:
            raise CodeczooError(
                f"{name}: this is quality {self.quality}'s network, with weights no registry "
                f"holds; load quality {quality}'s own weights: codeczoo.load({name!r}, "
                f"quality={quality}, weights=FILE)")
        return other.to(next(self.parameters()).device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Size the entropy models' CDF tables to the incoming ones before loading.

        Every instance carries CDF tables (``update`` at construction), whose size depends on
        the trained quantiles and scales; CompressAI's ``load_state_dict`` only resizes empty
        tables. Done here rather than in ``load_state_dict`` so that loading through a parent
        module (a Lightning checkpoint of ``CodecModule``) works too.
        """
        for name, module in self.named_modules():
            if isinstance(module, (EntropyBottleneck, GaussianConditional)):
                for buffer_name, buffer in module.named_buffers(recurse=False):
                    key = f"{prefix}{name}.{buffer_name}"
                    if key in state_dict and buffer.shape != state_dict[key].shape:
                        buffer.resize_(state_dict[key].shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @classmethod
    def from_state_dict(cls, state_dict, **kwargs):
        """CompressAI contract: rebuild a model from its weights. Weights a registry holds come
        back exactly as registered (zoo name, quality, widths); others get the widths their
        shapes imply and ``kwargs`` (e.g. ``quality``)."""
        from ..registry import build, find_registered

        found = find_registered(cls, state_dict_hash(state_dict).hex())
        if found is not None:
            name, arguments = found
            model = build(name, **{**arguments, **kwargs})
        else:
            model = cls(**{"N": int(state_dict["g_a.0.weight"].size(0)),
                           "M": int(state_dict["g_a.6.weight"].size(0)), **kwargs})
        model.load_state_dict(state_dict)
        return model

    # -- byte layer: the payload format lives in codeczoo.coding.compressai_payload -------------
    def _own_quality(self, quality: int) -> None:
        if quality != self.quality:
            name = self.codec_name
            raise CodeczooError(
                f"{name}: this is quality {self.quality}'s network (one network per quality); "
                f"code quality {quality} with codeczoo.load({name!r}, quality={quality}) or "
                f".for_quality({quality})")

    def encode_values(self, values: np.ndarray, spec: ImageSpec, quality: int
                      ) -> tuple[bytes, tuple[int, int]]:
        self._own_quality(quality)
        return compressai_payload.encode(self, values, spec)

    def decode_values(self, payload: bytes, header: Header) -> np.ndarray:
        if header.quality != self.quality:
            raise CodecMismatchError(f"bitstream of quality {header.quality}, this is quality "
                                     f"{self.quality}'s network")
        return compressai_payload.decode(self, payload, header)


class FactorizedPriorXray(OneChannelCompressAI, FactorizedPrior):
    """Ballé et al. 2018 factorized prior (ICLR 2018, arXiv:1802.01436), one channel."""

    family = "bmshj2018-factorized"
    latent_strings = 1


class ScaleHyperpriorXray(OneChannelCompressAI, ScaleHyperprior):
    """Ballé et al. 2018 scale hyperprior (ICLR 2018, arXiv:1802.01436), one channel."""

    family = "bmshj2018-hyperprior"


class MeanScaleHyperpriorXray(OneChannelCompressAI, MeanScaleHyperprior):
    """Minnen et al. 2018 mean-scale hyperprior (NeurIPS 2018, arXiv:1809.02736), one channel."""

    family = "mbt2018-mean"


class JointAutoregressiveXray(OneChannelCompressAI, JointAutoregressiveHierarchicalPriors):
    """Minnen et al. 2018 joint autoregressive and hierarchical priors (NeurIPS 2018,
    arXiv:1809.02736), one channel."""

    family = "mbt2018"


# -- zoo entries: per family, CompressAI's published widths and a CPU-sized variant ------------------
SMALL = {"N": 64, "M": 96}
_FAMILIES = (
    (FactorizedPriorXray, BALLE2018, (BALLE2017, COMPRESSAI),
     "Ballé et al. 2018 factorized prior (CompressAI bmshj2018-factorized)"),
    (ScaleHyperpriorXray, BALLE2018, (COMPRESSAI,),
     "Ballé et al. 2018 scale hyperprior (CompressAI bmshj2018-hyperprior)"),
    (MeanScaleHyperpriorXray, MINNEN2018, (BALLE2018, COMPRESSAI),
     "Minnen et al. 2018 mean-scale hyperprior (CompressAI mbt2018-mean)"),
    (JointAutoregressiveXray, MINNEN2018, (BALLE2018, COMPRESSAI),
     "Minnen et al. 2018 joint autoregressive + hyperprior (CompressAI mbt2018; serial "
     "context decoding, slow on large images)"),
)
_RATE = ("quality 1-8 = CompressAI's ladder, one network per quality trained with lmbda "
         "0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483, 0.0932, 0.18 (lmbda * 255^2 * MSE + "
         "bpp); codeczoo.load(name, quality=q) loads quality q's network. The rate of a file is "
         "measured from its bytes, not set")
_USE = ("research: CompressAI's families on one-channel radiographs, beside the recurrent codecs "
        "and JPEG 2000; trained on 8-bit chest X-rays (9-16 bit images are coded through [0, 1] "
        "floats, untrained for their extra precision); not validated for diagnostic use")


def _input(cls: type) -> InputFormat:
    multiple = 16 if cls.latent_strings == 1 else 64
    return InputFormat(spatial=f"any size; replicate-padded to a multiple of {multiple} and coded "
                               "whole (memory grows with the image, as in CompressAI)")


def _notes(family: str, small: bool) -> dict[str, str]:
    low, high = COMPRESSAI_SIZES[family][1], COMPRESSAI_SIZES[family][8]
    if small:
        sizes = (f"64 / 96 at every quality: CPU-trainable, NOT the published widths "
                 f"(CompressAI: {low[0]} / {low[1]} at low qualities, {high[0]} / {high[1]} at "
                 "high ones)")
    else:
        sizes = (f"None: CompressAI's published widths per quality (compressai.zoo.image.cfgs: "
                 f"{low[0]} / {low[1]} at quality 1 ... {high[0]} / {high[1]} at quality 8)")
    return {"N": f"transform channels; {sizes}", "M": "latent channels; see N",
            "quality": "which network of the ladder an instance is (codeczoo.load(name, "
                       "quality=q) sets it); 4 (lmbda 0.013) when none is given"}


for _cls, _paper, _related, _what in _FAMILIES:
    for _small in (False, True):
        _name = f"{_cls.family}{'-small' if _small else ''}-cxr"
        register_codec(_name, CodecCard(
            description=(f"{_what}, one channel, for chest X-rays; "
                         + ("N=64, M=96 (CPU-trainable, not the published widths)."
                            if _small else "CompressAI's published widths per quality.")),
            paper=_paper, related=_related, arguments=dict(SMALL) if _small else {},
            argument_notes=_notes(_cls.family, _small), input=_input(_cls), rate=_RATE,
            license="codeczoo: Apache-2.0; CompressAI: BSD-3-Clause-Clear",
            intended_use=_USE))(_cls)
