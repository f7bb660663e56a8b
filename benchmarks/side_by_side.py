"""Two checkouts of zerograd, the same benchmark rows, run in turn: the before/after of a
refactor measured in one sitting, so both sides see the same machine state.

    python benchmarks/side_by_side.py OLD_DIR NEW_DIR [--rounds 3] [--only per-op ...]

Each round runs ``python -m benchmarks --only ROW --out ...`` in OLD_DIR, then in NEW_DIR,
for every row (each in a fresh process, so neither side warms the other's caches); the
table gives, per row and side, the median of the rounds' zerograd medians with its range,
the same for the zerograd/torch ratio of each run, and new / old.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROWS = ['per-op overhead', 'MLP 784-1000-1000-10 SGD epoch', 'LSTM h100']


def run_row(checkout: str, row: str, out: str) -> dict:
    """One ``python -m benchmarks --only row`` in checkout; its result for that row."""
    subprocess.run([sys.executable, '-m', 'benchmarks', '--only', row, '--out', out],
                   cwd=checkout, check=True, stdout=subprocess.DEVNULL, timeout=900)
    with open(os.path.join(out, 'results.json')) as file:
        results = json.load(file)['workloads']
    if len(results) > 1:  # a name that is also the start of another row's: take it whole
        results = [r for r in results if r['name'] == row]
    if len(results) != 1:
        raise SystemExit(f'--only {row!r} matched {len(results)} workloads in {checkout}')
    return results[0]


def spread(values: list[float]) -> str:
    return f'{statistics.median(values):.4g} ({min(values):.4g}-{max(values):.4g})'


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('old')
    parser.add_argument('new')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--only', nargs='+', default=ROWS, help='row name substrings')
    args = parser.parse_args(argv)
    runs: dict[tuple[str, str], list[dict]] = {}
    scratch = tempfile.mkdtemp(prefix='side-by-side-')
    for round_ in range(args.rounds):
        for row in args.only:
            for side, checkout in (('old', args.old), ('new', args.new)):
                out = os.path.join(scratch, f'{round_}-{side}-{args.only.index(row)}')
                result = run_row(checkout, row, out)
                runs.setdefault((row, side), []).append(result)
                print(f'round {round_ + 1} {side}: {result["name"]}: zerograd '
                      f'{result["zerograd"]:.4g} {result["unit"]}, ratio '
                      f'{result["ratio"]:.2f}x', flush=True)
    print('\n| workload | side | zerograd median of rounds (range) | zerograd / torch '
          '(range) | new / old |')
    print('| --- | --- | --- | --- | --- |')
    for row in args.only:
        old = statistics.median(r['zerograd'] for r in runs[(row, 'old')])
        for side in ('old', 'new'):
            results = runs[(row, side)]
            zerograd = [r['zerograd'] for r in results]
            change = f'{statistics.median(zerograd) / old:.3f}' if side == 'new' else ''
            print(f'| {results[0]["name"]} ({results[0]["unit"]}) | {side} | {spread(zerograd)}'
                  f' | {spread([r["ratio"] for r in results])} | {change} |')


if __name__ == '__main__':
    main()
