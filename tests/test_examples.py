"""The examples run as a reader would run them (shortened), and print what they promise."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_example(name, *args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, os.path.join(ROOT, 'examples', name), *args],
                            cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_regression_example(tmp_path):
    pytest.importorskip('matplotlib')
    out = run_example('regression.py', '--iters', '2001', '--plot', 'fit.png', cwd=tmp_path)
    assert 'iteration     0  loss 0.816518' in out  # the book's step 46 first loss
    assert 'iteration  2000  loss' in out
    assert (tmp_path / 'fit.png').read_bytes()[:4] == b'\x89PNG'


def test_spiral_example(tmp_path):
    pytest.importorskip('matplotlib')
    out = run_example('spiral.py', '--epochs', '300', '--plot', 'spiral.png', cwd=tmp_path)
    last = out.strip().splitlines()[-2]  # the last epoch line, before 'saved spiral.png'
    assert last.startswith('epoch 300')
    train_acc = float(last.split('accuracy')[1].split()[0])
    assert train_acc > 0.93
    assert (tmp_path / 'spiral.png').read_bytes()[:4] == b'\x89PNG'
