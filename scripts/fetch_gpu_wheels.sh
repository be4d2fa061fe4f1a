#!/usr/bin/env bash
# Download the wheels a GPU machine needs for `scripts/gpu_round.sh` into .whl/ (ignored by git;
# name it in the device tool's `carry`). The target is CPython 3.12 on x86-64 Linux; only wheels
# are fetched, never their dependencies (each one is named here).
#
#   scripts/fetch_gpu_wheels.sh               # what this project's H200 image lacks (~1.5 MB)
#   scripts/fetch_gpu_wheels.sh --bare 2.11   # also compressai's import-time dependencies, for a
#                                             # machine with only torch 2.11, lightning,
#                                             # torchmetrics, numpy 2 and safetensors (~60 MB)
#
# Why two lists: `import compressai` (the models' base class) imports its datasets, transforms
# and zoo modules, which import scipy, pandas, torchvision (built for one torch version),
# torch-geometric, einops, pytorch-msssim, requests, psutil and xxhash. The H200 image has all of
# these but compressai, pytorch-msssim and LightningCLI's jsonargparse; carrying the rest would
# shadow the image's own builds and, with the 39 MB of training and validation images, overrun
# the 64 MiB a device call carries.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEST=.whl
mkdir -p "$DEST"

needed=(
  compressai==1.2.8            # model base class, registry, rANS coder (declares numpy<2; runs on numpy 2)
  pytorch-msssim==1.0.0        # imported by compressai.losses
  einops==0.8.2                # imported by compressai.layers
  jsonargparse==4.53.0         # LightningCLI (codeczoo fit)
  docstring-parser==0.18.0     # jsonargparse[signatures]: option help from docstrings
  typeshed-client==2.15.0      # jsonargparse[signatures]
)
bare=()
if [[ "${1:-}" == "--bare" ]]; then
  torch_minor=${2:?"--bare needs the target's torch version, e.g. 2.11"}
  tv_minor=$(( ${torch_minor#*.} + 15 ))   # torchvision 0.(N+15) pairs with torch 2.N
  bare=(
    "torchvision==0.${tv_minor}.*"  # must match the target's torch exactly
    scipy==1.17.1 pandas==3.0.6 python-dateutil==4.0.0 tzdata==2026.6
    torch-geometric==2.8.1 requests==2.34.2 urllib3==2.8.0 idna==3.20 certifi==2026.10.19.post1
    charset-normalizer==3.5.3 psutil==7.2.2 xxhash==4.1.0 pillow==13.0.0
  )
fi

for spec in "${needed[@]}" "${bare[@]}"; do
  spec=${spec%%#*}
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$DEST" "$spec"
done
du -sh "$DEST"
ls "$DEST"
