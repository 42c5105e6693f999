#!/usr/bin/env bash
# Builds .gpu/ (git-ignored): what scripts/gpu_checks.sh needs on a bare device machine, within the
# device tool's 64 MiB carry limit (about 49 MiB here):
#   whl/           captum (the IG baseline; the device image has everything else smat imports)
#   models/...     all-MiniLM-L6-v2 with its weights in float16 (the float32 file is 87 MiB, over the
#                  limit); gpu_checks.sh restores float32 there, so the weights differ from the real
#                  ones by float16 rounding only, which changes no timing
#   data/sst/SST-2 the SST-2 tsv files (the IG benchmark's inputs)
# Usage: SMAT_DATA_DIR=../shared/data bash scripts/gpu_assets.sh
set -eu
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${SMAT_DATA_DIR:-../shared/data}
rm -rf .gpu
mkdir -p .gpu/whl .gpu/models/minilm .gpu/data/sst
"$PY" -m pip download -q --no-deps --only-binary=:all: -d .gpu/whl captum==0.9.0
cp -r "$DATA/sst/SST-2" .gpu/data/sst/SST-2
chmod -R u+w .gpu/data
"$PY" - <<'PY'
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from smat.models import hub

source, target = hub.resolve("minilm"), Path(".gpu/models/minilm")
weights = load_file(source / "model.safetensors")
save_file({k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in weights.items()},
          target / "model.fp16.safetensors")
for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
    shutil.copy(source / name, target / name)
PY
du -sh .gpu
