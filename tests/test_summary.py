"""zerograd.summary: model.summary(x) (output shapes, parameter counts, memory), the layer
table of Layer._repr_html_, and a Variable's graph as SVG (Variable._repr_svg_)."""
import warnings

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from zerograd import Layer, Variable, summary as summary_module
from zerograd.models import VGG16, Sequential
from zerograd.summary import Summary, graph_svg, layer_table_html, summary


def _flatten(x):
    return F.reshape(x, (x.shape[0], -1))


def _pool(x):
    return F.pooling(x, 2, stride=2)


def small_cnn():
    return Sequential(L.Conv2d(8, kernel_size=3, pad=1), L.BatchNorm(), F.relu, _pool,
                      L.Conv2d(4, kernel_size=3, stride=2, pad=1, nobias=True), _flatten,
                      L.Linear(10))


def test_vgg16_summary_counts_138357544_parameters():
    np.random.seed(0)
    model = VGG16()
    result = model.summary(np.zeros((1, 3, 224, 224), dtype=np.float32))
    assert isinstance(result, Summary)
    assert result.total_params == 138_357_544  # the published count (Simonyan, Zisserman)
    assert result.trainable_params == 138_357_544 and result.non_trainable_params == 0
    assert result.param_bytes == 138_357_544 * 4
    rows = {row.name: row for row in result.rows}
    assert result.rows[0].name == '' and result.rows[0].type == 'VGG16'
    assert result.rows[0].output_shape == (1, 1000) and result.rows[0].depth == 0
    channels = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    names = ['conv1_1', 'conv1_2', 'conv2_1', 'conv2_2', 'conv3_1', 'conv3_2', 'conv3_3',
             'conv4_1', 'conv4_2', 'conv4_3', 'conv5_1', 'conv5_2', 'conv5_3']
    for i, name in enumerate(names):
        C, OC = channels[i], channels[i + 1]
        size = 224 >> int(name[4]) - 1
        assert rows[name].params == (C * 9 + 1) * OC, name
        assert rows[name].output_shape == (1, OC, size, size), name
        assert rows[name].depth == 1 and rows[name].type == 'Conv2d'
    assert rows['fc6'].params == 512 * 7 * 7 * 4096 + 4096
    assert rows['fc8'].output_shape == (1, 1000)
    assert sum(row.params for row in result.rows) == result.total_params
    text = str(result)
    assert 'Total params: 138,357,544' in text and 'fc6 (Linear)' in text
    assert '(1, 64, 224, 224)' in text and '102,764,544' in text


def test_small_cnn_counts_and_shapes_match_torch():
    torch = pytest.importorskip('torch')
    model = small_cnn()
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    result = summary(model, x)
    reference = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 4, 3, stride=2, padding=1, bias=False),
        torch.nn.Flatten(), torch.nn.Linear(16, 10))
    shapes = {}
    for i, module in enumerate(reference):
        module.register_forward_hook(
            lambda m, inputs, output, i=i: shapes.__setitem__(i, tuple(output.shape)))
    reference(torch.from_numpy(x))
    rows = {row.name: row for row in result.rows}
    assert [row.name for row in result.rows] == ['', 'l0', 'l1', 'l4', 'l6']
    for i in (0, 1, 4, 6):
        module = reference[i]
        assert rows[f'l{i}'].trainable == sum(p.numel() for p in module.parameters())
        buffers = sum(b.numel() for name, b in module.named_buffers()
                      if name != 'num_batches_tracked')  # PyTorch's counter: not a weight
        assert rows[f'l{i}'].params == rows[f'l{i}'].trainable + buffers
        assert rows[f'l{i}'].output_shape == shapes[i]
    assert result.trainable_params == sum(p.numel() for p in reference.parameters())
    assert result.non_trainable_params == 16  # BatchNorm's running mean and variance
    assert result.rows[0].output_shape == (2, 10)
    assert result.input_bytes == x.nbytes
    # The outputs of the innermost calls (the layers, not the Sequential around them).
    assert result.output_bytes == 4 * (2 * 8 * 8 * 8 * 2 + 2 * 4 * 2 * 2 + 2 * 10)


def test_summary_changes_no_running_statistics_no_rng_and_keeps_no_graph():
    model = Sequential(L.Linear(6), L.BatchNorm(), F.dropout, L.Linear(2))
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    model(x)  # created, statistics moved once
    before = model.state_dict()
    rng_state = np.random.get_state()
    result = model.summary(x)
    after = model.state_dict()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])
    assert np.array_equal(np.random.get_state()[1], rng_state[1])  # dropout drew nothing
    assert model.l3.outputs[0]() is None  # no graph kept the output alive
    assert result.total_params == 3 * 6 + 6 + 4 * 6 + 6 * 2 + 2
    assert result.trainable_params == result.total_params - 12
    assert zerograd.Config.train and zerograd.Config.enable_backprop
    assert summary_module.layers._call_observers == []


def test_summary_creates_lazy_parameters_and_then_counts_them():
    model = Sequential(L.Linear(5), L.Linear(3))
    assert model.l0.W.data is None
    result = summary(model, np.zeros((2, 7), np.float32))
    assert model.l0.W.data.shape == (7, 5)
    assert result.total_params == 7 * 5 + 5 + 5 * 3 + 3


def test_summary_shows_a_repeated_layer_once_in_the_totals():
    shared = L.Linear(4, in_size=4)

    class Twice(Layer):
        def __init__(self):
            super().__init__()
            self.block = shared

        def forward(self, x):
            return self.block(self.block(x))

    result = Twice().summary(np.zeros((1, 4), np.float32))
    assert [(row.name, row.repeated, row.params) for row in result.rows] == [
        ('', False, 0), ('block', False, 20), ('block', True, 0)]
    assert result.total_params == 20
    assert '(repeated)' in str(result)


def test_summary_depth_hides_deeper_rows_but_not_from_the_totals():
    inner = Sequential(L.Linear(3, in_size=2))
    model = Sequential(inner, L.Linear(1, in_size=3))
    full = summary(model, np.zeros((1, 2), np.float32))
    assert [(row.name, row.depth) for row in full.rows] == [
        ('', 0), ('l0', 1), ('l0/l0', 2), ('l1', 1)]
    shallow = summary(model, np.zeros((1, 2), np.float32), depth=1)
    assert [row.name for row in shallow.rows] == ['', 'l0', 'l1']
    assert shallow.total_params == full.total_params == 2 * 3 + 3 + 3 + 1


def test_summary_html_is_a_table_with_the_rows_and_totals():
    result = summary(small_cnn(), np.zeros((1, 3, 8, 8), np.float32))
    page = result._repr_html_()
    assert page.startswith('<table>') and page.endswith('</table>')
    assert page.count('<tr>') == 1 + len(result.rows) + 7
    assert 'l1 (BatchNorm)' in page and f'{result.total_params:,}' in page


def test_summary_after_a_failing_forward_leaves_no_observer():
    model = Sequential(L.Linear(3, in_size=2))
    with pytest.raises(ValueError, match='Linear: input has 5 features'):
        summary(model, np.zeros((1, 5), np.float32))
    assert summary_module.layers._call_observers == []


def test_summary_argument_errors():
    with pytest.raises(TypeError, match='summary: model must be a Layer'):
        summary(F.relu, np.zeros(1))
    with pytest.raises(ValueError, match='depth must be None or an int >= 0, got -1'):
        summary(Sequential(), np.zeros(1), depth=-1)


# -----------------------------------------------------------------------------
# Layer._repr_html_: the tree without a forward
# -----------------------------------------------------------------------------
def test_layer_html_table_shows_lazy_and_created_parameters_without_running():
    model = Sequential(L.Linear(100), F.relu, L.Linear(10, in_size=100))
    page = model._repr_html_()
    assert page == layer_table_html(model)
    assert page.startswith('<table>') and '<th' in page
    assert 'W: (?, 100) not created' in page and 'W: (100, 10)' in page
    assert '>relu<' in page
    assert '1,010' in page  # l2's 100 * 10 + 10, the only created weights besides l0's b
    assert 'Parameters not created yet' in page
    assert model.l0.W.data is None  # nothing ran


# -----------------------------------------------------------------------------
# Variable._repr_svg_
# -----------------------------------------------------------------------------
def test_a_computed_variable_draws_its_graph_as_svg():
    x = Variable(np.ones(3), name='x')
    y = F.tanh(x * 2)
    svg = y._repr_svg_()
    assert svg is not None and '<svg' in svg and '</svg>' in svg
    assert 'Tanh' in svg and 'Mul' in svg and '>x' in svg


def test_a_leaf_or_a_variable_computed_without_graph_draws_nothing():
    assert Variable(np.ones(3))._repr_svg_() is None
    assert L.Linear(2, in_size=2).W._repr_svg_() is None
    with zerograd.no_grad():
        assert (Variable(np.ones(3)) * 2)._repr_svg_() is None


def test_a_graph_too_large_is_not_drawn(monkeypatch):
    monkeypatch.setattr(summary_module, 'MAX_GRAPH_FUNCTIONS', 5)
    x = Variable(np.ones(2))
    y = x
    for _ in range(5):
        y = y * 2
    assert graph_svg(y) is not None  # five functions
    assert graph_svg(y + 1) is None  # six


def test_without_dot_the_svg_is_none_and_a_hint_is_given_once(monkeypatch):
    monkeypatch.setattr(summary_module.shutil, 'which', lambda name: None)
    monkeypatch.setattr(summary_module, '_hinted', False)
    y = Variable(np.ones(2)) * 2
    with pytest.warns(RuntimeWarning, match="Graphviz's `dot` program was not found"):
        assert y._repr_svg_() is None
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert y._repr_svg_() is None  # no second warning
