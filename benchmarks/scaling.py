"""Where Python overhead stops mattering: time per MLP epoch (784-H-10, ReLU, softmax
cross-entropy, SGD lr 0.1, float32, a fixed number of random MNIST-shaped samples) for
zerograd and PyTorch in the same run, alternating, 2 threads each,

* against the batch size (1, 2, 4, ..., 512; H = 1000), and
* against the hidden width (H = 100 ... 4000; batch 100).

    python -m benchmarks.scaling [--quick] --out DIR

writes DIR/scaling.json, DIR/scaling_batch.png and DIR/scaling_width.png (log-log; a
second axis shows the ratio zerograd / torch). ``--quick``: 3 points each, few samples.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

import benchmarks  # noqa: F401  (puts this folder on sys.path; thread limits first)
import harness  # noqa: E402

import numpy as np  # noqa: E402

SAMPLES = 2000
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
WIDTHS = (100, 200, 500, 1000, 2000, 4000)
BATCH_WIDTH = 1000  # H for the batch sweep
WIDTH_BATCH = 100  # batch for the width sweep


def make_zerograd(X, T, hidden, batch):
    import zerograd.functions as F
    from zerograd import optimizers
    from zerograd.models import MLP
    np.random.seed(0)
    model = MLP((hidden, 10), activation=F.relu)
    optimizer = optimizers.SGD(lr=0.1).setup(model)

    def epoch():
        for i in range(0, len(X), batch):
            loss = F.softmax_cross_entropy(model(X[i:i + batch]), T[i:i + batch])
            model.cleargrads()
            loss.backward()
            optimizer.update()
    return epoch


def make_torch(torch, X, T, hidden, batch):
    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    Xt, Tt = torch.from_numpy(X), torch.from_numpy(T)

    def epoch():
        for i in range(0, len(X), batch):
            loss = nn.functional.cross_entropy(model(Xt[i:i + batch]), Tt[i:i + batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return epoch


def sweep(torch, X, T, points, fixed, vary: str, repeats: int, warmup: int) -> list[dict]:
    rows = []
    for p in points:
        hidden, batch = (p, fixed) if vary == 'width' else (fixed, p)
        sides = {'zerograd': make_zerograd(X, T, hidden, batch),
                 'torch': make_torch(torch, X, T, hidden, batch)}
        times = harness.compare(sides, repeats=repeats, warmup=warmup)
        z, t = statistics.median(times['zerograd']), statistics.median(times['torch'])
        rows.append({'hidden': hidden, 'batch': batch, 'zerograd_s': z, 'torch_s': t,
                     'ratio': z / t, 'zerograd_times': times['zerograd'],
                     'torch_times': times['torch']})
        print(f'  H {hidden:5d} batch {batch:4d}: zerograd {z:8.4f} s  torch {t:8.4f} s  '
              f'ratio {z / t:.2f}x', flush=True)
    return rows


def plot(rows: list[dict], key: str, xlabel: str, title: str, path: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = [r[key] for r in rows]
    ax.loglog(xs, [r['zerograd_s'] for r in rows], 'o-', label='zerograd')
    ax.loglog(xs, [r['torch_s'] for r in rows], 's-', label='PyTorch')
    ax.set_xscale('log', base=2 if key == 'batch' else 10)
    from matplotlib.ticker import ScalarFormatter
    ax.xaxis.set_major_formatter(ScalarFormatter())  # 1, 2, 4 ... rather than 2^k
    ax.set_xlabel(xlabel)
    ax.set_ylabel('seconds per epoch')
    ax.grid(True, which='both', alpha=0.3)
    ratio_ax = ax.twinx()
    ratio_ax.plot(xs, [r['ratio'] for r in rows], 'k:', marker='.', label='ratio (right)')
    ratio_ax.axhline(1.0, color='gray', linewidth=0.8)
    ratio_ax.set_ylabel('zerograd / PyTorch')
    ratio_ax.set_ylim(0, max(2.0, max(r['ratio'] for r in rows) * 1.1))
    lines, labels = ax.get_legend_handles_labels()
    lines2, labels2 = ratio_ax.get_legend_handles_labels()
    ax.legend(lines + lines2, labels + labels2, fontsize=8, loc='upper center')
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m benchmarks.scaling', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='3 points each, few samples')
    parser.add_argument('--out', required=True, help='folder for the JSON and the PNGs')
    args = parser.parse_args(argv)
    torch = harness.import_torch()
    if torch is None:
        raise SystemExit('python -m benchmarks.scaling needs torch (torch==2.13.0, CPU)')
    from benchmarks.run import machine_info, print_info
    info = machine_info(torch)
    info['quick'] = args.quick
    print_info(info)
    if args.quick:
        samples, batches, widths, repeats, warmup = 200, (1, 16, 128), (100, 1000, 4000), 1, 0
    else:
        samples, batches, widths, repeats, warmup = SAMPLES, BATCHES, WIDTHS, 3, 1
    rng = np.random.default_rng(0)
    X = rng.random((samples, 784), dtype=np.float32)
    T = rng.integers(0, 10, samples)
    print(f'## time per epoch of {samples} samples against the batch size, '
          f'MLP 784-{BATCH_WIDTH}-10')
    by_batch = sweep(torch, X, T, batches, BATCH_WIDTH, 'batch', repeats, warmup)
    print(f'## time per epoch of {samples} samples against the hidden width, batch {WIDTH_BATCH}')
    by_width = sweep(torch, X, T, widths, WIDTH_BATCH, 'width', repeats, warmup)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, 'scaling.json'), 'w') as f:
        json.dump({'machine': info, 'samples': samples, 'repeats': repeats,
                   'batch': by_batch, 'width': by_width}, f, indent=1)
    suffix = (f"{info['cpu']}, 2 threads, torch {info['torch']}, {info['date'][:10]}"
              + (' (--quick)' if args.quick else ''))
    plot(by_batch, 'batch', 'batch size',
         f'MLP 784-{BATCH_WIDTH}-10, {samples} samples per epoch\n{suffix}',
         os.path.join(args.out, 'scaling_batch.png'))
    plot(by_width, 'hidden', 'hidden width H',
         f'MLP 784-H-10, batch {WIDTH_BATCH}, {samples} samples per epoch\n{suffix}',
         os.path.join(args.out, 'scaling_width.png'))
    print(f'wrote {args.out}/scaling.json, scaling_batch.png, scaling_width.png')


if __name__ == '__main__':
    sys.exit(main())
