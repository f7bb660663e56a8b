"""callbacks: fit's protocol, EarlyStopping, ModelCheckpoint and CSVLogger on real training
(Spiral), their states in fit's checkpoints, and exact resume with them."""
import csv
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from stopping import Stop, stopping_loss
from zerograd import DataLoader, optimizers, schedulers, training
from zerograd.callbacks import Callback, CSVLogger, EarlyStopping, ModelCheckpoint
from zerograd.datasets import Spiral
from zerograd.models import MLP

OLD_CHECKPOINT = Path(__file__).parent / 'data' / 'checkpoint_before_callbacks'


def _setup(seed=0, lr=1.0):
    """The book's spiral: MLP (10, 3), SGD, 300 training points in batches of 30."""
    np.random.seed(seed)
    model = MLP((10, 3))
    optimizer = optimizers.SGD(lr).setup(model)
    train_loader = DataLoader(Spiral(train=True), 30)
    test_loader = DataLoader(Spiral(train=False), 30, shuffle=False)
    return model, optimizer, train_loader, test_loader


def _weights(model):
    return {key: param.data.copy() for key, param in model.named_params().items()}


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def _timeless(history):
    """The records without the rate (a clock, different in every run)."""
    return [{k: v for k, v in r.items() if k != 'samples_per_second'} for r in history.records]


class Recorder(Callback):
    """Every call, in order; the weights at each epoch's end."""

    def __init__(self):
        self.calls, self.weights = [], {}

    def on_train_begin(self, model, optimizer):
        self.model = model
        self.calls.append(('train_begin', model, optimizer))

    def on_epoch_start(self, epoch):
        self.calls.append(('epoch_start', epoch))

    def on_batch_end(self, iteration, loss):
        self.calls.append(('batch_end', iteration, loss))

    def on_epoch_end(self, epoch, record):
        self.calls.append(('epoch_end', epoch, dict(record)))
        self.weights[epoch] = _weights(self.model)

    def on_train_end(self):
        self.calls.append(('train_end',))


class DecayPerUpdate(Callback):
    """A learning rate set after every update from the callback's own count (its state):
    a resume that lost the count would go on with the wrong rates."""

    def __init__(self, base=1.0, factor=0.995):
        self.base, self.factor, self.seen, self.iterations = base, factor, 0, []

    def on_train_begin(self, model, optimizer):
        self.optimizer = optimizer

    def on_batch_end(self, iteration, loss):
        self.seen += 1
        self.iterations.append(iteration)
        self.optimizer.lr = self.base * self.factor ** self.seen

    def on_epoch_end(self, epoch, record):
        record['lr'] = self.optimizer.lr

    def state_dict(self):
        return {'seen': self.seen}

    def load_state_dict(self, state):
        self.seen = state['seen']


def _keras_early_stop(values, patience, min_delta=0.0, mode='min'):
    """Keras's EarlyStopping rule over a list of per-epoch values: (the epoch it stops
    after or None, the best epoch)."""
    best, best_epoch, wait = (math.inf if mode == 'min' else -math.inf), 0, 0
    for epoch, value in enumerate(values, start=1):
        wait += 1
        if (value + min_delta < best) if mode == 'min' else (value - min_delta > best):
            best, best_epoch, wait = value, epoch, 0
            continue
        if wait >= patience and epoch > 1:
            return epoch, best_epoch
    return None, best_epoch


# =============================================================================
# The protocol in fit
# =============================================================================
def test_fit_calls_the_protocol_in_order_with_the_run_update_count_and_batch_losses():
    model, optimizer, train_loader, test_loader = _setup()
    recorder = Recorder()
    history = training.fit(model, optimizer, train_loader, 3, test_loader=test_loader,
                           quiet=True, callbacks=[recorder])
    calls = recorder.calls
    assert calls[0] == ('train_begin', model, optimizer) and calls[-1] == ('train_end',)
    kinds = [call[0] for call in calls[1:-1]]
    assert kinds == (['epoch_start'] + ['batch_end'] * 10 + ['epoch_end']) * 3
    batches = [call for call in calls if call[0] == 'batch_end']
    assert [call[1] for call in batches] == list(range(1, 31))
    assert all(type(call[2]) is float for call in batches)
    ends = [call for call in calls if call[0] == 'epoch_end']
    for epoch, (_, number, record) in enumerate(ends, start=1):
        assert number == epoch and record == history.records[epoch - 1]
        # Spiral's 300 points in 10 equal batches: the epoch's loss is their mean.
        losses = [call[2] for call in batches[10 * (epoch - 1):10 * epoch]]
        assert record['train_loss'] == pytest.approx(np.mean(losses), rel=1e-12)
    assert list(ends[0][2]) == ['epoch', 'train_loss', 'train_accuracy', 'samples_per_second',
                                'test_loss', 'test_accuracy']


def test_entries_a_callback_adds_to_the_record_are_kept_saved_and_printed(tmp_path):
    model, optimizer, train_loader, _ = _setup()
    decay = DecayPerUpdate()
    lines = []
    history = training.fit(model, optimizer, train_loader, 2, out=str(tmp_path), log=lines.append,
                           callbacks=[decay])
    assert history['lr'] == [0.995 ** 10, 0.995 ** 20]
    assert optimizer.lr == 0.995 ** 20
    saved = json.loads((tmp_path / 'history.json').read_text())
    assert [record['lr'] for record in saved] == history['lr']
    assert lines[0].startswith('epoch 1  train loss ')


def test_stop_training_ends_fit_after_that_epoch_saved_and_printed(tmp_path):
    class StopAt(Callback):
        def on_epoch_end(self, epoch, record):
            self.stop_training = epoch == 3

    model, optimizer, train_loader, _ = _setup()
    recorder, lines = Recorder(), []
    history = training.fit(model, optimizer, train_loader, 10, out=str(tmp_path),
                           log=lines.append, log_every=5, callbacks=[StopAt(), recorder])
    assert len(history) == 3 and history['epoch'] == [1, 2, 3]
    assert recorder.calls[-1] == ('train_end',)
    info = training.checkpoint_info(str(tmp_path))
    assert info['epoch'] == 3 and len(info['history']) == 3
    # log_every=5 prints epoch 5 and 10; a stop makes epoch 3 the last, printed.
    assert lines[0].startswith('epoch 3  train loss ')
    assert lines[1] == 'StopAt stopped training after epoch 3 of 10'


def test_callbacks_must_be_a_list_of_instances():
    model, optimizer, train_loader, _ = _setup()
    with pytest.raises(TypeError, match=r'fit: callbacks must be a list of callbacks, got '
                                        r'EarlyStopping \(wrap one in a list'):
        training.fit(model, optimizer, train_loader, 1, callbacks=EarlyStopping())
    with pytest.raises(TypeError, match=r'callbacks\[0\] is the class EarlyStopping, not a '
                                        r'callback; give an instance'):
        training.fit(model, optimizer, train_loader, 1, callbacks=[EarlyStopping])


def test_a_state_that_is_not_json_is_refused_naming_the_callback(tmp_path):
    class Bad(Callback):
        def state_dict(self):
            return {'array': np.zeros(2)}

    model, optimizer, train_loader, _ = _setup()
    with pytest.raises(TypeError, match=r'fit: Bad.state_dict\(\) \(callbacks\[0\]\) must '
                                        r'return a dict of JSON values'):
        training.fit(model, optimizer, train_loader, 1, out=str(tmp_path), quiet=True,
                     callbacks=[Bad()])


# =============================================================================
# EarlyStopping
# =============================================================================
@pytest.mark.parametrize('patience, min_delta', [(3, 0.0), (0, 0.0), (2, 0.01)])
def test_early_stopping_stops_where_keras_rule_says_on_real_test_losses(patience, min_delta):
    model, optimizer, train_loader, test_loader = _setup()
    full = training.fit(model, optimizer, train_loader, 40, test_loader=test_loader,
                        quiet=True)
    stop_epoch, best_epoch = _keras_early_stop(full['test_loss'], patience, min_delta)
    assert stop_epoch is not None and stop_epoch < 40  # the spiral's test loss wobbles

    model, optimizer, train_loader, test_loader = _setup()
    stopper = EarlyStopping('test_loss', patience=patience, min_delta=min_delta)
    history = training.fit(model, optimizer, train_loader, 40, test_loader=test_loader,
                           quiet=True, callbacks=[stopper])
    assert len(history) == stop_epoch == stopper.stopped_epoch
    assert _timeless(history) == _timeless(full)[:stop_epoch]
    assert stopper.best_epoch == best_epoch
    assert stopper.best == full['test_loss'][best_epoch - 1]
    assert stopper.wait == stop_epoch - best_epoch


def test_early_stopping_on_accuracy_maximizes_and_restores_the_best_weights():
    model, optimizer, train_loader, test_loader = _setup()
    recorder = Recorder()
    full = training.fit(model, optimizer, train_loader, 40, test_loader=test_loader,
                        quiet=True, callbacks=[recorder])
    stop_epoch, best_epoch = _keras_early_stop(full['test_accuracy'], 4, mode='max')
    assert stop_epoch is not None and best_epoch < stop_epoch

    model, optimizer, train_loader, test_loader = _setup()
    stopper = EarlyStopping('test_accuracy', patience=4, restore_best_weights=True)
    assert stopper.mode == 'max'  # 'auto' reads the name
    history = training.fit(model, optimizer, train_loader, 40, test_loader=test_loader,
                           quiet=True, callbacks=[stopper])
    assert len(history) == stop_epoch and stopper.best_epoch == best_epoch
    _assert_same_weights(_weights(model), recorder.weights[best_epoch])


def test_early_stopping_without_a_stop_keeps_the_last_weights():
    model, optimizer, train_loader, test_loader = _setup()
    recorder = Recorder()
    stopper = EarlyStopping('test_loss', patience=50, restore_best_weights=True)
    history = training.fit(model, optimizer, train_loader, 5, test_loader=test_loader,
                           quiet=True, callbacks=[stopper, recorder])
    assert len(history) == 5 and stopper.stopped_epoch == 0 and not stopper.stop_training
    _assert_same_weights(_weights(model), recorder.weights[5])  # Keras: restored on a stop


def test_early_stopping_errors():
    with pytest.raises(ValueError, match="EarlyStopping: mode must be 'min', 'max' or 'auto', "
                                         "got 'lowest'"):
        EarlyStopping(mode='lowest')
    with pytest.raises(ValueError, match=r'EarlyStopping: patience must be >= 0 \(epochs to '
                                         r'wait\), got -1'):
        EarlyStopping(patience=-1)
    with pytest.raises(TypeError, match='EarlyStopping: patience must be an int, got float 2.5'):
        EarlyStopping(patience=2.5)
    with pytest.raises(ValueError, match='min_delta must be a finite number >= 0, got -0.1'):
        EarlyStopping(min_delta=-0.1)
    with pytest.raises(ValueError, match="mode='auto' cannot tell whether 'lr' is better "
                                         "smaller or larger; give mode='min' or mode='max'"):
        EarlyStopping(monitor='lr')
    assert EarlyStopping('lr', mode='max').mode == 'max'


def test_a_monitor_missing_from_the_record_is_named_with_the_record_keys():
    model, optimizer, train_loader, _ = _setup()  # no test_loader: no test_loss
    with pytest.raises(ValueError, match=r"EarlyStopping: monitor 'test_loss' is not in the "
                                         r"epoch record, which holds \['epoch', 'train_loss', "
                                         r"'train_accuracy', 'samples_per_second'\] \(fit "
                                         r"records test_\* entries only with a test_loader\)"):
        training.fit(model, optimizer, train_loader, 2, quiet=True,
                     callbacks=[EarlyStopping('test_loss')])
    with pytest.raises(ValueError, match="ModelCheckpoint: monitor 'train_acc' is not in"):
        training.fit(model, optimizer, train_loader, 2, quiet=True,
                     callbacks=[ModelCheckpoint('unused.npz', monitor='train_acc')])


# =============================================================================
# ModelCheckpoint
# =============================================================================
@pytest.mark.parametrize('monitor', ['test_loss', 'test_accuracy'])
def test_model_checkpoint_keeps_the_weights_of_the_best_epoch(tmp_path, monitor):
    model, optimizer, train_loader, test_loader = _setup()
    recorder = Recorder()
    keep = ModelCheckpoint(str(tmp_path) + '/', monitor=monitor)  # a folder: best.npz
    history = training.fit(model, optimizer, train_loader, 15, test_loader=test_loader,
                           quiet=True, callbacks=[keep, recorder])
    values = history[monitor]
    best = min(values) if monitor == 'test_loss' else max(values)
    best_epoch = values.index(best) + 1  # the first epoch that reached it: ties do not count
    assert keep.best == best and keep.best_epoch == best_epoch
    assert keep.last_path == str(tmp_path / 'best.npz')
    assert keep.state_dict() == {'best': best, 'best_epoch': best_epoch,
                                 'last_path': keep.last_path}
    reloaded = MLP((10, 3))
    reloaded.load_weights(str(tmp_path / 'best.npz'))
    _assert_same_weights(_weights(reloaded), recorder.weights[best_epoch])
    assert sorted(p.name for p in tmp_path.iterdir()) == ['best.npz']  # no temporaries left


def test_model_checkpoint_every_epoch_into_named_files(tmp_path):
    model, optimizer, train_loader, test_loader = _setup()
    recorder = Recorder()
    keep = ModelCheckpoint(str(tmp_path / 'w-{epoch:02d}-{test_loss:.3f}'),
                           save_best_only=False)
    history = training.fit(model, optimizer, train_loader, 3, test_loader=test_loader,
                           quiet=True, callbacks=[keep, recorder])
    names = [f'w-{int(e):02d}-{loss:.3f}.npz' for e, loss in zip(history['epoch'],
                                                            history['test_loss'])]
    assert sorted(p.name for p in tmp_path.iterdir()) == names
    for epoch, name in enumerate(names, start=1):
        reloaded = MLP((10, 3))
        reloaded.load_weights(str(tmp_path / name))
        _assert_same_weights(_weights(reloaded), recorder.weights[epoch])


def test_model_checkpoint_errors():
    with pytest.raises(ValueError, match="ModelCheckpoint: mode must be 'min', 'max' or "
                                         "'auto', got 'up'"):
        ModelCheckpoint('best.npz', mode='up')
    with pytest.raises(TypeError, match='ModelCheckpoint: path must be a file or folder name'):
        ModelCheckpoint(None)
    assert ModelCheckpoint('run/best').path == 'run/best.npz'


# =============================================================================
# CSVLogger
# =============================================================================
def _read_csv(path):
    with open(path, newline='') as file:
        return list(csv.reader(file))


def test_csv_logger_writes_each_record_to_the_last_bit(tmp_path):
    path = tmp_path / 'log.csv'
    path.write_text('an older run\n')
    model, optimizer, train_loader, test_loader = _setup()
    history = training.fit(model, optimizer, train_loader, 3, test_loader=test_loader,
                           quiet=True, callbacks=[CSVLogger(str(path))])
    rows = _read_csv(path)
    assert rows[0] == ['epoch', 'train_loss', 'train_accuracy', 'samples_per_second',
                       'test_loss', 'test_accuracy']
    assert len(rows) == 4
    for row, record in zip(rows[1:], history.records):
        assert row[0] == str(int(record['epoch']))
        assert [float(v) for v in row[1:]] == [record[k] for k in rows[0][1:]]


def test_csv_logger_adds_a_column_for_an_entry_that_appears_later(tmp_path):
    class LateEntry(Callback):
        def on_epoch_end(self, epoch, record):
            if epoch >= 2:
                record['lr'] = 0.5 * epoch
            if epoch == 3:
                del record['train_accuracy']

    path = tmp_path / 'log.csv'
    model, optimizer, train_loader, _ = _setup()
    training.fit(model, optimizer, train_loader, 3, quiet=True,
                 callbacks=[LateEntry(), CSVLogger(str(path))])
    rows = _read_csv(path)
    assert rows[0] == ['epoch', 'train_loss', 'train_accuracy', 'samples_per_second', 'lr']
    assert [row[4] for row in rows[1:]] == ['', '1.0', '1.5']
    assert rows[3][2] == '' and rows[1][2] != ''


# =============================================================================
# Resume with callbacks
# =============================================================================
def _callbacks(folder):
    return [DecayPerUpdate(factor=0.999),
            EarlyStopping('test_loss', patience=3, restore_best_weights=True),
            ModelCheckpoint(str(folder / 'best.npz')), CSVLogger(str(folder / 'log.csv'))]


@pytest.mark.parametrize('stop_after', [4, 145, 199])
def test_a_run_with_callbacks_stopped_and_resumed_is_bit_for_bit_the_straight_run(
        tmp_path, stop_after):
    # Each epoch: 10 training and 10 test loss calls. Stopped in epoch 1, in the middle of
    # epoch 8, and in epoch 10's evaluation (after its last update), with a checkpoint
    # after every batch; resumed with new callbacks, in a new generator state.
    straight_dir, run_dir = tmp_path / 'straight', tmp_path / 'run'
    straight_dir.mkdir()
    model, optimizer, train_loader, test_loader = _setup()
    callbacks = _callbacks(straight_dir)
    straight = training.fit(model, optimizer, train_loader, 40, test_loader=test_loader,
                            quiet=True, callbacks=callbacks)
    assert 10 < len(straight) < 40  # stopped early, after the interruptions below

    first, opt1, loader1, test1 = _setup()
    run_dir.mkdir()
    with pytest.raises(Stop):
        training.fit(first, opt1, loader1, 40, test_loader=test1, out=str(run_dir),
                     quiet=True, checkpoint_every=0, loss_fn=stopping_loss(stop_after),
                     callbacks=_callbacks(run_dir))
    np.random.seed(12345)
    resumed, opt2, loader2, test2 = _setup(seed=777)
    again = _callbacks(run_dir)
    history = training.fit(resumed, opt2, loader2, 40, test_loader=test2, out=str(run_dir),
                           resume=True, quiet=True, callbacks=again)

    _assert_same_weights(_weights(resumed), _weights(model))
    assert _timeless(history) == _timeless(straight)
    assert opt2.lr == optimizer.lr
    saved = training.checkpoint_info(str(run_dir))['state']['callbacks']
    assert [entry['class'] for entry in saved] == ['DecayPerUpdate', 'EarlyStopping',
                                                   'ModelCheckpoint', 'CSVLogger']
    assert saved[0]['state'] == {'seen': 10 * len(straight)}
    # The iterations continue the run's count where the checkpoint left it.
    assert again[0].iterations == list(range(again[0].iterations[0], 10 * len(straight) + 1))
    for mine, theirs in zip(again[1:3], callbacks[1:3]):
        assert (mine.best, mine.best_epoch) == (theirs.best, theirs.best_epoch)
    assert again[1].stopped_epoch == callbacks[1].stopped_epoch == len(straight)
    best, best_again = MLP((10, 3)), MLP((10, 3))
    best.load_weights(str(straight_dir / 'best.npz'))
    best_again.load_weights(str(run_dir / 'best.npz'))
    _assert_same_weights(_weights(best), _weights(best_again))
    rows, rows_again = _read_csv(straight_dir / 'log.csv'), _read_csv(run_dir / 'log.csv')
    rate = rows[0].index('samples_per_second')
    assert rows_again[0] == rows[0] and len(rows_again) == len(rows) == len(straight) + 1
    assert [r[:rate] + r[rate + 1:] for r in rows_again] == [r[:rate] + r[rate + 1:]
                                                              for r in rows]


def test_csv_rows_after_the_checkpoint_are_cut_on_resume(tmp_path):
    path = tmp_path / 'log.csv'
    model, optimizer, train_loader, _ = _setup()
    training.fit(model, optimizer, train_loader, 2, out=str(tmp_path), quiet=True,
                 callbacks=[CSVLogger(str(path))])
    with open(path, 'a', newline='') as file:  # a row written just before a kill
        file.write('3,9,9,9\r\n')
    model, optimizer, train_loader, _ = _setup()
    training.fit(model, optimizer, train_loader, 3, out=str(tmp_path), resume=True,
                 quiet=True, callbacks=[CSVLogger(str(path))])
    rows = _read_csv(path)
    assert [row[0] for row in rows] == ['epoch', '1', '2', '3'] and rows[3][1] != '9'


def test_a_resume_with_other_callbacks_is_refused_before_anything_loads(tmp_path):
    model, optimizer, train_loader, _ = _setup()
    training.fit(model, optimizer, train_loader, 1, out=str(tmp_path), quiet=True,
                 callbacks=[CSVLogger(str(tmp_path / 'log.csv'))])
    for callbacks in ([], [EarlyStopping('train_loss')],
                      [CSVLogger(str(tmp_path / 'log.csv')), EarlyStopping('train_loss')]):
        model, optimizer, train_loader, _ = _setup(seed=5)
        before = _weights(model) if model.l0.W.data is not None else None
        names = [type(c).__name__ for c in callbacks]
        with pytest.raises(ValueError, match=r"was saved with the callbacks \['CSVLogger'\], "
                                             rf"this run has {re.escape(str(names))}; a resume "
                                             'continues the saved run with the same callbacks'):
            training.fit(model, optimizer, train_loader, 2, out=str(tmp_path), resume=True,
                         quiet=True, callbacks=callbacks)
        assert before is None and model.l0.W.data is None  # nothing was loaded


def test_a_checkpoint_from_before_callbacks_resumes_bit_for_bit(tmp_path):
    # tests/data/checkpoint_before_callbacks: 2 epochs of fit by the code before callbacks
    # (see its README). Resumed to 3, it must equal a new uninterrupted 3-epoch run.
    out = tmp_path / 'old'
    shutil.copytree(OLD_CHECKPOINT, out)

    def setup():
        np.random.seed(0)
        model = MLP((10, 3))
        return model, optimizers.Adam(0.01).setup(model), DataLoader(Spiral(train=True), 30)

    model, optimizer, loader = setup()
    straight = training.fit(model, optimizer, loader, 3, quiet=True)
    old = json.loads((OLD_CHECKPOINT / 'history.json').read_text())
    assert [{k: v for k, v in r.items() if k != 'samples_per_second'} for r in old] \
        == _timeless(straight)[:2]

    np.random.seed(99)
    resumed, opt2, loader2 = setup()
    recorder, lines = Recorder(), []
    history = training.fit(resumed, opt2, loader2, 3, out=str(out), resume=True,
                           log=lines.append, callbacks=[recorder])
    _assert_same_weights(_weights(resumed), _weights(model))
    assert _timeless(history) == _timeless(straight)
    assert lines[1] == ('the checkpoint holds no callback state (written before callbacks '
                        'existed): Recorder start afresh')
    # The run's update count goes on from the 20 updates of the two saved epochs.
    assert [call[1] for call in recorder.calls if call[0] == 'batch_end'] == list(range(21, 31))
    assert training.checkpoint_info(str(out))['state']['callbacks'] == [
        {'class': 'Recorder', 'state': {}}]
    assert (OLD_CHECKPOINT / 'checkpoint.npz').stat().st_size == 9331  # left as it was



# =============================================================================
# Data-parallel fit
# =============================================================================
def test_every_rank_runs_the_callbacks_with_one_record_and_rank_zero_alone_writes(tmp_path):
    from test_training_distributed import _Arrays, _shard, _spiral, run_ranks
    x, t = _spiral(240)
    test = Spiral(train=False)

    def work(comm):
        np.random.seed(comm.rank)
        model = MLP((10, 3))
        folder = tmp_path / f'rank{comm.rank}'
        recorder = Recorder()
        stopper = EarlyStopping('test_accuracy', patience=2)
        history = training.fit(
            model, optimizers.SGD(1.0).setup(model),
            DataLoader(_shard(x, t, 12, comm.rank, comm.size), 12, shuffle=False), 40,
            test_loader=DataLoader(_Arrays(test.data[comm.rank::2], test.label[comm.rank::2]),
                                   30, shuffle=False),
            comm=comm, quiet=True,
            callbacks=[stopper, ModelCheckpoint(str(folder) + '/'),
                       CSVLogger(str(folder / 'log.csv')), recorder])
        return history, stopper.stopped_epoch, recorder, _weights(model)

    (h0, stop0, rec0, w0), (h1, stop1, rec1, w1) = run_ranks(2, work)
    assert 1 < stop0 == stop1 == len(h0) == len(h1) < 40
    assert h0.records == h1.records  # the same records, samples/s included (rank 0's)
    assert [c for c in rec0.calls if c[0] == 'epoch_end'] == \
        [c for c in rec1.calls if c[0] == 'epoch_end']
    _assert_same_weights(w0, w1)
    assert sorted(p.name for p in (tmp_path / 'rank0').iterdir()) == ['best.npz', 'log.csv']
    assert not (tmp_path / 'rank1').exists()
    assert len(_read_csv(tmp_path / 'rank0' / 'log.csv')) == len(h0) + 1


SCHEDULES = {
    'cosine-per-update': lambda optimizer: schedulers.CosineAnnealingLR(
        optimizer, T_max=60, warmup_steps=15, interval='iteration'),
    'plateau': lambda optimizer: schedulers.ReduceLROnPlateau(
        optimizer, 'test_loss', patience=0, factor=0.7),
    'step': lambda optimizer: schedulers.StepLR(optimizer, step_size=2, gamma=0.8),
}


@pytest.mark.parametrize('stop_after', [37, 115])
@pytest.mark.parametrize('kind', sorted(SCHEDULES))
def test_a_run_with_a_real_schedule_stopped_mid_epoch_resumes_bit_for_bit(tmp_path, kind,
                                                                         stop_after):
    """zerograd.schedulers in fit, killed mid-epoch (in epoch 2 or 6) and resumed: the
    same weights, history and learning rate as the straight run."""
    model, optimizer, train_loader, test_loader = _setup()
    straight = training.fit(model, optimizer, train_loader, 15, test_loader=test_loader,
                            quiet=True, callbacks=[SCHEDULES[kind](optimizer)])
    first, opt1, loader1, test1 = _setup()
    with pytest.raises(Stop):
        training.fit(first, opt1, loader1, 15, test_loader=test1, out=str(tmp_path),
                     quiet=True, checkpoint_every=0, loss_fn=stopping_loss(stop_after),
                     callbacks=[SCHEDULES[kind](opt1)])
    resumed, opt2, loader2, test2 = _setup(seed=777)
    history = training.fit(resumed, opt2, loader2, 15, test_loader=test2, out=str(tmp_path),
                           resume=True, quiet=True, callbacks=[SCHEDULES[kind](opt2)])
    _assert_same_weights(_weights(resumed), _weights(model))
    assert _timeless(history) == _timeless(straight)
    assert opt2.lr == optimizer.lr
    assert len(set(history['lr'])) > 2  # the rate really moved


def test_two_schedules_on_one_optimizer_are_refused():
    model, optimizer, train_loader, _ = _setup()
    with pytest.raises(ValueError, match=r'fit: one learning-rate schedule drives an '
                                         r'optimizer, got 2 \(StepLR, ExponentialLR\)'):
        training.fit(model, optimizer, train_loader, 1, quiet=True,
                     callbacks=[schedulers.StepLR(optimizer, 1),
                                schedulers.ExponentialLR(optimizer, 0.9)])
