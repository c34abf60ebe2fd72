#!/usr/bin/env bash
# The GPU measurements of tools/benchmarks/README.md in one command, each
# step under its own time limit, so that one slow or failing step does not
# cost the others. Run from the repository root:
#
#   bash tools/benchmarks/gpu_suite.sh [OUT_DIR]     # default work_dirs/gpu_suite
#
# Logs: OUT_DIR/env.log (GPU and package versions) and one log per step.
# Step limits (seconds) can be changed with THROUGHPUT_S, TESTS_S,
# OVERHEAD_S, RECALL_S and INSTALL_S; CONFIG (default configs/osdpm_rsicd.py), BATCH
# (default 128) and PRECISIONS (default "fp32 tf32 fp16 bf16"; the last one
# is profiled) choose the throughput run; OVERHEAD_ARGS (default
# "--iters 33 --reps 3") is passed to framework_overhead.py. Needs no weights: the
# throughput run uses the config's architecture with random weights.
#
# The machine image's own torch, torchvision, transformers and numpy are
# used: when `import rsitr_mm` fails, the first step installs this clone
# (`pip install -e .`) under constraints that hold every package the image
# has at its version, so pip adds only what is missing (mmengine, mmcv-lite,
# mmpretrain, nltk, open_clip_torch ...) and stops with an error when an
# image package is outside setup.py's ranges. Without network, WHEELS=DIR
# names a folder made by tools/benchmarks/carry_wheels.py; pip then reads
# only that folder.
set -u
OUT=${1:-work_dirs/gpu_suite}
PY=${PYTHON:-python}
CONFIG=${CONFIG:-configs/osdpm_rsicd.py}
BATCH=${BATCH:-128}
PRECISIONS=${PRECISIONS:-fp32 tf32 fp16 bf16}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
export TRANSFORMERS_OFFLINE=${TRANSFORMERS_OFFLINE:-1}

step() {
  local name=$1 limit=$2 start rc
  shift 2
  start=$(date +%s)
  echo "== $name (limit ${limit} s): $*" | tee -a "$OUT/$name.log"
  timeout "$limit" "$@" >>"$OUT/$name.log" 2>&1
  rc=$?
  echo "== $name: exit $rc after $(($(date +%s) - start)) s" |
    tee -a "$OUT/$name.log"
}

# the image's packages, kept at their versions
# (not pip/setuptools/wheel: setup.py may need setuptools < 81)
$PY -m pip freeze | grep -E '^[A-Za-z0-9][A-Za-z0-9._-]*==' |
  grep -viE '^(pip|setuptools|wheel)==' >"$OUT/image-freeze.txt"
if ! $PY -c 'import rsitr_mm, pytest' >/dev/null 2>&1; then
  step install "${INSTALL_S:-600}" $PY -m pip install \
    ${WHEELS:+--no-index --find-links "$WHEELS"} \
    -c "$OUT/image-freeze.txt" -e . pytest
fi

{
  nvidia-smi
  $PY -c 'import torch, transformers, mmengine, mmpretrain, numpy
print("torch", torch.__version__, "cuda", torch.version.cuda,
      torch.cuda.get_device_name(), "| transformers", transformers.__version__,
      "| mmengine", mmengine.__version__, "| mmpretrain",
      mmpretrain.__version__, "| numpy", numpy.__version__)'
} >"$OUT/env.log" 2>&1
tail -n 1 "$OUT/env.log"

# training throughput, runner vs plain loop, MFU, and a profile of bf16
step throughput "${THROUGHPUT_S:-210}" $PY tools/benchmarks/train_throughput.py \
  "$CONFIG" --random-init --device cuda --precisions $PRECISIONS \
  --batch-size "$BATCH" --iters 12 --warmup 3 --reps 2 --mfu --profile
# the tests marked cuda (the files that hold them)
step cuda_tests "${TESTS_S:-150}" $PY -m pytest -m cuda -q -p no:cacheprovider \
  tests/test_cuda_amp.py tests/test_evaluation/test_retrieval_recall.py \
  tests/test_apis/test_search.py
# Runner vs plain loop on the demo model, AMP, wall clock
step overhead "${OVERHEAD_S:-60}" $PY tools/benchmarks/framework_overhead.py \
  --device cuda --amp --clock wall ${OVERHEAD_ARGS:---iters 33 --reps 3}
# retrieval_recall and the evaluation pass with the matrix on the GPU
step recall "${RECALL_S:-60}" bash -c \
  "$PY tools/benchmarks/recall_speed.py --device cuda && \
   $PY tools/benchmarks/evaluation.py --device cuda"
