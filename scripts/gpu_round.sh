#!/usr/bin/env bash
# One GPU round in one command: train every shipped learned codec from its registry weights for
# the given minutes, export fp16 with history, evaluate on val, and write summary.json,
# summary.md and round.tar.gz into OUTDIR (see docs/training.md, "A GPU round").
#
#   scripts/gpu_round.sh MINUTES OUTDIR [codeczoo round options, e.g. --smoke]
#
# The budget starts here, before the wheels are installed. Wheels in .whl/ (from
# scripts/fetch_gpu_wheels.sh) are installed without dependencies into /tmp/site and put first on
# PYTHONPATH; the repository runs in place (python -m codeczoo, no install). The data root is
# CODECZOO_DATA, else .gpu/data (what the device call carries), else ../shared/data.
set -uo pipefail
started=$(date +%s.%N)
minutes=${1:?usage: scripts/gpu_round.sh MINUTES OUTDIR [options]}
out=${2:?usage: scripts/gpu_round.sh MINUTES OUTDIR [options]}
shift 2
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if compgen -G ".whl/*.whl" > /dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if [[ -z "${CODECZOO_DATA:-}" && -d .gpu/data/cxr ]]; then
  export CODECZOO_DATA=$PWD/.gpu/data
fi
exec "$PY" -m codeczoo round "$minutes" "$out" --started "$started" "$@"
