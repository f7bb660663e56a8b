"""The benchmark commands run (``--quick`` smoke runs; timings are never checked), and the
table's targets (a ratio, or an absolute value such as page faults per step)."""
import json
import os
import resource
import subprocess
import sys
import types

import pytest

pytest.importorskip('torch')
pytest.importorskip('matplotlib')

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(args, tmp_path):
    env = dict(os.environ, ZEROGRAD_OFFLINE='1')
    proc = subprocess.run([sys.executable, '-m', *args, '--quick', '--out', str(tmp_path)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


# One key phrase per workload of issues 6 and 16, in the table's order.
WORKLOADS = ('per-op overhead', 'MLP 784-1000-1000-10', 'GEMMs alone', 'CNN step',
             'CNN step, each side in a fresh process',
             'CNN minor page faults per step, fresh process', 'layers API',
             'CNN minor page faults per step, layers API', 'fwd+bwd', 'each side alone',
             'no_grad fwd', 'peak memory (steady state)', 'peak memory (first run)', 'LSTM',
             'MNIST MLP')


def table_cells(table, name):
    """The cells of the table's row for workload name."""
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip('|').split('|')]
        if cells[0] == name:
            return cells
    raise AssertionError(f'no row {name!r} in\n{table}')


def test_absolute_target_rows(tmp_path, monkeypatch):
    """A row with an absolute target is met on zerograd's value alone, whatever the ratio;
    a ratio row on the ratio. Both show in the table and the chart."""
    # benchmarks/ puts itself on sys.path and sets the thread limits: undone afterwards
    monkeypatch.setattr(sys, 'path', list(sys.path))
    for name in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
        monkeypatch.setenv(name, os.environ.get(name, '2'))
    from benchmarks import run as bench_run
    faults = types.SimpleNamespace(name='faults', unit='faults/step', target=None,
                                   target_abs=256)
    timed = types.SimpleNamespace(name='time', unit='ms', target=1.2, target_abs=None)
    rows = [bench_run.result_row(faults, {'zerograd': [200, 250, 900], 'torch': [100] * 3},
                                 1.0, 3),  # 2.5x torch, under 256: met
            bench_run.result_row(faults, {'zerograd': [300], 'torch': [3000]}, 1.0, 1),
            bench_run.result_row(timed, {'zerograd': [0.013], 'torch': [0.010]}, 1e-3, 1),
            bench_run.result_row(timed, {'zerograd': [0.011], 'torch': [0.010]}, 1e-3, 1)]
    assert [r['met'] for r in rows] == [True, False, False, True]
    assert rows[0]['zerograd'] == 250 and rows[0]['ratio'] == 2.5
    assert rows[1]['ratio'] == 0.1 and rows[2]['zerograd'] == pytest.approx(13)
    lines = bench_run.table(rows).splitlines()[2:]
    assert [[c.strip() for c in line.strip('|').split('|')][5:] for line in lines] == [
        ['<= 256 faults/step', 'yes'], ['<= 256 faults/step', 'NO'], ['<= 1.2', 'NO'],
        ['<= 1.2', 'yes']]
    bench_run.plot_ratios(rows, str(tmp_path / 'ratios.png'), 'test')
    assert (tmp_path / 'ratios.png').stat().st_size > 0


@pytest.mark.slow
def test_benchmarks_quick(tmp_path):
    out = run(['benchmarks'], tmp_path)
    table = out[out.index('| workload'):]
    for key in WORKLOADS:
        assert key in table
    assert 'CPU ' in out and 'NumPy ' in out and 'torch ' in out
    with open(tmp_path / 'results.json') as f:
        results = json.load(f)
    names = [r['name'] for r in results['workloads']]
    assert len(names) == len(WORKLOADS)
    for key, name in zip(WORKLOADS, names):
        assert key in name and name in table
    by_key = dict(zip(WORKLOADS, results['workloads']))
    for key, r in by_key.items():
        if 'page faults' in key:  # a step that reuses all its memory may take none
            assert 0 <= r['zerograd'] < 1e6 and 0 <= r['torch'] < 1e6
        else:
            assert r['zerograd'] > 0 and r['torch'] > 0 and r['ratio'] > 0
    assert (tmp_path / 'ratios.png').stat().st_size > 0

    # The page-fault rows: an absolute target (1 MiB of fresh pages per step), judged on
    # zerograd's value alone, read from the fresh-process CNN rows' own runs.
    pages = 2**20 // resource.getpagesize()
    assert results['machine']['page_size'] == resource.getpagesize()
    for faults_key, time_key in (('CNN minor page faults per step, fresh process',
                                  'CNN step, each side in a fresh process'),
                                 ('CNN minor page faults per step, layers API', 'layers API')):
        r, timed = by_key[faults_key], by_key[time_key]
        assert r['unit'] == 'faults/step' and r['target'] is None and r['target_abs'] == pages
        assert r['met'] == (r['zerograd'] <= pages)
        assert len(r['zerograd_times']) == len(timed['zerograd_times'])
        assert len(r['torch_times']) == len(timed['torch_times'])
        cells = table_cells(table, r['name'])
        assert cells[5] == f'<= {pages} faults/step'
        assert cells[6] == ('yes' if r['met'] else 'NO')
    for key, r in by_key.items():
        if r['target_abs'] is None:  # every other row: a ratio target
            assert r['met'] == (r['ratio'] <= r['target'])

    # The chain's peak memory (a 3,000-op chain with --quick): a few MB per side. A child
    # that inherited this process's peak RSS (torch imported: hundreds of MB) would report
    # that instead, or nothing.
    for key in ('peak memory (steady state)', 'peak memory (first run)'):
        r = by_key[key]
        assert r['unit'] == 'MB' and r['target'] == 1.0
        assert 1 < r['zerograd'] < 50 and 1 < r['torch'] < 150, r


@pytest.mark.slow
def test_scaling_quick(tmp_path):
    run(['benchmarks.scaling'], tmp_path)
    with open(tmp_path / 'scaling.json') as f:
        results = json.load(f)
    assert len(results['batch']) == 3 and len(results['width']) == 3
    for row in results['batch'] + results['width']:
        assert row['zerograd_s'] > 0 and row['torch_s'] > 0
    for name in ('scaling_batch.png', 'scaling_width.png'):
        assert (tmp_path / name).stat().st_size > 0


def test_the_bare_numpy_lstm_epoch_computes_zerograds():
    # bench_lstm.py's floor is only a floor if it does zerograd's work: one epoch of each
    # from the same weights gives the same loss (to float32 rounding; the script checks
    # rel 1e-5 and fails otherwise)
    proc = subprocess.run([sys.executable, os.path.join('benchmarks', 'bench_lstm.py'),
                           '--check'], cwd=REPO, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    words = proc.stdout.split()
    z_loss, b_loss = float(words[-4].rstrip(',')), float(words[-1])
    assert 0.1 < z_loss < 1.0 and abs(z_loss - b_loss) <= 1e-5 * z_loss


def test_the_lstm_window_taken_apart():
    # bench_lstm.py --steps: every part of the window is timed and printed (a few rounds
    # at a tiny size: the numbers mean nothing here, the parts must all be there)
    proc = subprocess.run([sys.executable, os.path.join('benchmarks', 'bench_lstm.py'),
                           '--steps', '4', '2', '--rounds', '2'], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith('BetterRNN(4), batch 2, one 30-step window')
    parts = {line[:57].strip(): float(line[57:]) for line in lines[1:]}
    assert len(parts) == 10 and all(us > 0 for us in parts.values())
    assert 'backward: loss.backward()' in parts and 'window, bare NumPy' in parts
