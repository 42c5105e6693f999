#!/usr/bin/env bash
# The GPU checks of issues 4 and 7 in one prepared run (steps within BUDGET=560 s, + setup, on one H100 / H200).
#
#   here, once:           SMAT_DATA_DIR=../shared/data bash scripts/gpu_assets.sh
#   on the device:        run(command="bash scripts/gpu_checks.sh", carry=[".gpu"], timeout_s=600)
#   dry run on a CPU:     QUICK=1 PY=.venv/bin/python BUDGET=900 bash scripts/gpu_checks.sh   (tiny shapes, ~3 min)
#
# Steps, most important first, each under its own time limit so that one slow compile cannot
# cost the others; each writes $OUT/<step>.md (the device tool returns up to 8 files); a step that could
# end past BUDGET seconds is skipped (the last ones first, by order). float32 runs
# set JAX_DEFAULT_MATMUL_PRECISION=highest: JAX would otherwise use TF32 on the GPU while PyTorch's
# float32 matmuls (the peers) do not.
#   1. meta_minilm_f32  SMaT meta step, MiniLM size, exact vs jvp, float32 (peer: torch.func 112 ms, 16.4 GiB)
#   2. meta_bf16        base size (the >= 30% MFU goal), then MiniLM size, bf16
#   3. meta_base_f32    base size, float32 (peer: 256 ms, 23.9 GiB)
#   4. meta_torch       the peer itself on this GPU: the same step in torch.func (meta_step_torch.py, tested
#                       equal to ours in tests/test_meta_step_torch_peer.py), MiniLM and base, float32
#   5. ig_minilm        IG, 50 steps, ours vs Captum LayerIntegratedGradients, MiniLM at 128 tokens (Captum on
#                       the H100: 108/s); then Kendall tau vs scipy
#   6. ig_base          the same at BERT-base shape, random weights (Captum on the H100: 18.7/s)
#   7. forward          encoder forward vs torch eager / sdpa, MiniLM and base, float32 and bf16
set -u -o pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-/tmp/smat-gpu-checks}
ASSETS=${ASSETS:-.gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false  # torch and jax share the GPU in steps 5-7

if [ -d "$ASSETS/whl" ] && ! "$PY" -c "import captum" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$ASSETS"/whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -d "$ASSETS/data" ]; then export SMAT_DATA_DIR="$PWD/$ASSETS/data"; fi
if [ -f "$ASSETS/models/minilm/model.fp16.safetensors" ]; then
  export SMAT_MODEL_DIR=/tmp/smat-models
  "$PY" - "$ASSETS/models/minilm" "$SMAT_MODEL_DIR/sentence-transformers/all-MiniLM-L6-v2" <<'PY' || exit 1
import shutil, sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

source, target = Path(sys.argv[1]), Path(sys.argv[2])
target.mkdir(parents=True, exist_ok=True)
weights = load_file(source / "model.fp16.safetensors")
save_file({k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in weights.items()},
          target / "model.safetensors")
for f in source.iterdir():
    if f.name != "model.fp16.safetensors":
        shutil.copy(f, target / f.name)
PY
fi

BUDGET=${BUDGET:-560}  # seconds for all steps: a step that could end past it is skipped, so the run ends in time
step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2
  shift 2
  if (( SECONDS + limit > BUDGET )); then
    echo "== $name: skipped (${SECONDS}s used, limit ${limit}s, budget ${BUDGET}s)" | tee "$OUT/$name.md"
    return
  fi
  echo "== $name ($(date -u +%H:%M:%S), limit ${limit}s): $*" | tee "$OUT/$name.md"
  local start=$SECONDS
  timeout --kill-after=5 "$limit" "$@" 2>&1 | grep --line-buffered -v -E "it/s\]|s/it\]" | tee -a "$OUT/$name.md"
  echo "== $name: rc ${PIPESTATUS[0]}, $((SECONDS - start)) s" | tee -a "$OUT/$name.md"
}

{
  date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
  "$PY" -c "import jax, torch; print('jax', jax.__version__, jax.devices()); print('torch', torch.__version__)"
} 2>&1 | tee "$OUT/environment.md"

if [ -n "${QUICK:-}" ]; then
  step meta_minilm_f32 120 env JAX_DEFAULT_MATMUL_PRECISION=highest "$PY" experiments/benchmarks/meta_step.py \
    --shapes tiny --dtypes float32 --repeats 2
  step meta_bf16 120 "$PY" experiments/benchmarks/meta_step.py --shapes tiny --dtypes bfloat16 --repeats 2
  step meta_torch 60 "$PY" experiments/benchmarks/meta_step_torch.py --shapes tiny --repeats 2
  step ig_minilm 180 "$PY" -m experiments.benchmarks.agreement --skip flow --batch 2 --seq 32 --steps 4 --repeats 1 \
    --instances 50 --tau-repeats 2
  step ig_base 120 "$PY" -m experiments.benchmarks.agreement --skip tau --skip flow --shape base --batch 2 --seq 32 --steps 4 \
    --repeats 1
  step forward 120 "$PY" experiments/benchmarks/encoder_forward.py --shapes minilm --repeats 1 --inner 1
else
  F32="env JAX_DEFAULT_MATMUL_PRECISION=highest"
  step meta_minilm_f32 120 $F32 "$PY" experiments/benchmarks/meta_step.py --shapes minilm --dtypes float32
  step meta_bf16 150 "$PY" experiments/benchmarks/meta_step.py --shapes base minilm --dtypes bfloat16
  step meta_base_f32 100 $F32 "$PY" experiments/benchmarks/meta_step.py --shapes base --dtypes float32
  step meta_torch 90 "$PY" experiments/benchmarks/meta_step_torch.py --shapes minilm base
  step ig_minilm 60 $F32 "$PY" -m experiments.benchmarks.agreement --skip flow --batch 16 --seq 128 --steps 50
  step ig_base 60 $F32 "$PY" -m experiments.benchmarks.agreement --skip tau --skip flow --shape base --batch 16 --seq 128 --steps 50
  step forward 40 "$PY" experiments/benchmarks/encoder_forward.py --shapes minilm base --dtypes float32 bfloat16
fi
ls -la "$OUT"
