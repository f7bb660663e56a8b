"""The benchmarks as a package: ``python -m benchmarks`` (all workloads against PyTorch,
see ``benchmarks/run.py``) and ``python -m benchmarks.scaling``.

The scripts in this folder also run on their own (``python benchmarks/bench_mlp.py``) and
do ``import harness``; putting this folder on ``sys.path`` lets the same lines work when
they are imported as ``benchmarks.bench_mlp``. ``harness`` is imported first so that its
thread limits (2 threads) are set before NumPy or torch load.
"""
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import harness  # noqa: E402,F401  (sets OMP/OPENBLAS/MKL_NUM_THREADS=2 before NumPy)
