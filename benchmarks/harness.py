"""Shared setup for the benchmarks: 2 threads on each side, alternating timed runs.

Import this module before NumPy or torch in a benchmark script, so the thread limits
apply to both libraries' BLAS.
"""
from __future__ import annotations

import os

for _name in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_name, '2')

import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Callable  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))


def import_torch():
    """torch with 2 threads, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(2)
    return torch


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(sides: dict[str, Callable[[], None]], repeats: int = 15,
            warmup: int = 2) -> dict[str, list[float]]:
    """Run each side ``repeats`` times, alternating sides so that machine noise hits both
    alike. Returns the seconds of every run, by side."""
    for fn in sides.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in sides}
    for _ in range(repeats):
        for name, fn in sides.items():
            times[name].append(timed(fn))
    return times


def p10(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * 0.1) - 0)]


def report(title: str, times: dict[str, list[float]], scale: float = 1.0,
           unit: str = 's', baseline: str = 'torch') -> None:
    """Print median and 10th percentile per side (times divided by ``scale``), and the
    ratio of each side's median to the baseline's."""
    print(f'## {title}')
    base = statistics.median(times[baseline]) if baseline in times else None
    for name, values in times.items():
        median = statistics.median(values) / scale
        low = p10(values) / scale
        ratio = f'  ratio {statistics.median(values) / base:.2f}x {baseline}' if base else ''
        print(f'  {name:10s} median {median:10.3f} {unit}   p10 {low:10.3f} {unit}{ratio}')


def machine() -> str:
    import platform
    import numpy
    return (f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores, '
            f'Python {platform.python_version()}, NumPy {numpy.__version__}')
