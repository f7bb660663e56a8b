"""TensorBoardLogger: the event files it writes, read back with TensorBoard's own reader.

The callback is driven the way ``training.fit`` drives it (callbacks.py's protocol), on a
small MLP trained on the spiral; the values read back are compared with what training
produced: the History's numbers (to float32, TensorBoard's precision), the parameters'
sizes and extremes, the Functions of the graph.
"""
import os
import sys

import numpy as np
import pytest

pytest.importorskip('tensorboardX')
pytest.importorskip('tensorboard')
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

import zerograd.functions as F  # noqa: E402
from zerograd import layers as L  # noqa: E402
from zerograd import models, optimizers, training  # noqa: E402
from zerograd.dataloaders import DataLoader  # noqa: E402
from zerograd.datasets import Spiral  # noqa: E402
from zerograd.tensorboard import TensorBoardLogger, graph_def  # noqa: E402

KEEP_ALL = {'scalars': 0, 'histograms': 0, 'compressedHistograms': 0, 'graph': 0,
            'tensors': 0}


def read(log_dir):
    """TensorBoard's reader over one run folder, keeping every event."""
    accumulator = EventAccumulator(str(log_dir), size_guidance=KEEP_ALL)
    accumulator.Reload()
    return accumulator


def scalars(accumulator, tag):
    return [(event.step, event.value) for event in accumulator.Scalars(tag)]


def train_by_hand(logger, epochs, model, optimizer, start_epoch=0, iteration=0,
                  history=None):
    """fit's loop, calling the callback at the points fit does; returns the History,
    the batch losses by update number and the last update number."""
    np.random.seed(0)
    train_loader = DataLoader(Spiral(), 30, shuffle=True)
    test_loader = DataLoader(Spiral(train=False), 100, shuffle=False)
    history = training.History() if history is None else history
    batch_losses = {}
    logger.on_train_begin(model, optimizer)
    for epoch in range(start_epoch + 1, epochs + 1):
        logger.on_epoch_start(epoch)
        total = sum_loss = sum_accuracy = 0.0
        for x, t in train_loader:
            y = model(x)
            loss = F.softmax_cross_entropy(y, t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
            iteration += 1
            batch_losses[iteration] = float(loss.data)
            total += len(x)
            sum_loss += float(loss.data) * len(x)
            sum_accuracy += float(F.accuracy(y, t).data) * len(x)
            logger.on_batch_end(iteration, float(loss.data))
        record = {'epoch': epoch, 'train_loss': sum_loss / total,
                  'train_accuracy': sum_accuracy / total, 'samples_per_second': 1234.5}
        test = training.evaluate(model, test_loader)
        record.update({f'test_{name}': value for name, value in test.items()})
        logger.on_epoch_end(epoch, record)
        history.append(**record)
    logger.on_train_end()
    return history, batch_losses, iteration


def small_model():
    np.random.seed(1)
    model = models.MLP((10, 3), activation=F.relu)
    return model, optimizers.SGD(1.0).setup(model)


def test_epoch_scalars_equal_the_history_to_float32(tmp_path):
    model, optimizer = small_model()
    history, _, _ = train_by_hand(TensorBoardLogger(str(tmp_path)), 3, model, optimizer)
    events = read(tmp_path)
    names = {'loss/train': 'train_loss', 'accuracy/train': 'train_accuracy',
             'loss/test': 'test_loss', 'accuracy/test': 'test_accuracy',
             'samples_per_second': 'samples_per_second'}
    for tag, name in names.items():
        steps, values = zip(*scalars(events, tag))
        assert steps == (1, 2, 3)
        np.testing.assert_array_equal(np.float32(values), np.float32(history[name]))
    # The optimizer's learning rate, since the record holds none.
    assert scalars(events, 'lr') == [(1, 1.0), (2, 1.0), (3, 1.0)]
    assert 'epoch' not in events.Tags()['scalars']


def test_a_learning_rate_in_the_record_is_written_instead_of_the_optimizers(tmp_path):
    model, optimizer = small_model()
    logger = TensorBoardLogger(str(tmp_path), histograms=False)
    logger.on_train_begin(model, optimizer)
    logger.on_epoch_end(1, {'epoch': 1, 'train_loss': 0.5, 'lr': 0.25, 'note': 'text'})
    logger.on_train_end()
    events = read(tmp_path)
    assert scalars(events, 'lr') == [(1, 0.25)]
    assert sorted(events.Tags()['scalars']) == ['loss/train', 'lr']
    assert events.Tags()['histograms'] == []


def test_histograms_hold_every_parameter_and_its_gradient(tmp_path):
    model, optimizer = small_model()
    train_by_hand(TensorBoardLogger(str(tmp_path)), 2, model, optimizer)
    events = read(tmp_path)
    params = model.named_params()
    assert sorted(events.Tags()['histograms']) == sorted(
        [key for key in params] + [key + '/grad' for key in params])
    for key, param in params.items():
        for tag, array in ((key, param.data), (key + '/grad', param.grad.data)):
            written = events.Histograms(tag)
            assert [event.step for event in written] == [1, 2]
            last = written[-1].histogram_value
            assert last.num == array.size
            assert last.min == float(array.min()) and last.max == float(array.max())
            assert sum(last.bucket) == array.size
            np.testing.assert_allclose(last.sum, float(array.astype(np.float64).sum()),
                                       rtol=1e-6, atol=1e-9)


def test_batch_loss_every_n_updates_in_the_batches_run(tmp_path):
    model, optimizer = small_model()
    logger = TensorBoardLogger(str(tmp_path), histograms=False, batch_every=4)
    _, batch_losses, last = train_by_hand(logger, 2, model, optimizer)
    assert last == 20  # 300 examples, batches of 30, 2 epochs
    written = scalars(read(tmp_path / 'batches'), 'batch/loss')
    assert [step for step, _ in written] == [4, 8, 12, 16, 20]
    np.testing.assert_array_equal(np.float32([value for _, value in written]),
                                  np.float32([batch_losses[step] for step, _ in written]))
    assert 'batch/loss' not in read(tmp_path).Tags()['scalars']


def test_graph_has_a_node_per_function_parameter_and_input(tmp_path):
    model, optimizer = small_model()
    x = Spiral().data[:5]
    logger = TensorBoardLogger(str(tmp_path), histograms=False, example_input=x)
    train_by_hand(logger, 1, model, optimizer)  # lazy weights: drawn at epoch 1's end
    nodes = {node.name: node for node in read(tmp_path).Graph().node}
    assert {name: node.op for name, node in nodes.items()} == {
        'input': 'Input', 'l0/W': 'Parameter', 'l0/b': 'Parameter', 'l0/Linear': 'Linear',
        'ReLU': 'ReLU', 'l1/W': 'Parameter', 'l1/b': 'Parameter', 'l1/Linear': 'Linear'}
    assert list(nodes['l0/Linear'].input) == ['input', 'l0/W', 'l0/b']
    assert list(nodes['ReLU'].input) == ['l0/Linear']
    assert list(nodes['l1/Linear'].input) == ['ReLU', 'l1/W', 'l1/b']
    shapes = {name: [[d.size for d in shape.dim]
                     for shape in node.attr['_output_shapes'].list.shape]
              for name, node in nodes.items()}
    assert shapes['input'] == [[5, 2]] and shapes['l0/W'] == [[2, 10]]
    assert shapes['ReLU'] == [[5, 10]] and shapes['l1/Linear'] == [[5, 3]]


def test_graph_of_shared_layers_and_several_outputs_names_each_node_once():
    layer = L.Linear(4, in_size=3)

    def model(x):
        h = layer(x)
        return F.tanh(h) * h, layer(h[:, :3])  # layer used twice: two Linear nodes

    outputs = model(np.ones((2, 3), np.float32))
    nodes = graph_def(outputs, {'fc/W': layer.W, 'fc/b': layer.b}).node
    names = [node.name for node in nodes]
    assert len(names) == len(set(names))
    ops = sorted(node.op for node in nodes)
    assert ops.count('Linear') == 2 and ops.count('Parameter') == 2
    assert {'Tanh', 'Mul', 'GetItem', 'Input'} <= set(ops)
    assert sorted(n for n in names if n.startswith('fc/Linear')) == ['fc/Linear', 'fc/Linear_1']
    with pytest.raises(TypeError, match='graph_def: outputs must be Variables'):
        graph_def([np.ones(2)])


def test_add_graph_leaves_training_as_it_was(tmp_path):
    """Test mode (no dropout draw, batch norm's statistics kept) and NumPy's random state
    put back: a run with the graph is the run without it."""
    class Net(models.Model):
        def __init__(self):
            super().__init__()
            self.fc = L.Linear(4, in_size=3)
            self.bn = L.BatchNorm()

        def forward(self, x):
            return F.dropout(self.bn(self.fc(x)), 0.5)

    np.random.seed(3)
    net = Net()
    net(np.random.randn(8, 3).astype(np.float32))  # create batch norm's statistics
    mean = net.bn.avg_mean.data.copy()
    state = np.random.get_state()
    logger = TensorBoardLogger(str(tmp_path), example_input=np.ones((2, 3), np.float32))
    logger.on_train_begin(net, None)
    logger.on_train_end()
    ops = {node.op for node in read(tmp_path).Graph().node}
    assert {'Linear', 'BatchNorm'} <= ops
    np.testing.assert_array_equal(net.bn.avg_mean.data, mean)
    after = np.random.get_state()
    assert after[0] == state[0] and np.array_equal(after[1], state[1]) and after[2:] == state[2:]


def test_a_resume_replaces_the_epochs_trained_again(tmp_path):
    """A resume from epoch 1 writes epochs 2 and 3 again into the same folder; TensorBoard
    shows the new values only, one per step (the restart mark at epoch 2)."""
    model, optimizer = small_model()
    first = TensorBoardLogger(str(tmp_path), histograms=False, batch_every=5)
    train_by_hand(first, 3, model, optimizer)  # epochs 1, 2, 3: then 'crashed'
    before = scalars(read(tmp_path), 'loss/train')
    records = [{'epoch': 1, 'train_loss': before[0][1]}]
    model, optimizer = small_model()  # stands for the checkpoint of epoch 1
    second = TensorBoardLogger(str(tmp_path), histograms=False, batch_every=5)
    history, batch_losses, _ = train_by_hand(second, 3, model, optimizer, start_epoch=1,
                                             iteration=10, history=training.History(records))
    assert len(os.listdir(tmp_path)) == 3  # two event files and 'batches'
    after = scalars(read(tmp_path), 'loss/train')
    assert [step for step, _ in after] == [1, 2, 3]
    assert after[0] == before[0]
    np.testing.assert_array_equal(np.float32([v for _, v in after]),
                                  np.float32(history['train_loss']))
    assert after[1:] != before[1:]  # the values of the second run, not the first's
    batches = scalars(read(tmp_path / 'batches'), 'batch/loss')
    assert [step for step, _ in batches] == [5, 10, 15, 20, 25, 30]
    np.testing.assert_array_equal(np.float32([v for s, v in batches if s > 10]),
                                  np.float32([batch_losses[s] for s in (15, 20, 25, 30)]))


def test_only_rank_0_writes(tmp_path):
    class Rank1:
        rank, size = 1, 2

    model, optimizer = small_model()
    logger = TensorBoardLogger(str(tmp_path / 'run'), batch_every=1, comm=Rank1(),
                               example_input=np.ones((1, 2), np.float32))
    train_by_hand(logger, 1, model, optimizer)
    assert not (tmp_path / 'run').exists()


def test_arguments_are_checked():
    with pytest.raises(ValueError, match='TensorBoardLogger: batch_every must be an int >= 0'):
        TensorBoardLogger('runs', batch_every=-1)
    with pytest.raises(TypeError, match='TensorBoardLogger: log_dir must be a path'):
        TensorBoardLogger(3)


def test_without_tensorboardx_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, 'tensorboardX', None)  # import fails
    with pytest.raises(ImportError, match=r"pip install 'zerograd\[tensorboard\]'"):
        TensorBoardLogger('runs')


def test_fit_with_the_logger_writes_the_history(tmp_path):
    """Through training.fit(callbacks=[...]) itself (the protocol's real caller)."""
    np.random.seed(0)
    model, optimizer = small_model()
    train_loader = DataLoader(Spiral(), 30)
    test_loader = DataLoader(Spiral(train=False), 100, shuffle=False)
    logger = TensorBoardLogger(str(tmp_path), batch_every=10,
                               example_input=Spiral().data[:2])
    history = training.fit(model, optimizer, train_loader, 3, test_loader=test_loader,
                           quiet=True, callbacks=[logger])
    events = read(tmp_path)
    for tag, name in (('loss/train', 'train_loss'), ('accuracy/test', 'test_accuracy')):
        steps, values = zip(*scalars(events, tag))
        assert steps == (1, 2, 3)
        np.testing.assert_array_equal(np.float32(values), np.float32(history[name]))
    last = events.Histograms('l1/W')[-1].histogram_value
    assert (last.num, last.min, last.max) == (
        model.l1.W.data.size, float(model.l1.W.data.min()), float(model.l1.W.data.max()))
    assert {'Linear', 'ReLU'} <= {node.op for node in events.Graph().node}
    assert [s for s, _ in scalars(read(tmp_path / 'batches'), 'batch/loss')] == [10, 20, 30]


def test_the_docs_example_runs_and_logs_its_history(tmp_path, monkeypatch, capsys):
    """docs/tensorboard.md's Python block, run as it is (it trains through fit)."""
    import re
    doc = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'docs',
                       'tensorboard.md')
    with open(doc, encoding='utf-8') as file:
        blocks = re.findall(r'```python\n(.*?)```', file.read(), re.S)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(blocks[0], doc, 'exec'), namespace)
    assert float(capsys.readouterr().out) > 0.5  # the spiral is learnt
    events = read(tmp_path / 'runs' / 'spiral')
    steps, values = zip(*scalars(events, 'loss/test'))
    assert steps == tuple(range(1, 21))
    np.testing.assert_array_equal(np.float32(values),
                                  np.float32(namespace['history']['test_loss']))
    assert {'Linear', 'ReLU', 'Parameter', 'Input'} == {node.op for node in events.Graph().node}
