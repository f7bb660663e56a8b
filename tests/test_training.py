"""training: the loop, exact resume, the history and the pictures."""
import json

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import DataLoader, optimizers, training
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
