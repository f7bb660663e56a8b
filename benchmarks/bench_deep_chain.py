"""A 10,000-op chain on a 1,000-element float32 array, cycling sin(y), y * 1.0001, y + 0.1
(as bench_overhead.py), against PyTorch in the same run:

(a) time of forward + backward (+ freeing the graph), with the forward/backward split;
(b) peak memory of forward + backward, each side in a fresh subprocess: the peak RSS
    (``ru_maxrss``) above the RSS just before the workload;
(c) peak memory of the same chain under ``no_grad()``: it must stay flat (a few arrays).

With grad, the graph keeps only what backward reads (``Function.backward_reads``): sin's
input, not the outputs of sin and of the multiply (issue 16), as torch saves only sin's
input. The zerograd child also counts the GC-tracked objects the graph holds per op.

Memory is measured after a warm-up on a 3-op chain (steady state), and once more for the
first forward + backward in a process, which for torch includes starting its autograd
engine. Time is measured twice: with the default cyclic GC, and after ``gc.freeze()`` of
every object alive before the timed runs (torch's ~150,000 objects make each full
collection that zerograd's allocations trigger cost ~70-100 ms in this shared process).

The zerograd child runs with ``gc.disable()`` and checks, through a weak reference to an
intermediate Variable, that ``del y`` frees the graph by reference counting alone.

    python benchmarks/bench_deep_chain.py

On Linux a child's ``ru_maxrss`` starts at its parent's peak RSS when it was spawned
(exec records the old address space's high-water mark, even when the parent has freed
that memory since), so a parent that had already imported torch or run the timings would
hide the children's peaks. ``run_child`` therefore starts each child through a launcher:
a bare ``python -c`` that spawns the child and waits. The launcher's own address space
is small (~13 MB), and that is what the child inherits, whatever the parent holds
(``python -m benchmarks`` runs these children after importing torch). Memory is still
measured first here. As a cross-check the child also reads ``VmHWM`` from
/proc/self/status after resetting it through /proc/self/clear_refs.

    python benchmarks/bench_deep_chain.py --child zerograd|torch grad|nograd|coldgrad [N_OPS]

runs one memory child and prints its JSON result.
"""
import harness  # noqa: F401  (sets the thread limits first; imports neither NumPy nor torch)

import gc  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import weakref  # noqa: E402

N_OPS = 10_000 // 3 * 3  # 9,999: whole cycles of the three ops
SIZE = 1_000
MEMORY_REPEATS = 2  # fresh subprocesses per (side, mode)
TIME_REPEATS = 9
MB = 1e6
PAGE = os.sysconf('SC_PAGE_SIZE')
# torch is compared only when installed (found without importing it here)
SIDES = ('zerograd', 'torch') if importlib.util.find_spec('torch') else ('zerograd',)


# -----------------------------------------------------------------------------
# the workloads
# -----------------------------------------------------------------------------
def make_input(np):
    return np.linspace(-1.0, 1.0, SIZE, dtype=np.float32)


def zerograd_forward(x, keep_at=None):
    """The chain; with ``keep_at=i``, also a weak reference to the i-th intermediate."""
    import zerograd.functions as F
    y = x
    ref = None
    for i in range(N_OPS // 3):
        y = F.sin(y)
        y = y * 1.0001
        y = y + 0.1
        if i == keep_at:
            ref = weakref.ref(y)
    return y, ref


def torch_forward(torch, x):
    y = x
    for _ in range(N_OPS // 3):
        y = torch.sin(y)
        y = y * 1.0001
        y = y + 0.1
    return y


# -----------------------------------------------------------------------------
# (b), (c): memory, in a child process
# -----------------------------------------------------------------------------
def current_rss() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * PAGE


def max_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def vm_hwm() -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) * 1024
    return -1


def reset_hwm() -> bool:
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # reset the peak RSS (VmHWM) to the current RSS
        return True
    except OSError:
        return False


def child(side: str, mode: str) -> None:
    gc.disable()
    import numpy as np
    result = {'side': side, 'mode': mode}
    if side == 'zerograd':
        import zerograd
        x = zerograd.Variable(make_input(np))
        # warm up (first-call costs, caches) on a short chain, then measure
        for _ in range(0 if mode == 'coldgrad' else 3):
            with zerograd.no_grad():
                y = zerograd.functions.sin(x) * 1.0001 + 0.1
            y = zerograd.functions.sin(x) * 1.0001 + 0.1
            y.backward()
            del y
        x.cleargrad()
    else:
        torch = harness.import_torch()
        x = torch.from_numpy(make_input(np)).requires_grad_()
        for _ in range(0 if mode == 'coldgrad' else 3):  # the first backward starts
            # the autograd engine: tens of MB, once per process
            with torch.no_grad():
                y = torch.sin(x) * 1.0001 + 0.1
            y = torch.sin(x) * 1.0001 + 0.1
            y.backward(torch.ones_like(y))
            del y
        x.grad = None
    gc.collect()

    rss0 = current_rss()
    maxrss0 = max_rss()
    hwm_ok = reset_hwm()
    if side == 'zerograd':
        if mode in ('grad', 'coldgrad'):
            tracked = len(gc.get_objects())  # exact: the cyclic GC is disabled here
            y, ref = zerograd_forward(x, keep_at=N_OPS // 6)
            result['tracked_per_op'] = (len(gc.get_objects()) - tracked) / N_OPS
            result['dtype'] = str(y.dtype)
            y.backward()
            result['mid_alive_before_del'] = ref() is not None
            del y
            result['mid_freed_by_refcount'] = ref() is None  # gc is disabled
            result['grad_ok'] = x.grad is not None and x.grad.shape == x.shape
        else:
            with zerograd.no_grad():
                y, _ = zerograd_forward(x)
            result['dtype'] = str(y.dtype)
            del y
    else:
        if mode in ('grad', 'coldgrad'):
            y = torch_forward(torch, x)
            result['dtype'] = str(y.dtype)
            y.backward(torch.ones_like(y))
            del y
            result['grad_ok'] = x.grad is not None and x.grad.shape == x.shape
        else:
            with torch.no_grad():
                y = torch_forward(torch, x)
            result['dtype'] = str(y.dtype)
            del y
    maxrss1 = max_rss()
    hwm1 = vm_hwm()
    result.update(
        rss_before=rss0, maxrss_before=maxrss0, maxrss_after=maxrss1,
        peak_increase=maxrss1 - rss0,
        # an earlier peak (imports, or the parent's RSS) above the workload's would hide it
        peak_hidden=maxrss1 == maxrss0,
        hwm_increase=(hwm1 - rss0) if hwm_ok else None,
        rss_after_free_increase=current_rss() - rss0,
        # objects that only the cyclic GC could free (0: the graph had no cycles)
        unreachable_cycles=gc.collect(),
    )
    print(json.dumps(result))


# Spawns its arguments as a process and waits: the child's ru_maxrss then starts at this
# small launcher's peak RSS, not at the peak of the process that started the launcher.
LAUNCHER = 'import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)'


def run_child(side: str, mode: str, n_ops: int | None = None) -> dict:
    """One memory measurement in a fresh process (``child``), started through LAUNCHER;
    its JSON result. n_ops: the chain's length (default N_OPS)."""
    proc = subprocess.run([sys.executable, '-c', LAUNCHER, sys.executable,
                           os.path.abspath(__file__), '--child', side, mode,
                           *([str(n_ops)] if n_ops else [])],
                          capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f'bench_deep_chain.py --child {side} {mode} failed '
                           f'({proc.returncode}):\n{proc.stderr}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_memory() -> dict:
    runs = {}
    for _ in range(MEMORY_REPEATS):
        for mode in ('grad', 'nograd', 'coldgrad'):
            for side in SIDES:  # alternate the sides
                runs.setdefault((side, mode), []).append(run_child(side, mode))
    return runs


def report_memory(runs: dict) -> None:
    def med(key, side, mode):
        values = [r[key] for r in runs[(side, mode)] if r[key] is not None]
        return statistics.median(values) if values else float('nan')

    activations = N_OPS * SIZE * 4  # every intermediate float32 array, if all were kept
    print(f'## {N_OPS}-op chain on {SIZE} float32, peak RSS increase above the RSS before '
          f'the workload (ru_maxrss; median of {MEMORY_REPEATS} fresh processes)')
    print(f'  (all {N_OPS} intermediate arrays together: {activations / MB:.1f} MB)')
    for mode, label in (('grad', 'forward + backward (after a warm-up on a 3-op chain)'),
                        ('nograd', 'no_grad forward (after the warm-up)'),
                        ('coldgrad', ('forward + backward, the first in the process '
                                      '(one-time start-up costs included)'))):
        print(f'  {label}:')
        for side in ('zerograd', 'torch'):
            if (side, mode) not in runs:
                continue
            peak = med('peak_increase', side, mode)
            hwm = med('hwm_increase', side, mode)
            freed = med('rss_after_free_increase', side, mode)
            all_peaks = ', '.join(f"{r['peak_increase'] / MB:.2f}" for r in runs[(side, mode)])
            hidden = any(r['peak_hidden'] for r in runs[(side, mode)])
            ratio = ''
            if side == 'zerograd' and ('torch', mode) in runs:
                t = med('peak_increase', 'torch', mode)
                ratio = f'  ratio {peak / t:.2f}x torch' if t > 0 else ''
            if hidden:  # the workload never rose above the pre-workload high-water mark
                bound = max(0, med('maxrss_before', side, mode) - med('rss_before', side, mode))
                shown = f'<= {bound / MB:.2f} MB (ru_maxrss did not rise; raw {peak / MB:+.2f})'
            else:
                shown = f'{peak / MB:+.2f} MB [runs: {all_peaks}]'
            print(f'    {side:9s} peak {shown}  VmHWM cross-check +{hwm / MB:.2f} MB  '
                  f'RSS after free +{freed / MB:.2f} MB{ratio}')
    for side in ('zerograd', 'torch'):
        dtypes = {r['dtype'] for mode in ('grad', 'nograd') for r in runs.get((side, mode), [])}
        print(f'  {side} output dtype: {", ".join(sorted(dtypes))}')
    zg = runs.get(('zerograd', 'grad'), [])
    if zg:
        freed = all(r['mid_freed_by_refcount'] for r in zg)
        alive = all(r['mid_alive_before_del'] for r in zg)
        cycles = [r['unreachable_cycles'] for r in zg]
        per_op = statistics.median(r['tracked_per_op'] for r in zg)
        print(f'  zerograd: {per_op:.2f} GC-tracked objects per op held by the graph '
              '(Function, output Variable, inputs and outputs lists, weakref; the shape '
              'tuples the Functions keep, until a collection untracks them)')
        print(f'  zerograd, gc disabled: intermediate Variable alive after backward: {alive}; '
              f'freed after `del y` by reference counting alone: {freed}; '
              f'gc.collect() found afterwards: {cycles} unreachable objects')


# -----------------------------------------------------------------------------
# (a): time, in this process
# -----------------------------------------------------------------------------
class GCTimer:
    """Seconds spent in the cyclic garbage collector, through ``gc.callbacks``."""

    def __init__(self) -> None:
        self.total = 0.0
        self.full = 0  # generation-2 collections
        self._start = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == 'start':
            self._start = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._start
            self.full += info['generation'] == 2


def measure_time(freeze: bool) -> None:
    """Time both sides, alternating. With ``freeze``, every object alive before the timed
    runs (the modules of NumPy, zerograd and torch) is moved out of the cyclic GC's reach
    with ``gc.freeze()``, as if each side ran alone in a small process."""
    import numpy as np
    import zerograd

    gc_timer = GCTimer()
    gc.callbacks.append(gc_timer)
    x_zg = zerograd.Variable(make_input(np))
    phases = {}

    def record(side, t0, t1, t2, t3, gc0):
        for name, value in (('forward', t1 - t0), ('backward', t2 - t1), ('free', t3 - t2),
                            ('in cyclic GC', gc_timer.total - gc0)):
            phases.setdefault(f'{side} {name}', []).append(value)

    def zerograd_side():
        x_zg.cleargrad()
        gc0 = gc_timer.total
        t0 = time.perf_counter()
        y, _ = zerograd_forward(x_zg)
        t1 = time.perf_counter()
        y.backward()
        t2 = time.perf_counter()
        del y  # the graph is freed here
        record('zerograd', t0, t1, t2, time.perf_counter(), gc0)

    sides = {'zerograd': zerograd_side}
    torch = harness.import_torch()
    if torch is not None:
        x_t = torch.from_numpy(make_input(np)).requires_grad_()

        def torch_side():
            x_t.grad = None
            gc0 = gc_timer.total
            t0 = time.perf_counter()
            y = torch_forward(torch, x_t)
            t1 = time.perf_counter()
            y.backward(torch.ones_like(y))
            t2 = time.perf_counter()
            del y
            record('torch', t0, t1, t2, time.perf_counter(), gc0)
        sides['torch'] = torch_side

        if not freeze:  # the two sides compute the same gradient
            zerograd_side()
            torch_side()
            same = np.allclose(x_zg.grad.data, x_t.grad.numpy(), rtol=1e-3, atol=1e-6)
            print(f'  zerograd x.grad matches torch x.grad: {same} '
                  f'(max |x.grad| {float(np.abs(x_zg.grad.data).max()):.3g})')

    if freeze:
        gc.collect()
        gc.freeze()
    tracked = len(gc.get_objects())
    full0 = gc_timer.full
    phases.clear()
    try:
        times = harness.compare(sides, repeats=TIME_REPEATS, warmup=1)
    finally:
        gc.callbacks.remove(gc_timer)
        if freeze:
            gc.unfreeze()
    for name in phases:
        phases[name] = phases[name][1:]  # drop compare's warm-up run
    label = ('after gc.freeze() of the imported modules' if freeze
             else f'default GC, {tracked} GC-tracked objects in the process')
    harness.report(f'{N_OPS}-op chain on {SIZE} float32, forward + backward + free, '
                   f'{label} (median of {TIME_REPEATS}), milliseconds',
                   times, scale=1e-3, unit='ms')
    print('  per op: ' + ', '.join(f'{name} {statistics.median(v) / N_OPS * 1e6:.2f} us'
                                    for name, v in times.items()))
    print(f'  the split (medians, ms; {gc_timer.full - full0} full collections in the '
          f'{TIME_REPEATS + 1} runs per side):')
    for name, values in phases.items():
        print(f'    {name:24s} median {statistics.median(values) * 1e3:8.2f} ms   '
              f'p10 {harness.p10(values) * 1e3:8.2f} ms   max {max(values) * 1e3:8.2f} ms')
    if torch is not None:
        for phase in ('forward', 'backward'):
            z = statistics.median(phases[f'zerograd {phase}'])
            t = statistics.median(phases[f'torch {phase}'])
            print(f'    {phase} ratio zerograd / torch: {z / t:.2f}x')


def main() -> None:
    start = time.perf_counter()
    print(f'load average at start: {os.getloadavg()[0]:.2f} (2 cores; above ~0.3, another '
          f'process shares the CPUs and the timings are noisier)')
    report_memory(measure_memory())  # first, while this process is small (see the docstring)
    print(f'(memory: {time.perf_counter() - start:.0f} s)')
    print(harness.machine())
    measure_time(freeze=False)
    measure_time(freeze=True)
    print(f'(total {time.perf_counter() - start:.0f} s; load average at end: '
          f'{os.getloadavg()[0]:.2f})')


if __name__ == '__main__':
    if len(sys.argv) in (4, 5) and sys.argv[1] == '--child':
        if len(sys.argv) == 5:
            N_OPS = int(sys.argv[4]) // 3 * 3
        child(sys.argv[2], sys.argv[3])
    else:
        main()
