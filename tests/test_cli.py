"""The zerograd command: errors are one line, info, and the recipes (short runs)."""
import importlib
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
    environment = dict(os.environ, PYTHONPATH=ROOT, ZEROGRAD_OFFLINE='1', PYTHONUNBUFFERED='1')
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
    (['train', 'spiral', '--lr', 'inf'],
     'argument --lr: expected a positive finite number, got inf'),
    (['train', 'spiral', '--lr', 'nan'], 'argument --lr: expected a positive number, got nan'),
    (['train', 'spiral', '--checkpoint-every', '-5'], 'argument --checkpoint-every: expected a '
                                                      'finite number of seconds >= 0, got -5.0'),
    (['demo', '--checkpoint-every', 'soon'], "argument --checkpoint-every: expected a number of "
                                             "seconds, got 'soon'"),
    (['train', 'spiral', '--early-stop', '-1'], 'argument --early-stop: expected a number of '
                                                'epochs >= 0, got -1'),
    (['train', 'sin-regression', '--early-stop', '5'],
     'zerograd train: --early-stop watches the test loss, and sin-regression has no test set; '
     'the recipes with one are: mnist-cnn, mnist-mlp, spiral'),
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
    extras = {line.split()[0]: line.split()[-1] for line in lines if line.startswith('  ')}
    assert extras['tensorboardX'] == '[tensorboard]' and extras['mpi4py'] == '[mpi]'
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


def test_train_spiral_stops_early_and_keeps_the_best_weights_beside_the_last(tmp_path):
    import json
    from test_callbacks import _keras_early_stop
    status, out, err = zerograd('train', 'spiral', '--early-stop', '3', '--out', 'run',
                                cwd=tmp_path)
    assert status == 0, err
    history = json.loads((tmp_path / 'run' / 'history.json').read_text())
    stopped = len(history)
    # Keras's rule over the run's own test losses says where it stops.
    assert _keras_early_stop([r['test_loss'] for r in history], 3)[0] == stopped < 300
    assert f'EarlyStopping stopped training after epoch {stopped} of 300' in out
    accuracies = [r['test_accuracy'] for r in history]
    best = accuracies.index(max(accuracies)) + 1  # the first epoch that reached the best
    assert f'best test accuracy {max(accuracies):.4f} at epoch {best} (run/best.npz)' in out
    assert out.splitlines()[-1] == ('wrote run/weights.npz, run/best.npz'
                                    + (', run/decision_boundary.png, run/curves.png'
                                       if PICTURES else ''))
    # best.npz holds the weights a run of exactly `best` epochs ends with, bit for bit.
    status, _, err = zerograd('train', 'spiral', '--epochs', str(best), '--quiet', '--out',
                              'short', cwd=tmp_path)
    assert status == 0, err
    with np.load(tmp_path / 'run' / 'best.npz') as a, \
            np.load(tmp_path / 'short' / 'weights.npz') as b:
        assert sorted(a.files) == sorted(b.files) == ['l0/W', 'l0/b', 'l1/W', 'l1/b']
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
    with np.load(tmp_path / 'run' / 'weights.npz') as last, \
            np.load(tmp_path / 'run' / 'best.npz') as kept:
        assert best == stopped or not np.array_equal(last['l0/W'], kept['l0/W'])
    # A resume takes the same callbacks: --early-stop left out is refused, before any work.
    before = (tmp_path / 'run' / 'checkpoint.npz').read_bytes()
    status, _, err = zerograd('train', 'spiral', '--resume', '--out', 'run', cwd=tmp_path)
    assert status == 1 and err == (
        "zerograd: error: spiral: the checkpoint in run was saved with the callbacks "
        "['ModelCheckpoint', 'EarlyStopping'], these options give ['ModelCheckpoint']; a "
        "resume continues the saved run: give --early-stop and --tensorboard as when it "
        "started (or start a new run with another --out)\n")
    assert (tmp_path / 'run' / 'checkpoint.npz').read_bytes() == before


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
    assert ('(char-lstm trains on any text file given with --data FILE, or reads '
            f"{tmp_path / 'empty' / 'shakespeare' / 'shakespeare_1mb.txt'} when there is one)"
            in err)
    assert not (tmp_path / 'none').exists()  # the failed run's folder is gone


def test_version_and_train_help_shows_each_recipes_defaults(tmp_path):
    from zerograd import __version__, recipes
    status, out, _ = zerograd('--version', cwd=tmp_path)
    assert status == 0 and out == f'zerograd {__version__}\n'
    status, out, _ = zerograd('train', '--help', cwd=tmp_path)
    assert status == 0
    rows = {line.split()[0]: line.split()[1:4] for line in out.split('recipes and their '
                                                                      'defaults:\n')[1]
            .splitlines()[1:] if line.startswith('  ')}
    assert sorted(rows) == sorted(recipes.RECIPES)
    assert rows['spiral'] == ['300', '30', '1'] and rows['sin-regression'] == ['10,000', '100',
                                                                               '0.2']
    for option in ('--checkpoint-every SECONDS', '--data FILE', '--resume', '--seed N',
                   '--out DIR', '--lr LR', '--early-stop N', '--tensorboard DIR'):
        assert option in out
    status, out, _ = zerograd('demo', '--help', cwd=tmp_path)
    assert status == 0 and '--seed N' in out and '--epochs N' in out and 'epochs (5)' in out


@pytest.mark.parametrize('args, message', [
    (['train', 'spiral', '--out', '/dev/null'], 'spiral: --out /dev/null is not a folder'),
    (['train', 'spiral', '--out', '/sys'], 'spiral: --out /sys is not a writable folder: '),
    (['train', 'spiral', '--out', '/proc/zerograd/run'],
     'spiral: --out /proc/zerograd/run is not a writable folder: '),
    (['train', 'char-lstm', '--data', '/nonexistent.txt'],
     'char-lstm: --data /nonexistent.txt: no such file'),
    (['train', 'char-lstm', '--data', '.'], 'char-lstm: --data . is a folder, not a text file'),
    (['demo', '--out', '/dev/null'], 'demo: --out /dev/null is not a folder'),
])
def test_file_problems_name_the_option_before_training(tmp_path, args, message):
    status, out, err = zerograd(*args, cwd=tmp_path)
    assert status == 1 and out == ''
    assert err.startswith(f'zerograd: error: {message}') and len(err.splitlines()) == 1
    assert os.listdir(tmp_path) == []


def test_a_failed_run_leaves_no_empty_folders(tmp_path):
    (tmp_path / 'tiny.txt').write_text('ab')  # too short for 64 streams: fails after mkdir
    status, _, err = zerograd('train', 'char-lstm', '--data', 'tiny.txt', '--out', 'a/b/run',
                              cwd=tmp_path)
    assert status == 1 and 'SeqDataLoader: batch_size 64 exceeds' in err
    assert os.listdir(tmp_path) == ['tiny.txt']


def test_info_shows_the_data_folder_get_file_uses(tmp_path):
    (tmp_path / 'data').mkdir()
    status, out, _ = zerograd('info', cwd=tmp_path, env={'ZEROGRAD_DATA': 'data'})
    assert status == 0 and f'data folder: {tmp_path / "data"}' in out.splitlines()
    (tmp_path / 'a-file').write_text('')
    status, out, _ = zerograd('info', cwd=tmp_path, env={'ZEROGRAD_DATA': 'a-file'})
    line = next(line for line in out.splitlines() if line.startswith('data folder: '))
    assert status == 0 and line.startswith('data folder: unusable: ') and 'is a file' in line


def test_info_into_a_closed_pipe_ends_quietly(tmp_path):
    environment = dict(os.environ, PYTHONPATH=ROOT)
    process = subprocess.Popen([sys.executable, '-m', 'zerograd', 'info'], cwd=tmp_path,
                               env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # as `| head -0` would: every write gets EPIPE
    _, err = process.communicate(timeout=120)
    assert process.returncode == 141
    assert err == b''


def test_info_lists_the_onnx_extra_and_a_graphviz_hint_only_without_dot(tmp_path):
    (tmp_path / 'bin').mkdir()
    status, out, _ = zerograd('info', cwd=tmp_path, env={'PATH': str(tmp_path / 'bin')})
    assert status == 0
    for module in ('onnx', 'onnxruntime'):  # the onnx extra, like the other extras
        installed = importlib.util.find_spec(module) is not None
        line = next(line for line in out.splitlines() if line.startswith(f'  {module} '))
        version = importlib.import_module(module).__version__ if installed else 'not installed'
        assert line.split(None, 1)[1] == f'{version:14s} [onnx]'
    assert '  graphviz     not installed  (apt-get install graphviz)' in out.splitlines()
    dot = tmp_path / 'bin' / 'dot'
    dot.write_text('#!/bin/sh\n')
    dot.chmod(0o755)
    status, out, _ = zerograd('info', cwd=tmp_path, env={'PATH': str(tmp_path / 'bin')})
    assert status == 0 and f'  graphviz     dot at {dot}' in out.splitlines()
    assert 'apt-get' not in out


def test_resume_rules_existing_checkpoint_epochs_and_batch_size(tmp_path):
    assert zerograd('train', 'spiral', '--epochs', '4', '--batch-size', '60', '--quiet',
                    '--out', 'run', cwd=tmp_path)[0] == 0
    before = (tmp_path / 'run' / 'checkpoint.npz').read_bytes()
    status, _, err = zerograd('train', 'spiral', '--epochs', '8', '--out', 'run', cwd=tmp_path)
    assert status == 1 and err == ('zerograd: error: spiral: run already holds a checkpoint of '
                                   'an earlier run: add --resume to continue it, or remove the '
                                   'folder (or give another --out) to start over\n')
    status, _, err = zerograd('train', 'spiral', '--epochs', '3', '--resume', '--out', 'run',
                              cwd=tmp_path)
    assert status == 1 and err == ('zerograd: error: spiral: nothing to train: the checkpoint '
                                   'in run is at epoch 4 and --epochs 3 asks for no more (give '
                                   '--epochs above 4 to continue it)\n')
    status, _, err = zerograd('train', 'spiral', '--epochs', '8', '--resume', '--batch-size',
                              '30', '--out', 'run', cwd=tmp_path)
    assert status == 1 and "--batch-size 30 differs from the checkpoint's 60 in run" in err
    assert (tmp_path / 'run' / 'checkpoint.npz').read_bytes() == before  # nothing touched
    # Without --batch-size the checkpoint's 60 is used, not the recipe's 30.
    status, out, err = zerograd('train', 'spiral', '--epochs', '8', '--resume', '--out', 'run',
                                cwd=tmp_path)
    assert status == 0, err
    assert out.startswith('resumed after epoch 4 from ') and 'epoch 8  train loss' in out


def test_quiet_never_hides_a_fallback_to_the_embedded_digits(tmp_path):
    typo = tmp_path / 'mistyped'
    status, out, err = zerograd('train', 'mnist-mlp', '--epochs', '1', '--batch-size', '1000',
                                '--quiet', '--out', 'run', cwd=tmp_path,
                                env={'ZEROGRAD_DATA': str(typo)})
    assert status == 0, err
    assert out.splitlines()[0] == (
        'full MNIST is not available (DownloadError); using the 5,000 digits that ship with '
        f"zerograd (MNIST5k: 4,000 train, 1,000 test); full MNIST goes in {typo / 'mnist'}")
    assert out.splitlines()[1].startswith('test accuracy')


@pytest.mark.slow
def test_kill_9_at_random_moments_keeps_history_and_checkpoint_together(tmp_path):
    # A real run killed 30 times at random moments, resumed each time: the history has
    # exactly one record per epoch trained, none missing, none twice. A checkpoint after
    # every batch (--checkpoint-every 0): many kills land in the middle of a save.
    import json
    import random
    import signal
    import time
    rng = random.Random(0)
    environment = dict(os.environ, PYTHONPATH=ROOT, ZEROGRAD_OFFLINE='1', PYTHONUNBUFFERED='1')
    run = tmp_path / 'run'
    checkpoint = run / 'checkpoint.npz'
    reached = []
    start = time.monotonic()
    for kill in range(30):
        resume = ['--resume'] if checkpoint.exists() else []
        process = subprocess.Popen(
            [sys.executable, '-m', 'zerograd', 'train', 'spiral', '--epochs', '100000',
             '--checkpoint-every', '0', '--out', str(run), *resume], cwd=tmp_path,
            env=environment,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if resume:  # killed while training, not while starting: after its first line
            assert process.stdout.readline().startswith(b'resumed after epoch'), kill
        else:
            deadline = time.monotonic() + 30
            while not checkpoint.exists() and time.monotonic() < deadline:
                time.sleep(0.01)  # the first run: wait for its first checkpoint
        time.sleep(rng.uniform(0.0, 0.6))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        err = process.stderr.read().decode()
        process.stdout.close()
        process.stderr.close()
        assert process.returncode == -signal.SIGKILL, err  # still running when killed
        from zerograd import training
        info = training.checkpoint_info(str(run))
        epochs = info['history']['epoch']
        assert epochs == list(range(1, info['epoch'] + 1))
        reached.append(info['epoch'])
    assert reached == sorted(reached)  # never lost anything
    assert reached[-1] >= 30  # and the runs trained
    final = reached[-1] + 5
    status, out, err = zerograd('train', 'spiral', '--epochs', str(final), '--resume',
                                '--out', 'run', cwd=tmp_path)
    assert status == 0, err
    records = json.loads((run / 'history.json').read_text())
    assert [record['epoch'] for record in records] == list(range(1, final + 1))
    assert time.monotonic() - start < 120


def test_train_with_tensorboard_logs_the_history_and_the_graph(tmp_path):
    """--tensorboard DIR: TensorBoard's own reader finds every epoch's figures, equal to
    history.json's, the weights' histograms and the model's graph."""
    import json
    pytest.importorskip('tensorboardX')
    accumulator = pytest.importorskip(
        'tensorboard.backend.event_processing.event_accumulator')
    status, _, err = zerograd('train', 'spiral', '--epochs', '3', '--quiet', '--out', 'run',
                              '--tensorboard', 'tb', cwd=tmp_path)
    assert status == 0, err
    history = json.loads((tmp_path / 'run' / 'history.json').read_text())
    events = accumulator.EventAccumulator(str(tmp_path / 'tb'), size_guidance={
        accumulator.SCALARS: 0, accumulator.HISTOGRAMS: 0})
    events.Reload()
    for key, tag in [('train_loss', 'loss/train'), ('test_accuracy', 'accuracy/test')]:
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == [1, 2, 3]
        np.testing.assert_allclose([e.value for e in logged], [r[key] for r in history],
                                   rtol=1e-6)
    assert {'l0/W', 'l1/b'} <= set(events.Tags()['histograms'])
    ops = {node.op for node in events.Graph().node}
    assert {'Linear', 'Sigmoid'} <= ops or {'Linear', 'ReLU'} <= ops, ops
