"""training: the loop, exact resume, the history and the pictures."""
import json

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import DataLoader, optimizers, training
from zerograd.callbacks import Callback
from zerograd.datasets import Spiral
from zerograd.models import MLP


def _setup(seed=0):
    np.random.seed(seed)
    model = MLP((10, 3))
    optimizer = optimizers.Adam(0.01).setup(model)
    train_loader = DataLoader(Spiral(train=True), 30)
    test_loader = DataLoader(Spiral(train=False), 30, shuffle=False)
    return model, optimizer, train_loader, test_loader


def test_fit_records_history_and_learns():
    model, optimizer, train_loader, test_loader = _setup()
    lines = []
    history = training.fit(model, optimizer, train_loader, 200, test_loader=test_loader,
                           log=lines.append)
    assert len(history) == 200 and history["epoch"] == list(range(1, 201))
    assert history['train_loss'][-1] < history['train_loss'][0] / 2
    assert history['test_accuracy'][-1] > 0.8
    assert lines[0].startswith('epoch 1  train loss ') and 'samples/s' in lines[0]
    assert len(lines) == 200


def test_evaluate_matches_a_hand_computation():
    model, _, _, test_loader = _setup()
    result = training.evaluate(model, test_loader)
    x, t = test_loader.dataset.data, test_loader.dataset.label
    y = model(x)
    assert result['loss'] == pytest.approx(float(F.softmax_cross_entropy(y, t).data), rel=1e-5)
    assert result['accuracy'] == pytest.approx(float(F.accuracy(y, t).data))


def test_resume_continues_exactly(tmp_path):
    # 6 epochs straight, against 3 epochs, a stop, and a resume in new objects to 6.
    model, optimizer, train_loader, test_loader = _setup()
    straight = training.fit(model, optimizer, train_loader, 6, test_loader=test_loader,
                            quiet=True)
    out = str(tmp_path / 'run')
    first, opt1, loader1, test1 = _setup()
    training.fit(first, opt1, loader1, 3, test_loader=test1, out=out, quiet=True)
    np.random.seed(12345)  # whatever happens to the generator in between
    resumed, opt2, loader2, test2 = _setup(seed=777)
    history = training.fit(resumed, opt2, loader2, 6, test_loader=test2, out=out,
                           resume=True, quiet=True)
    for (_, p), (_, q) in zip(model.named_params().items(), resumed.named_params().items()):
        np.testing.assert_array_equal(p.data, q.data)
    for name in ('train_loss', 'train_accuracy', 'test_loss', 'test_accuracy'):
        assert history[name] == straight[name]


def test_resume_says_when_the_checkpoint_hyperparameters_win(tmp_path):
    out = str(tmp_path / 'run')
    model, optimizer, train_loader, _ = _setup()
    training.fit(model, optimizer, train_loader, 1, out=out, quiet=True)
    lines = []
    model, _, train_loader, _ = _setup()
    optimizer = optimizers.Adam(0.05).setup(model)  # another lr, as `--lr 0.05 --resume`
    training.fit(model, optimizer, train_loader, 2, out=out, resume=True, log=lines.append)
    assert optimizer.alpha == 0.01  # Adam's learning rate is alpha
    assert 'alpha = 0.01 from the checkpoint, not 0.05 (a resume continues the saved run; ' \
           'start a new one to change it)' in lines
    lines.clear()
    model, optimizer, train_loader, _ = _setup()  # the same lr: nothing to say
    training.fit(model, optimizer, train_loader, 3, out=out, resume=True, log=lines.append)
    assert not any('from the checkpoint, not' in line for line in lines)


def test_resume_without_checkpoint(tmp_path):
    model, optimizer, train_loader, _ = _setup()
    with pytest.raises(FileNotFoundError, match='no checkpoint to resume from'):
        training.fit(model, optimizer, train_loader, 2, out=str(tmp_path), resume=True)
    with pytest.raises(ValueError, match='resume=True needs the out folder'):
        training.fit(model, optimizer, train_loader, 2, resume=True)


def test_log_every_saves_and_prints_every_k_epochs(tmp_path):
    model, optimizer, train_loader, _ = _setup()
    lines = []
    training.fit(model, optimizer, train_loader, 5, out=str(tmp_path), log=lines.append,
                 log_every=2)
    assert [line.split()[1] for line in lines] == ['2', '4', '5']
    with open(tmp_path / 'history.json') as file:
        assert len(json.load(file)) == 5


def test_history_round_trip_and_rejects_bad_json(tmp_path):
    history = training.History()
    history.append(epoch=1, train_loss=0.5)
    history.append(epoch=2, train_loss=0.25, test_loss=0.3)
    path = str(tmp_path / 'h.json')
    history.save(path)
    loaded = training.History.load(path)
    assert loaded == history and loaded['test_loss'] == [0.3]
    assert loaded.names() == ['epoch', 'train_loss', 'test_loss']
    (tmp_path / 'bad.json').write_text('{"a": 1}')
    with pytest.raises(ValueError, match='does not hold a list of metric records'):
        training.History.load(str(tmp_path / 'bad.json'))


def test_pictures(tmp_path):
    pytest.importorskip('matplotlib')
    model, optimizer, train_loader, test_loader = _setup()
    history = training.fit(model, optimizer, train_loader, 3, test_loader=test_loader,
                           quiet=True)
    paths = [
        training.plot_history(history, str(tmp_path / 'curves.png')),
        training.plot_decision_boundary(model, train_loader.dataset.data,
                                        train_loader.dataset.label, str(tmp_path / 'b.png')),
        training.plot_digits(np.random.rand(12, 28, 28), np.arange(12) % 10,
                             np.arange(12) % 7, str(tmp_path / 'digits.png'), cols=6),
        training.plot_curves(np.linspace(0, 1, 5), {'a': np.arange(5.0)},
                             str(tmp_path / 'fit.png'), points=(np.ones(3), np.ones(3))),
    ]
    for path in paths:
        with open(path, 'rb') as file:
            assert file.read(4) == b'\x89PNG'


def test_progress_is_silent_without_a_terminal(capsys):
    progress = training.Progress(10, 'epoch 1', quiet=False)
    progress.update(5, loss='0.1')
    progress.close()
    assert progress.bar is None  # pytest's stderr is not a terminal
    assert capsys.readouterr().err == ''


class _Stop(Exception):
    """Stands for a kill: raised from inside the loop after a number of loss calls."""


def _stopping(loss_fn, after):
    calls = [0]

    def wrapped(y, t):
        calls[0] += 1
        if calls[0] > after:
            raise _Stop
        return loss_fn(y, t)
    return wrapped


@pytest.mark.parametrize('stop_after', [4, 17, 23])
def test_resume_in_the_middle_of_an_epoch_is_bit_for_bit(tmp_path, stop_after):
    # 3 epochs of 10 batches straight, against a run stopped after `stop_after` loss
    # calls (test batches count too) with a checkpoint after every batch, then resumed.
    model, optimizer, train_loader, test_loader = _setup()
    straight = training.fit(model, optimizer, train_loader, 3, test_loader=test_loader,
                            quiet=True)
    out = str(tmp_path / 'run')
    first, opt1, loader1, test1 = _setup()
    with pytest.raises(_Stop):
        training.fit(first, opt1, loader1, 3, test_loader=test1, out=out, quiet=True,
                     checkpoint_every=0,
                     loss_fn=_stopping(F.softmax_cross_entropy, stop_after))
    info = training.checkpoint_info(out)
    assert info['state']['partial'] is not None  # stopped inside an epoch
    assert info['epoch'] == len(info['history'])
    np.random.seed(12345)
    resumed, opt2, loader2, test2 = _setup(seed=777)
    lines = []
    history = training.fit(resumed, opt2, loader2, 3, test_loader=test2, out=out,
                           resume=True, log=lines.append)
    assert lines[0].startswith(f'resumed after epoch {info["epoch"]}, '
                               f'{info["state"]["partial"]["iteration"]} of 10 batches into '
                               f'epoch {info["epoch"] + 1} from ')
    for (_, p), (_, q) in zip(model.named_params().items(), resumed.named_params().items()):
        np.testing.assert_array_equal(p.data, q.data)
    for name in ('train_loss', 'train_accuracy', 'test_loss', 'test_accuracy'):
        assert history[name] == straight[name]


def _bptt_setup(seed=0):
    from zerograd.dataloaders import SeqDataLoader
    from zerograd.datasets import SinCurve
    from zerograd.models import Model
    from zerograd import layers as L

    class Net(Model):
        def __init__(self):
            super().__init__()
            self.rnn = L.LSTM(8)
            self.fc = L.Linear(1)

        def reset_state(self):
            self.rnn.reset_state()

        def forward(self, x):
            return self.fc(self.rnn(x))

    np.random.seed(0)  # the same noisy sine whatever the seed of the run
    data = SinCurve(train=True)
    data.data, data.label = data.data[:120], data.label[:120]
    np.random.seed(seed)
    model = Net()
    optimizer = optimizers.Adam(0.01).setup(model)
    return model, optimizer, SeqDataLoader(data, batch_size=4)


def test_fit_bptt_resumes_in_the_middle_of_an_epoch_bit_for_bit(tmp_path):
    # 30 steps per epoch, an update every 7 steps: stopped in epoch 2 after its 2nd update.
    model, optimizer, loader = _bptt_setup()
    updates = []
    straight = training.fit_bptt(model, optimizer, loader, 3, bptt_length=7, quiet=True,
                                 on_update=updates.append)
    out = str(tmp_path / 'run')
    first, opt1, loader1 = _bptt_setup()
    with pytest.raises(_Stop):
        training.fit_bptt(first, opt1, loader1, 3, bptt_length=7, out=out, quiet=True,
                          checkpoint_every=0,
                          loss_fn=_stopping(F.mean_squared_error, 30 + 17))
    info = training.checkpoint_info(out)
    assert info['epoch'] == 1 and info['state']['partial']['iteration'] == 14
    assert info['state']['updates'] == 5 + 2
    resumed, opt2, loader2 = _bptt_setup(seed=3)
    later = []
    history = training.fit_bptt(resumed, opt2, loader2, 3, bptt_length=7, out=out,
                                resume=True, quiet=True, on_update=later.append)
    assert later == updates[7:]  # the run's update count continues
    for (_, p), (_, q) in zip(model.named_params().items(), resumed.named_params().items()):
        np.testing.assert_array_equal(p.data, q.data)
    assert history['train_loss'] == straight['train_loss']


class _AlphaPerUpdate(Callback):
    """Adam's alpha set after every update from the callback's own count (its state)."""

    def __init__(self):
        self.seen, self.iterations, self.losses = 0, [], []

    def on_train_begin(self, model, optimizer):
        self.optimizer = optimizer

    def on_batch_end(self, iteration, loss):
        self.seen += 1
        self.iterations.append(iteration)
        self.losses.append(loss)
        self.optimizer.alpha = 0.01 * 0.97 ** self.seen

    def state_dict(self):
        return {'seen': self.seen}

    def load_state_dict(self, state):
        self.seen = state['seen']


def test_fit_bptt_runs_callbacks_and_resumes_them_in_the_middle_of_an_epoch_bit_for_bit(
        tmp_path):
    # 30 steps per epoch, an update every 7 steps (the 5th after 2): 5 updates per epoch.
    model, optimizer, loader = _bptt_setup()
    straight_decay = _AlphaPerUpdate()
    straight = training.fit_bptt(model, optimizer, loader, 3, bptt_length=7, quiet=True,
                                 callbacks=[straight_decay])
    assert straight_decay.iterations == list(range(1, 16))
    for epoch in range(3):  # the epoch's loss: its chunks' summed losses over its 30 steps
        chunks = straight_decay.losses[5 * epoch:5 * epoch + 5]
        assert straight['train_loss'][epoch] == pytest.approx(sum(chunks) / 30, rel=1e-12)
    out = str(tmp_path / 'run')
    first, opt1, loader1 = _bptt_setup()
    with pytest.raises(_Stop):
        training.fit_bptt(first, opt1, loader1, 3, bptt_length=7, out=out, quiet=True,
                          checkpoint_every=0, callbacks=[_AlphaPerUpdate()],
                          loss_fn=_stopping(F.mean_squared_error, 30 + 17))
    assert training.checkpoint_info(out)['state']['callbacks'] == [
        {'class': '_AlphaPerUpdate', 'state': {'seen': 7}}]
    resumed, opt2, loader2 = _bptt_setup(seed=3)
    decay = _AlphaPerUpdate()
    history = training.fit_bptt(resumed, opt2, loader2, 3, bptt_length=7, out=out,
                                resume=True, quiet=True, callbacks=[decay])
    assert decay.iterations == list(range(8, 16)) and decay.seen == 15
    assert decay.losses == straight_decay.losses[7:]
    assert opt2.alpha == optimizer.alpha == 0.01 * 0.97 ** 15
    for (_, p), (_, q) in zip(model.named_params().items(), resumed.named_params().items()):
        np.testing.assert_array_equal(p.data, q.data)
    assert history['train_loss'] == straight['train_loss']


def test_history_ahead_of_the_checkpoint_is_cut_back_and_behind_is_refused(tmp_path):
    out = str(tmp_path / 'run')
    model, optimizer, train_loader, _ = _setup()
    training.fit(model, optimizer, train_loader, 2, out=out, quiet=True)
    # A kill between the history (written first) and the checkpoint: history ahead.
    records = json.loads((tmp_path / 'run' / 'history.json').read_text())
    extra = dict(records[-1], epoch=3.0)
    (tmp_path / 'run' / 'history.json').write_text(json.dumps(records + [extra]))
    info = training.checkpoint_info(out)
    assert info['epoch'] == 2 and info['history'].records == records
    # Behind (or empty), edited, or a checkpoint with a negative epoch: refused.
    for bad in ([], records[:1], [records[1], records[0]]):
        (tmp_path / 'run' / 'history.json').write_text(json.dumps(bad))
        with pytest.raises(ValueError, match='the history does not belong to it'):
            training.checkpoint_info(out)
    edited = [dict(records[0], train_loss=0.0), records[1]]
    (tmp_path / 'run' / 'history.json').write_text(json.dumps(edited))
    with pytest.raises(ValueError, match='does not match the checkpoint'):
        training.fit(*_setup()[:3], 4, out=out, resume=True, quiet=True)
    (tmp_path / 'run' / 'history.json').write_text(json.dumps(records))
    # save refuses a negative epoch, so the file is tampered with directly.
    path = training.checkpoint_path(out)
    with np.load(path, allow_pickle=False) as saved:
        arrays = dict(saved)
    arrays['extra/epoch'] = np.array(-1)
    np.savez_compressed(path, **arrays)
    with pytest.raises(ValueError, match=r'records epoch -1; it must be an int >= 0'):
        training.fit(*_setup()[:3], 4, out=out, resume=True, quiet=True)


def test_resume_with_nothing_to_train_or_another_batch_size_is_refused(tmp_path):
    out = str(tmp_path / 'run')
    training.fit(*_setup()[:3], 4, out=out, quiet=True)
    for epochs in (3, 4):
        with pytest.raises(ValueError, match=f'nothing to train: the checkpoint in .* is at '
                                             f'epoch 4 and epochs={epochs} asks for no more'):
            training.fit(*_setup()[:3], epochs, out=out, resume=True, quiet=True)
    model, optimizer, _, _ = _setup()
    with pytest.raises(ValueError, match='trained with batch size 30, the loader has 50'):
        training.fit(model, optimizer, DataLoader(Spiral(), 50), 6, out=out, resume=True,
                     quiet=True)


def test_epoch_line_comes_after_its_checkpoint_and_progress_lines_without_a_terminal(tmp_path):
    out = str(tmp_path / 'run')
    seen = []

    def log(line):
        if line.startswith('epoch') and 'samples)' not in line:
            seen.append((line.split()[1], training.checkpoint_info(out)['epoch']))
        lines.append(line)
    lines = []
    model, optimizer, train_loader, _ = _setup()
    training.fit(model, optimizer, train_loader, 2, out=out, log=log, progress_every=0)
    assert seen == [('1', 1), ('2', 2)]
    progress = [line for line in lines if 'samples)' in line]
    assert len(progress) == 2 * 9  # after every batch but an epoch's last (progress_every=0)
    assert progress[0].startswith('epoch 1/2  10% (30/300 samples)  loss ')
    assert ' accuracy ' in progress[0] and ' samples/s  ETA ' in progress[0]
    assert progress[0].endswith(' in all') and progress[-1].endswith(' this epoch')
    quiet = []
    training.fit(*_setup()[:3], 1, log=quiet.append, quiet=True, progress_every=0)
    assert quiet == []


def test_time_based_checkpoints_and_bad_intervals(tmp_path):
    out = str(tmp_path / 'run')
    # log_every=50 alone saves at epochs 3 (the last) only; checkpoint_every=0 each epoch too.
    training.fit(*_setup()[:3], 3, out=out, quiet=True, log_every=50, checkpoint_every=1e9)
    assert training.checkpoint_info(out)['epoch'] == 3
    for name, value in (('checkpoint_every', -1), ('progress_every', float('nan'))):
        with pytest.raises(ValueError, match=f'fit: {name} must be a number of seconds >= 0'):
            training.fit(*_setup()[:3], 1, quiet=True, **{name: value})


@pytest.mark.parametrize('crash_in', ['history', 'checkpoint'])
def test_a_crash_in_either_write_of_a_save_loses_no_epoch(tmp_path, monkeypatch, crash_in):
    # A kill between the two files of a save, made certain: the third save dies in the
    # history's write or in the checkpoint's. A resume then ends with one record per epoch.
    from zerograd import checkpoints
    target = (training.History, 'save') if crash_in == 'history' else (checkpoints, 'save')
    real = getattr(*target)
    calls = [0]

    def dying(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 3:
            raise _Stop
        return real(*args, **kwargs)
    out = str(tmp_path / 'run')
    monkeypatch.setattr(*target, dying)
    with pytest.raises(_Stop):
        training.fit(*_setup()[:3], 5, out=out, quiet=True)
    monkeypatch.setattr(*target, real)
    straight = training.fit(*_setup()[:3], 5, quiet=True)
    history = training.fit(*_setup(seed=5)[:3], 5, out=out, resume=True, quiet=True)
    assert history['epoch'] == [1, 2, 3, 4, 5]
    assert history['train_loss'] == straight['train_loss']
    assert json.loads((tmp_path / 'run' / 'history.json').read_text()) == history.records
