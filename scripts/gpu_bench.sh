#!/usr/bin/env bash
# The GPU figures of issue 12, in one prepared call (see docs/training.md, "Throughput"):
# training crops/s of the two small codecs (64x64, 8 iterations) and the full Toderici (32x32,
# 16 iterations) in bf16 with every speed option, one eager baseline with the launch- vs
# compute-bound check, and coding images/s at 1024x1024 q8 (batched and single).
#
#   scripts/gpu_bench.sh OUTDIR [SECONDS]      # SECONDS: whole budget (default 330)
#
# Each step has its own timeout and writes OUTDIR/<step>.json and .log as it ends, so a step
# that overruns costs only itself. Wheels in .whl/ and data in .gpu/data are used as by
# scripts/gpu_round.sh.
set -uo pipefail
out=${1:?usage: scripts/gpu_bench.sh OUTDIR [SECONDS]}
budget=${2:-330}
start=$(date +%s)
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
mkdir -p "$out"
if compgen -G ".whl/*.whl" > /dev/null && [[ ! -d /tmp/site ]]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
fi
[[ -d /tmp/site ]] && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
data=${CODECZOO_DATA:-$PWD/.gpu/data}
export CODECZOO_DATA=$data
nvidia-smi -L > "$out/gpu.txt" 2>&1
"$PY" -c "import torch, numpy, lightning; print(torch.__version__, torch.version.cuda, numpy.__version__, lightning.__version__)" >> "$out/gpu.txt" 2>&1

step() {  # step NAME SECONDS command...
  local name=$1 limit=$2; shift 2
  local left=$(( budget - ($(date +%s) - start) ))
  (( limit > left )) && limit=$left
  if (( limit < 20 )); then echo "$name: skipped (budget spent)" >> "$out/steps.txt"; return; fi
  local t0=$(date +%s)
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  echo "$name: exit $? after $(( $(date +%s) - t0 )) s (limit $limit s)" >> "$out/steps.txt"
}

TT="$PY benchmarks/train_throughput.py --accelerator gpu --precision bf16-mixed --data-root $data --limit-images 32"
FAST="--compile default --channels-last --fused-adam --crops-on-device --num-workers 0"
step train_small 150 $TT --recipes 'recipes/*/cxr-64-gpu.yaml' --batch-size 256 --warmup 8 --steps 40 \
  --fuse-gates equal $FAST --no-bound-check --profile --sync-debug --json "$out/train_small.json"
step train_toderici 120 $TT --recipes recipes/toderici2017-lstm-oneshot/cxr-32.yaml --batch-size 512 \
  --warmup 8 --steps 30 --fuse-gates equal $FAST --no-bound-check --profile --json "$out/train_toderici.json"
step train_eager 60 $TT --recipes recipes/sushmit2019-rnnconv/cxr-64-gpu.yaml --batch-size 256 --warmup 3 \
  --steps 15 --compile none --no-channels-last --fuse-gates none --no-fused-adam --crops-on-device \
  --json "$out/train_eager.json"
SP="$PY benchmarks/speed.py --device cuda --size 1024x1024 --qualities 8 --codecs sushmit2019-rnnconv,toderici2017-lstm-oneshot-small"
step speed_batch32 90 $SP --batch 32 --json "$out/speed_batch32.json"
step speed_single 40 $SP --json "$out/speed_single.json"
echo "total $(( $(date +%s) - start )) s" >> "$out/steps.txt"
cat "$out/steps.txt"
