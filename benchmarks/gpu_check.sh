#!/usr/bin/env bash
# The GPU check, in one command, from the repository root (about 3-5 minutes, at most 8):
#
#   bash benchmarks/gpu_check.sh [OUTDIR]
#
# 1. makes CuPy importable: uses the one installed, else installs the [gpu] extra's
#    cupy-cuda12x (no network? install it from a wheel first);
# 2. runs tests/test_gpu.py, whose 'cupy' half needs CuPy and a GPU (and fails here, not
#    skips, when either is missing);
# 3. times an MNIST-shaped MLP epoch and the CNN step on the GPU against the CPU, and
#    against PyTorch on the same GPU when its build has CUDA (benchmarks/bench_gpu.py).
# OUTDIR (default gpu-check) receives test-log.txt, bench.txt and bench.json.
set -euo pipefail

OUT="${1:-gpu-check}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT"
export ZEROGRAD_OFFLINE=1 PYTHONUNBUFFERED=1
start=$SECONDS

echo "== GPU and Python"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PYTHON" --version

echo "== CuPy"
if ! "$PYTHON" -c 'import cupy' 2>/dev/null; then
    "$PYTHON" -m pip install -q 'cupy-cuda12x>=13'
fi
"$PYTHON" -c 'from zerograd import cuda; ok, text = cuda.gpu_status(); print(text); raise SystemExit(0 if ok else 1)'
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "CUDA available:", torch.cuda.is_available())' \
    || echo "torch is not installed: no torch figures"

echo "== tests/test_gpu.py (on CuPy and on the strict stand-in)"
# -rs lists the skips: on a GPU machine none of the 'cupy' tests may be skipped.
"$PYTHON" -m pytest -q -rs -p no:cacheprovider tests/test_gpu.py 2>&1 | tee "$OUT/test-log.txt"
if grep -q 'the strict stand-in ran' "$OUT/test-log.txt"; then
    echo "error: GPU tests were skipped: CuPy or the GPU is not usable" >&2
    exit 1
fi
echo "tests done after $((SECONDS - start)) s"

echo "== benchmarks/bench_gpu.py"
"$PYTHON" benchmarks/bench_gpu.py --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.txt"
echo "== done in $((SECONDS - start)) s; results in $OUT/"
