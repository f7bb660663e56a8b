"""The benchmark commands run (``--quick`` smoke runs; timings are never checked)."""
import json
import os
import subprocess
import sys

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


# One key phrase per workload of issue 6, in the table's order.
WORKLOADS = ('per-op overhead', 'MLP 784-1000-1000-10', 'GEMMs alone', 'CNN step',
             'CNN step, each side in a fresh process', 'layers API', 'fwd+bwd',
             'each side alone', 'no_grad fwd', 'LSTM', 'MNIST MLP')


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
    for r in results['workloads']:
        assert r['zerograd'] > 0 and r['torch'] > 0 and r['ratio'] > 0
    assert (tmp_path / 'ratios.png').stat().st_size > 0


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
