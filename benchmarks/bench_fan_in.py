"""Fan-in: one 1-element float32 variable x used by N functions, y_i = sin(x) * k_i, summed
by a chain of N - 1 additions into one output s. Times the backward pass alone (the graph
is built and freed outside the timing) for N = 1,000 to 10,000, against PyTorch in the
same run, and prints the time per N: constant per-N cost means linear-time backward.

Each of the N branches is three functions (sin, multiply by a constant, add), so the graph
has about 3N functions and x receives N gradient contributions. x.grad is checked against
the analytic value cos(x) * sum(k_i).

    python benchmarks/bench_fan_in.py
"""
import harness  # noqa: F401  (sets the thread limits first)

import gc  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import zerograd  # noqa: E402
import zerograd.functions as F  # noqa: E402

SIZES = (1_000, 2_000, 5_000, 10_000)
REPEATS = 11
X0 = 0.5
FUNCS_PER_N = 3


def constants(n: int) -> list:
    # 1, 1.25, 1.5, 1.75, ...: exact in float32, so only the sums round
    return [1.0 + 0.25 * (i % 4) for i in range(n)]


def analytic_grad(n: int) -> float:
    return math.cos(float(np.float32(X0))) * sum(constants(n))


def zerograd_graph(n: int):
    x = zerograd.Variable(np.array([X0], dtype=np.float32))
    ks = constants(n)
    s = F.sin(x) * ks[0]
    for k in ks[1:]:
        s = s + F.sin(x) * k
    return x, s


def torch_graph(torch, n: int):
    x = torch.tensor([X0], dtype=torch.float32, requires_grad=True)
    ks = constants(n)
    s = torch.sin(x) * ks[0]
    for k in ks[1:]:
        s = s + torch.sin(x) * k
    return x, s


class GCTimer:
    """Seconds spent in the cyclic garbage collector, through ``gc.callbacks``."""

    def __init__(self) -> None:
        self.total = 0.0
        self._start = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == 'start':
            self._start = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._start


GC_TIMER = GCTimer()


def time_backward(build, n, backward, grad_of) -> tuple:
    """Build the graph of size n and settle the cyclic GC (untimed), time the backward, free the
    graph (untimed). Returns (seconds, seconds of it in the cyclic GC, x.grad)."""
    x, s = build(n)
    gc.collect()  # the build's pending GC work is not charged to the backward
    gc0 = GC_TIMER.total
    start = time.perf_counter()
    backward(s)
    elapsed = time.perf_counter() - start
    in_gc = GC_TIMER.total - gc0
    grad = grad_of(x)
    del x, s
    return elapsed, in_gc, grad


def main():
    start = time.perf_counter()
    torch = harness.import_torch()
    print(harness.machine())
    print(f'load average at start: {os.getloadavg()[0]:.2f} (2 cores; above ~0.3, another '
          f'process shares the CPUs and the timings are noisier)')
    sides = {'zerograd': (zerograd_graph, lambda s: s.backward(),
                          lambda x: float(x.grad.data[0]))}
    if torch is not None:
        sides['torch'] = (lambda n: torch_graph(torch, n), lambda s: s.backward(),
                          lambda x: float(x.grad[0]))
    times = {n: {name: [] for name in sides} for n in SIZES}
    gc_times = {n: {name: [] for name in sides} for n in SIZES}
    grads = {}  # (side, n) -> x.grad
    gc.callbacks.append(GC_TIMER)
    try:
        for build, backward, grad_of in sides.values():  # warm-up, untimed
            time_backward(build, SIZES[0], backward, grad_of)
        # rounds over every N, alternating the sides, so that drift hits all alike
        for _ in range(REPEATS):
            for n in SIZES:
                for name, (build, backward, grad_of) in sides.items():
                    elapsed, in_gc, grad = time_backward(build, n, backward, grad_of)
                    times[n][name].append(elapsed)
                    gc_times[n][name].append(in_gc)
                    grads[(name, n)] = grad
    finally:
        gc.callbacks.remove(GC_TIMER)

    for n in SIZES:
        harness.report(f'fan-in N = {n:,} ({FUNCS_PER_N * n:,} functions), backward alone, '
                       f'per N (median of {REPEATS})', times[n], scale=n / 1e6, unit='us')

    names = list(sides)
    print(f'## summary: backward time per N, microseconds (per function: divide by '
          f'{FUNCS_PER_N}); constant across N means linear time')
    print('  ' + f'{"N":>8s}' + ''.join(f'{name + " us/N":>16s}{"of it GC":>10s}'
                                          f'{name + " ms":>14s}' for name in names)
          + ('   ratio zerograd/torch' if 'torch' in names else ''))
    for n in SIZES:
        row = ''
        for name in names:
            median = statistics.median(times[n][name])
            in_gc = statistics.median(gc_times[n][name])
            row += f'{median / n * 1e6:16.2f}{in_gc / n * 1e6:10.2f}{median * 1e3:14.2f}'
        if 'torch' in names:
            row += (f'   {statistics.median(times[n]["zerograd"]) / statistics.median(times[n]["torch"]):.2f}x')
        print(f'  {n:8,d}' + row)
    for name in names:
        per_n = [statistics.median(times[n][name]) / n for n in SIZES]
        print(f'  {name}: per-N cost at N = {SIZES[-1]:,} is {per_n[-1] / per_n[0]:.2f}x '
              f'that at N = {SIZES[0]:,} (1.00x = perfectly linear; '
              f'{SIZES[-1] // SIZES[0]}x = quadratic)')

    print('## x.grad against the analytic value cos(x) * sum(k_i)')
    for (name, n), grad in sorted(grads.items(), key=lambda item: (item[0][1], item[0][0])):
        exact = analytic_grad(n)
        rel = abs(grad - exact) / abs(exact)
        print(f'  {name:9s} N = {n:6,d}: x.grad {grad:.6f}  analytic {exact:.6f}  '
              f'relative error {rel:.1e}  {"OK" if rel < 1e-4 else "MISMATCH"}')

    print(f'(total {time.perf_counter() - start:.0f} s; load average at end: '
          f'{os.getloadavg()[0]:.2f})')


if __name__ == '__main__':
    main()
