"""Rate–distortion evaluation of codeczoo codecs, one job per module.

* :mod:`.data`: find and read the images of a data folder (or the bundled samples).
* :mod:`.evaluate`: encode/decode every image through a codec's byte layer and write results in
  CompressAI's JSON schema (bpp from real bytes, PSNR/SSIM/MS-SSIM with the right data range).
* :mod:`.bdrate`: Bjøntegaard delta rate and PSNR between two rate–distortion curves.
* :mod:`.plot`: rate–distortion plots (matplotlib, Agg backend).
* :mod:`.bench`: every codec against JPEG 2000: results, BD-rates, markdown table, plot.
* :mod:`.paper_table`: Sushmit et al. (2019) Tables I/II reproduced on n x n crops.
* :mod:`.figure`: visual comparison at a matched bit rate, with error maps.
"""

from .bdrate import bd_psnr, bd_rate
from .evaluate import evaluate

__all__ = ["bd_psnr", "bd_rate", "evaluate"]
