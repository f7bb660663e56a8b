"""Every workload of issue 6, zerograd against PyTorch in one run, and one table.

    python -m benchmarks [--quick] [--out DIR] [--only SUBSTRING] [--gc-freeze]

Each workload runs both sides alternately (``harness.compare``: warm-up, then run by run
zerograd, torch, zerograd, ...), 2 threads each; the table shows the medians, the ratio
zerograd / torch and whether it meets the issue's target. Some rows are not times: the
CNN's minor page faults per step (target absolute: at most 1 MB of fresh pages, 256 pages
of 4 KiB, whatever torch takes) and the 10,000-op chain's peak memory (MB). ``--quick``:
tiny sizes and one or two repeats, to check that everything runs (CI); its timings mean
nothing.
``--out DIR``: also writes DIR/results.json and DIR/ratios.png (a bar chart of the ratios
with the targets).
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import statistics
import sys
import time

import harness  # noqa: F401  (thread limits before NumPy)


def cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info() -> list[str]:
    """The BLAS libraries loaded (threadpoolctl), else NumPy's build configuration."""
    try:
        import threadpoolctl
        return [f"{d.get('internal_api')} {d.get('version')} "
                f"({d.get('architecture', '?')}, {d.get('num_threads')} threads, "
                f"{os.path.basename(d.get('filepath', ''))})"
                for d in threadpoolctl.threadpool_info()]
    except ImportError:
        import numpy
        try:
            blas = numpy.show_config(mode='dicts')['Build Dependencies']['blas']
            return [f"{blas.get('name')} {blas.get('version')} (NumPy build)"]
        except Exception:  # noqa: BLE001  (older NumPy: no dicts mode)
            return ['unknown']


def machine_info(torch) -> dict:
    import numpy
    return {
        'date': datetime.datetime.now().isoformat(timespec='seconds'),
        'cpu': cpu_model(),
        'cores': os.cpu_count(),
        'python': platform.python_version(),
        'numpy': numpy.__version__,
        'blas': blas_info(),
        'torch': torch.__version__,
        'threads': {'torch': torch.get_num_threads(),
                    'OMP/OPENBLAS_NUM_THREADS': os.environ.get('OPENBLAS_NUM_THREADS')},
        'load_average': os.getloadavg(),
    }


def print_info(info: dict) -> None:
    print(f"date {info['date']}")
    print(f"CPU {info['cpu']} ({info['cores']} cores), load average "
          + ' '.join(f'{x:.2f}' for x in info['load_average']))
    print(f"Python {info['python']}, NumPy {info['numpy']}, torch {info['torch']} "
          f"({info['threads']['torch']} threads)")
    for line in info['blas']:
        print(f'  BLAS: {line}')


def fmt(value: float) -> str:
    return f'{value:.3g}' if value < 1000 else f'{value:.0f}'


def target_text(r: dict) -> str:
    """'<= 0.7' for a ratio target, '<= 256 faults/step' for an absolute one."""
    if r.get('target_abs') is not None:
        return f"<= {r['target_abs']:g} {r['unit']}"
    return f"<= {r['target']:g}"


def table(results: list[dict]) -> str:
    header = ('workload', 'unit', 'zerograd', 'torch', 'ratio', 'target', 'met?')
    rows = [(r['name'], r['unit'], fmt(r['zerograd']), fmt(r['torch']), f"{r['ratio']:.2f}x",
             target_text(r), 'yes' if r['met'] else 'NO') for r in results]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ['| ' + ' | '.join(h.ljust(w) for h, w in zip(header, widths)) + ' |',
             '| ' + ' | '.join('-' * w for w in widths) + ' |']
    lines += ['| ' + ' | '.join(c.ljust(w) for c, w in zip(row, widths)) + ' |' for row in rows]
    return '\n'.join(lines)


def plot_ratios(results: list[dict], path: str, title: str) -> None:
    """A bar per workload (zerograd / torch), a short red line at its target, 1.0 dashed.
    An absolute target is drawn dotted, where it falls as a ratio: target / torch's value."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(10, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = range(len(results))
    colors = ['tab:green' if r['met'] else 'tab:orange' for r in results]
    ax.bar(xs, [r['ratio'] for r in results], color=colors, width=0.6)
    labelled = set()
    for x, r in zip(xs, results):
        absolute = r.get('target_abs') is not None
        if absolute and not r['torch'] > 0:
            continue  # no ratio to place it at
        label = 'absolute target / torch' if absolute else 'target'
        ax.hlines(r['target_abs'] / r['torch'] if absolute else r['target'], x - 0.4, x + 0.4,
                  colors='red', linewidth=2, linestyles='dotted' if absolute else 'solid',
                  label=None if label in labelled else label)
        labelled.add(label)
        ax.text(x, r['ratio'], f"{r['ratio']:.2f}", ha='center', va='bottom', fontsize=8)
    ax.axhline(1.0, color='gray', linestyle='--', linewidth=1, label='parity with PyTorch')
    ax.set_xticks(list(xs))
    ax.set_xticklabels([r['name'] for r in results], rotation=25, ha='right', fontsize=7)
    ax.set_ylabel('zerograd / PyTorch (time, faults, MB; lower is better)', fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc='upper left', bbox_to_anchor=(1.0, 1.0))  # off the bars
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def result_row(w, times: dict, scale: float, repeats: int) -> dict:
    """A workload's row of the table and results.json: the medians of its values (by side,
    divided by scale), the ratio zerograd / torch, and whether the target is met: the
    ratio's target, or for a workload with ``target_abs`` zerograd's value itself."""
    z = statistics.median(times['zerograd']) / scale
    t = statistics.median(times['torch']) / scale
    ratio = z / t if t > 0 else float('inf')
    met = z <= w.target_abs if w.target_abs is not None else ratio <= w.target
    return {'name': w.name, 'unit': w.unit, 'zerograd': z, 'torch': t, 'ratio': ratio,
            'target': w.target, 'target_abs': w.target_abs, 'met': met, 'repeats': repeats,
            'zerograd_p10': harness.p10(times['zerograd']) / scale,
            'torch_p10': harness.p10(times['torch']) / scale,
            'zerograd_times': [v / scale for v in times['zerograd']],
            'torch_times': [v / scale for v in times['torch']]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m benchmarks', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true',
                        help='tiny sizes, 1-2 repeats: a smoke run (timings meaningless)')
    parser.add_argument('--out', help='folder for results.json and ratios.png')
    parser.add_argument('--only', help='run only the workloads whose name contains this')
    parser.add_argument('--gc-freeze', action='store_true',
                        help='gc.freeze() every object alive before each workload\'s timed '
                             'runs (torch\'s ~150,000 included), as if each side ran in a '
                             'small process of its own; default: the cyclic GC as it is')
    args = parser.parse_args(argv)

    torch = harness.import_torch()
    if torch is None:
        raise SystemExit('python -m benchmarks compares against PyTorch: install torch '
                         '(torch==2.13.0, CPU build)')
    import workloads
    info = machine_info(torch)
    info['quick'] = args.quick
    info['gc_freeze'] = args.gc_freeze
    info['page_size'] = workloads.PAGE_SIZE
    print_info(info)
    print(f'page size {workloads.PAGE_SIZE} bytes: the page-fault target '
          f'{workloads.FAULTS_TARGET} faults per step is 1 MiB of fresh pages')
    print('cyclic GC: ' + ('gc.freeze() before each workload' if args.gc_freeze else 'default'))
    if args.quick:
        print('--quick: tiny sizes, timings are meaningless')
    chosen = [w for w in workloads.WORKLOADS if not args.only or args.only in w.name]
    results = []
    for w in chosen:
        start = time.perf_counter()
        repeats, warmup = (2, 0) if args.quick else (w.repeats, w.warmup)
        if w.measure is not None:  # measured in processes of its own
            times, scale = w.measure(args.quick, repeats)
        else:
            sides, scale = w.make(torch, args.quick)
            gc.collect()  # the garbage of the workloads before this one
            if args.gc_freeze:
                gc.freeze()
            try:
                times = harness.compare(sides, repeats=repeats, warmup=warmup)
            finally:
                if args.gc_freeze:
                    gc.unfreeze()
        r = result_row(w, times, scale, repeats)
        results.append(r)
        print(f"  {w.name}: {fmt(r['zerograd'])} vs {fmt(r['torch'])} {w.unit}, "
              f"{r['ratio']:.2f}x ({repeats} repeats, {time.perf_counter() - start:.1f} s)",
              flush=True)
    info['load_average_end'] = os.getloadavg()
    print()
    print(table(results))
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in info['load_average_end'])}")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, 'results.json'), 'w') as f:
            json.dump({'machine': info, 'workloads': results}, f, indent=1)
        title = (f"zerograd / torch {info['torch']}, {info['cpu']}, 2 threads, "
                 f"{info['date'][:10]}" + (' (--quick: meaningless)' if args.quick else ''))
        plot_ratios(results, os.path.join(args.out, 'ratios.png'), title)
        print(f'wrote {args.out}/results.json and {args.out}/ratios.png')


if __name__ == '__main__':
    # `python benchmarks/run.py` works too: this folder is then sys.path[0]
    sys.exit(main())
