"""The zerograd command: errors are one line, info, and the recipes (short runs)."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(ROOT), 'shared', 'data')
# Pictures need matplotlib (the dev extra has it; CI's NumPy 1.24 stage does not).
PICTURES = importlib.util.find_spec('matplotlib') is not None


def zerograd(*args, cwd, env=None):
    """Run ``python -m zerograd ARGS`` offline; return (exit status, stdout, stderr)."""
    environment = dict(os.environ, PYTHONPATH=ROOT, ZEROGRAD_OFFLINE='1')
    environment.update(env or {})
    result = subprocess.run([sys.executable, '-m', 'zerograd', *args], cwd=cwd,
                            env=environment, capture_output=True, text=True, timeout=600)
    return result.returncode, result.stdout, result.stderr


@pytest.mark.parametrize('args, message', [
    (['train', 'nope'], "zerograd train: unknown recipe 'nope'; the recipes are: char-lstm, "
                        'mnist-cnn, mnist-mlp, sin-lstm, sin-regression, sin-rnn, spiral'),
    (['train', 'spiral', '--epochs', 'abc'], "argument --epochs: expected a positive integer, "
                                             "got 'abc'"),
    (['train', 'spiral', '--epochs', '0'], 'argument --epochs: expected a positive integer, got 0'),
    (['train', 'spiral', '--lr', '-1'], 'argument --lr: expected a positive number, got -1.0'),
    (['train', 'spiral', '--bogus'], 'unrecognized arguments: --bogus'),
    (['fly'], "argument COMMAND: invalid choice: 'fly'"),
    (['train'], 'the following arguments are required: RECIPE'),
    (['train', 'spiral', '--seed', '-1'], 'argument --seed: expected an integer from 0 to '
                                          '2**32 - 1, got -1'),
    (['train', 'spiral', '--data', 'x.txt'], 'zerograd train: --data is for char-lstm, not spiral'),
])
def test_bad_usage_is_one_line_and_exit_2(tmp_path, args, message):
    status, out, err = zerograd(*args, cwd=tmp_path)
    assert status == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and 'Traceback' not in err
    assert os.listdir(tmp_path) == []


def test_resume_without_a_checkpoint_is_one_line(tmp_path):
    status, _, err = zerograd('train', 'spiral', '--resume', '--out', 'run', cwd=tmp_path)
    assert status == 1
    assert err.strip().startswith('zerograd: error: no checkpoint to resume from')
    assert len(err.strip().splitlines()) == 1


def test_info(tmp_path):
    status, out, _ = zerograd('info', cwd=tmp_path, env={'ZEROGRAD_DATA': str(tmp_path)})
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith('zerograd 0.')
    assert any(line.startswith(f'NumPy {np.__version__} (BLAS: ') for line in lines)
    assert any(line.strip().startswith('matplotlib') for line in lines)
    assert 'GPU: not available' in out or 'GPU: available' in out
    assert f'data folder: {tmp_path}' in out


def test_train_spiral_and_resume_exactly(tmp_path):
    status, out, err = zerograd('train', 'spiral', '--epochs', '100', '--out', 'straight',
                                cwd=tmp_path)
    assert status == 0, err
    assert 'epoch 100  train loss' in out and out.splitlines()[-2].startswith('test accuracy')
    names = ['weights.npz', 'checkpoint.npz', 'history.json']
    names += ['curves.png', 'decision_boundary.png'] if PICTURES else []
    for name in names:
        assert (tmp_path / 'straight' / name).exists(), name
    assert zerograd('train', 'spiral', '--epochs', '50', '--out', 'split', cwd=tmp_path)[0] == 0
    status, out, err = zerograd('train', 'spiral', '--epochs', '100', '--out', 'split',
                                '--resume', cwd=tmp_path)
    assert status == 0, err
    assert 'resumed after epoch 50' in out
    with np.load(tmp_path / 'straight' / 'weights.npz') as a, \
            np.load(tmp_path / 'split' / 'weights.npz') as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])


def test_train_sin_regression(tmp_path):
    status, out, err = zerograd('train', 'sin-regression', '--epochs', '3000', '--quiet',
                                '--out', 'sin', cwd=tmp_path)
    assert status == 0, err
    final_loss = float(out.split('final loss')[1].split()[0])
    # The book's step 44-46 run: loss 0.23722 at iteration 3000 (full batch, seed 0).
    assert final_loss == pytest.approx(0.23722, abs=2e-4)
    assert (tmp_path / 'sin' / 'fit.png').exists() == PICTURES


def _test_accuracy(out):
    return float(out.split('test accuracy')[1].split()[0])


@pytest.mark.slow
def test_demo_offline_on_the_embedded_digits(tmp_path):
    status, out, err = zerograd('demo', cwd=tmp_path, env={'ZEROGRAD_DATA': str(tmp_path / 'none')})
    assert status == 0, err
    assert 'full MNIST is not available (DownloadError); using the 5,000 digits' in out
    assert 'epoch 5  train loss' in out
    assert _test_accuracy(out) >= 0.90
    written = sorted(os.listdir(tmp_path / 'zerograd-demo'))
    expected = ['checkpoint.npz', 'history.json', 'weights.npz']
    if PICTURES:
        expected += ['curves.png', 'digits.png', 'graph.png']
    assert sorted(expected) == [name for name in written if name in expected]
    assert not (tmp_path / 'none').exists() or os.listdir(tmp_path / 'none' / 'mnist') == []


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED_DATA, 'mnist')),
                    reason='full MNIST is not beside the repository')
def test_mnist_mlp_on_full_mnist_reaches_the_books_accuracy(tmp_path):
    # The book's step 51 network: MLP 1000-1000-10, ReLU, Adam, weight decay 1e-4.
    status, out, err = zerograd('train', 'mnist-mlp', '--epochs', '5', '--quiet', cwd=tmp_path,
                                env={'ZEROGRAD_DATA': SHARED_DATA})
    assert status == 0, err
    assert _test_accuracy(out) >= 0.975


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED_DATA, 'mnist')),
                    reason='full MNIST is not beside the repository')
def test_mnist_cnn_one_epoch_on_full_mnist(tmp_path):
    status, out, err = zerograd('train', 'mnist-cnn', '--epochs', '1', '--quiet', cwd=tmp_path,
                                env={'ZEROGRAD_DATA': SHARED_DATA})
    assert status == 0, err
    assert _test_accuracy(out) >= 0.98


@pytest.mark.slow
def test_sin_lstm_and_sin_rnn_recipes(tmp_path):
    # The book's steps 59-60 through the command, shortened: the loss falls fast.
    status, out, err = zerograd('train', 'sin-lstm', '--epochs', '20', '--out', 'lstm',
                                cwd=tmp_path)
    assert status == 0, err
    losses = [float(line.split('train loss')[1].split()[0])
              for line in out.splitlines() if line.startswith('epoch')]
    assert losses[-1] < 0.05 and losses[-1] < losses[0] / 2  # epochs 10 and 20
    assert (tmp_path / 'lstm' / 'prediction.png').exists() == PICTURES
    status, out, err = zerograd('train', 'sin-rnn', '--epochs', '2', '--quiet', '--out', 'rnn',
                                cwd=tmp_path)
    assert status == 0, err
    assert 'final loss' in out


def test_char_lstm_on_a_text_file_prints_samples(tmp_path):
    text = (open(os.path.join(SHARED_DATA, 'shakespeare', 'shakespeare_1mb.txt')).read(6000)
            if os.path.isdir(os.path.join(SHARED_DATA, 'shakespeare'))
            else ('the quick brown fox jumps over the lazy dog. ' * 150)[:6000])  # same length
    (tmp_path / 'small.txt').write_text(text)
    status, out, err = zerograd('train', 'char-lstm', '--data', 'small.txt', '--epochs', '3',
                                '--batch-size', '16', '--out', 'chars', cwd=tmp_path)
    assert status == 0, err
    assert '--- sample after 11 updates ---' in out and '--- sample at the end ---' in out
    losses = [float(line.split('train loss')[1].split()[0])
              for line in out.splitlines() if line.startswith('epoch')]
    assert len(losses) == 3 and losses[-1] < losses[0]
    sample = out.split('--- sample at the end ---\n')[1][:301]  # the first character + 300
    assert set(sample) <= set(text) | {'\n'}


def test_resume_from_a_corrupt_history_is_one_line(tmp_path):
    assert zerograd('train', 'spiral', '--epochs', '2', '--quiet', '--out', 'run',
                    cwd=tmp_path)[0] == 0
    (tmp_path / 'run' / 'history.json').write_text('[{"epoch": "x"}]')
    status, _, err = zerograd('train', 'spiral', '--epochs', '4', '--resume', '--out', 'run',
                              cwd=tmp_path)
    assert status == 1
    assert err.startswith('zerograd: error: History.load:') and 'Traceback' not in err
    assert len(err.strip().splitlines()) == 1


def test_char_lstm_offline_reads_the_data_folders_shakespeare(tmp_path):
    # No --data and no network: the shared folder's Shakespeare text, said in the log.
    data = tmp_path / 'data'
    (data / 'shakespeare').mkdir(parents=True)
    text = 'to be, or not to be: that is the question. ' * 60
    (data / 'shakespeare' / 'shakespeare_1mb.txt').write_text(text)
    status, out, err = zerograd('train', 'char-lstm', '--epochs', '1', '--batch-size', '8',
                                '--out', 'chars', cwd=tmp_path,
                                env={'ZEROGRAD_DATA': str(data)})
    assert status == 0, err
    assert out.startswith('tiny-shakespeare cannot be downloaded: reading '
                          f"{data / 'shakespeare' / 'shakespeare_1mb.txt'} instead\n")
    assert f'{len(text) - 1:,} characters, {len(set(text))} distinct' in out  # (x, next x) pairs
    status, _, err = zerograd('train', 'char-lstm', '--epochs', '1', '--out', 'none',
                              cwd=tmp_path, env={'ZEROGRAD_DATA': str(tmp_path / 'empty')})
    assert status == 1 and err.startswith('zerograd: error: get_file:') and 'Traceback' not in err
