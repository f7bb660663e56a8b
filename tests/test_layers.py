"""layers and models: registration, lazy weights, weight files and their errors."""
import os
import zipfile

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from zerograd import Layer, Model, Parameter, Variable
from zerograd.models import MLP, Sequential


# -----------------------------------------------------------------------------
# Layer
# -----------------------------------------------------------------------------
class Block(Layer):
    def __init__(self):
        super().__init__()
        self.z = Parameter(np.zeros(1), name='z')
        self.inner = L.Linear(2, in_size=3)
        self.a = Parameter(np.ones(2), name='a')
        self.not_a_param = Variable(np.ones(1))

    def forward(self, x):
        return self.inner(x) * self.a


def test_registration_order_is_assignment_order_and_nested():
    block = Block()
    assert [p.name for p in block.params()] == ['z', 'W', 'b', 'a']
    assert list(block.named_params()) == ['z', 'inner/W', 'inner/b', 'a']
    block.a = None  # replaced by a non-parameter: unregistered
    assert list(block.named_params()) == ['z', 'inner/W', 'inner/b']


def test_cleargrads_and_weak_inputs_outputs():
    block = Block()
    x = Variable(np.ones((4, 3), dtype=np.float32))
    y = block(x)
    F.sum(y).backward()
    assert all(p.grad is not None for p in block.params() if p.name != 'z')
    assert block.inputs[0]() is x and block.outputs[0]() is y
    del y
    assert block.outputs[0]() is None  # the layer keeps no graph alive
    block.cleargrads()
    assert all(p.grad is None for p in block.params())


# -----------------------------------------------------------------------------
# Linear, BatchNorm, EmbedID
# -----------------------------------------------------------------------------
def test_linear_lazy_init_draws_like_the_book_and_is_float32():
    np.random.seed(0)
    layer = L.Linear(5)
    assert layer.W.data is None
    y = layer(np.ones((2, 3), dtype=np.float32))
    np.random.seed(0)
    expected = np.random.randn(3, 5).astype(np.float32) * np.float32(np.sqrt(1 / 3))
    np.testing.assert_array_equal(layer.W.data, expected)
    assert layer.W.dtype == np.float32 and layer.b.dtype == np.float32
    assert y.dtype == np.float32 and y.shape == (2, 5)
    np.testing.assert_array_equal(layer.b.data, np.zeros(5))


def test_linear_with_in_size_float64_and_nobias():
    layer = L.Linear(4, nobias=True, dtype=np.float64, in_size=3)
    assert layer.W.shape == (3, 4) and layer.W.dtype == np.float64 and layer.b is None
    assert list(layer.named_params()) == ['W']
    assert layer(np.ones((2, 3))).shape == (2, 4)


def test_linear_mismatched_input_size():
    layer = L.Linear(5, in_size=3)
    with pytest.raises(ValueError, match=r'Linear: input has 4 features but W expects 3 '
                                         r'\(x.shape=\(2, 4\), W.shape=\(3, 5\)\)'):
        layer(np.ones((2, 4), dtype=np.float32))


def test_linear_input_gradient_only_for_variables():
    layer = L.Linear(2, in_size=3)
    x = Variable(np.ones((4, 3), dtype=np.float32))
    F.sum(layer(x)).backward()
    np.testing.assert_allclose(x.grad.data, np.tile(layer.W.data.sum(axis=1), (4, 1)), rtol=1e-6)
    layer.cleargrads()
    F.sum(layer(np.ones((4, 3), dtype=np.float32))).backward()  # raw data: no gx needed
    np.testing.assert_allclose(layer.W.grad.data, np.full((3, 2), 4.0))


def test_batchnorm_layer_running_stats_saved_not_trained(tmp_path):
    bn = L.BatchNorm()
    x = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32) * 2 + 5
    y = bn(x)
    np.testing.assert_allclose(y.data.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(bn.avg_mean.data, 0.1 * x.mean(axis=0), rtol=1e-5)
    F.sum(y * y).backward()
    assert bn.avg_mean.grad is None and bn.avg_var.grad is None
    assert bn.gamma.grad is not None and bn.beta.grad is not None
    assert sorted(bn.named_params()) == ['avg_mean', 'avg_var', 'beta', 'gamma']
    with zerograd.test_mode():
        y_test = bn(x)
    expected = (x - bn.avg_mean.data) / np.sqrt(bn.avg_var.data + 2e-5)
    np.testing.assert_allclose(y_test.data, expected, rtol=1e-5)


def test_embed_id_layer():
    np.random.seed(0)
    layer = L.EmbedID(10, 4)
    np.random.seed(0)
    np.testing.assert_array_equal(layer.W.data, np.random.randn(10, 4).astype(np.float32))
    ids = np.array([[1, 3], [3, 9]])
    y = layer(ids)
    assert y.shape == (2, 2, 4) and y.dtype == np.float32
    F.sum(y).backward()
    np.testing.assert_array_equal(layer.W.grad.data[3], [2, 2, 2, 2])  # used twice
    np.testing.assert_array_equal(layer.W.grad.data[0], [0, 0, 0, 0])


# -----------------------------------------------------------------------------
# models
# -----------------------------------------------------------------------------
def test_sequential_with_plain_callables():
    np.random.seed(0)
    model = Sequential(L.Linear(4), F.relu, L.Linear(2))
    y = model(np.ones((3, 5), dtype=np.float32))
    assert y.shape == (3, 2)
    assert list(model.named_params()) == ['l0/W', 'l0/b', 'l2/W', 'l2/b']
    with pytest.raises(TypeError, match='Sequential: item 1 is not callable'):
        Sequential(L.Linear(2), 3)


def test_mlp_structure_and_activation():
    model = MLP((10, 10, 3), activation=F.relu)
    assert list(model.named_params()) == ['l0/W', 'l0/b', 'l1/W', 'l1/b', 'l2/W', 'l2/b']
    y = model(np.ones((2, 4), dtype=np.float32))
    assert y.shape == (2, 3) and y.dtype == np.float32


def test_model_plot(tmp_path):
    model = MLP((5, 2))
    path = model.plot(np.ones((1, 3), dtype=np.float32), to_file=str(tmp_path / 'model.png'))
    with open(path, 'rb') as file:
        assert file.read(4) == b'\x89PNG'


def test_model_is_a_layer():
    assert issubclass(Model, Layer) and issubclass(MLP, Model)


# -----------------------------------------------------------------------------
# weight files
# -----------------------------------------------------------------------------
def _trained_mlp():
    np.random.seed(0)
    model = MLP((4, 3))
    model(np.ones((1, 2), dtype=np.float32))
    return model


def test_save_and_load_round_trip(tmp_path):
    model = _trained_mlp()
    path = tmp_path / 'w.npz'
    model.save_weights(str(path))
    assert os.listdir(tmp_path) == ['w.npz']  # the temporary file was renamed
    with zipfile.ZipFile(path) as archive:  # compressed, one array per attribute path
        assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in archive.infolist())
    other = MLP((4, 3))
    other.load_weights(str(path))  # into lazy weights
    for (key, p), (_, q) in zip(model.named_params().items(), other.named_params().items()):
        np.testing.assert_array_equal(p.data, q.data)
        assert q.dtype == np.float32
    x = np.random.rand(3, 2).astype(np.float32)
    np.testing.assert_array_equal(model(x).data, other(x).data)


def test_files_in_the_books_format_load(tmp_path):
    # The book's save_weights: np.savez_compressed(path, **{'l0/W': ..., ...}).
    rng = np.random.default_rng(1)
    arrays = {'l0/W': rng.random((2, 4), dtype=np.float32), 'l0/b': np.zeros(4, np.float32),
              'l1/W': rng.random((4, 3), dtype=np.float32), 'l1/b': np.ones(3, np.float32)}
    path = tmp_path / 'book.npz'
    np.savez_compressed(path, **arrays)
    model = MLP((4, 3))
    model.load_weights(str(path))
    np.testing.assert_array_equal(model.l1.b.data, np.ones(3))


def test_saving_lazy_weights_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"MLP.save_weights: parameter 'l0/W' is not created "
                                         r'yet .* run one forward pass'):
        MLP((4, 3)).save_weights(str(tmp_path / 'w.npz'))
    assert os.listdir(tmp_path) == []


def _write(path, **arrays):
    np.savez_compressed(path, **arrays)
    return str(path)


@pytest.mark.parametrize('change, message', [
    ('missing', r"missing from the file: \['l1/b'\]"),
    ('extra', r"not in the model: \['l2/W'\]"),
    ('shape', r"different shapes: \['l0/W: file \(2, 5\), model \(2, 4\)'\]"),
])
def test_loading_a_mismatched_file_changes_nothing(tmp_path, change, message):
    model = _trained_mlp()
    before = {k: p.data.copy() for k, p in model.named_params().items()}
    arrays = {k: np.zeros_like(v) for k, v in before.items()}
    if change == 'missing':
        del arrays['l1/b']
    elif change == 'extra':
        arrays['l2/W'] = np.zeros((3, 3), np.float32)
    else:
        arrays['l0/W'] = np.zeros((2, 5), np.float32)
    path = _write(tmp_path / 'bad.npz', **arrays)
    with pytest.raises(ValueError, match=r'MLP.load_weights\(.*bad.npz.*\): the file does not '
                                         r'match the model; ' + message):
        model.load_weights(path)
    for key, p in model.named_params().items():
        np.testing.assert_array_equal(p.data, before[key])


def test_loading_a_corrupt_or_truncated_file(tmp_path):
    model = _trained_mlp()
    good = tmp_path / 'good.npz'
    model.save_weights(str(good))
    data = good.read_bytes()
    truncated = tmp_path / 'truncated.npz'
    truncated.write_bytes(data[:len(data) // 2])
    garbage = tmp_path / 'garbage.npz'
    garbage.write_bytes(b'this is not a weights file at all')
    with pytest.raises(ValueError, match='MLP.load_weights: .*truncated.npz.* is corrupt or '
                                         'truncated'):
        model.load_weights(str(truncated))
    with pytest.raises(ValueError, match='MLP.load_weights: .*garbage.npz.* is not a .npz '
                                         'weights file'):
        model.load_weights(str(garbage))


def test_loading_a_file_that_needs_pickle_is_refused(tmp_path):
    model = _trained_mlp()
    arrays = {k: p.data for k, p in model.named_params().items()}
    arrays['l0/W'] = np.array([object()], dtype=object)
    path = tmp_path / 'pickled.npz'
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match='need pickle; refusing to load'):
        model.load_weights(str(path))


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        _trained_mlp().load_weights(str(tmp_path / 'nope.npz'))


# -----------------------------------------------------------------------------
# Sizes and inputs are checked where they are given
# -----------------------------------------------------------------------------
@pytest.mark.parametrize('make, error, message', [
    (lambda: L.Linear(-1), ValueError, r'Linear: out_size must be a positive int, got -1'),
    (lambda: L.Linear(0), ValueError, r'Linear: out_size must be a positive int, got 0'),
    (lambda: L.Linear(2.5), TypeError, r'Linear: out_size must be a positive int, got 2.5 \(float\)'),
    (lambda: L.Linear('5'), TypeError, r"Linear: out_size must be a positive int, got '5' \(str\)"),
    (lambda: L.Linear(True), TypeError, r'Linear: out_size must be a positive int, got True \(bool\)'),
    (lambda: L.Linear(None), TypeError, r'Linear: out_size must be a positive int, got None'),
    (lambda: L.Linear(3, in_size=-2), ValueError, r'Linear: in_size must be a positive int, got -2'),
    (lambda: L.Linear(3, in_size=2.0), TypeError, r'Linear: in_size must be a positive int or None'),
    (lambda: L.EmbedID(0, 3), ValueError, r'EmbedID: in_size must be a positive int, got 0'),
    (lambda: L.EmbedID(5, '3'), TypeError, r'EmbedID: out_size must be a positive int'),
    (lambda: L.RNN(0), ValueError, r'RNN: hidden_size must be a positive int, got 0'),
    (lambda: L.LSTM(2.5), TypeError, r'LSTM: hidden_size must be a positive int, got 2.5'),
    (lambda: L.Conv2d(0, 3), ValueError, r'Conv2d: out_channels must be a positive int, got 0'),
    (lambda: L.Conv2d(4, 0), ValueError, r'Conv2d: kernel_size must be positive, got \(0, 0\)'),
    (lambda: L.Conv2d(4, 3, stride=0), ValueError, r'Conv2d: stride must be positive'),
    (lambda: L.Deconv2d(4, 3, pad=-1), ValueError, r'Deconv2d: pad must be non-negative'),
    (lambda: L.Conv2d(4, 3, in_channels=-3), ValueError, r'Conv2d: in_channels must be a positive'),
])
def test_layer_sizes_are_checked_at_construction(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_linear_accepts_numpy_integer_sizes():
    layer = L.Linear(np.int64(3), in_size=np.int32(2))
    assert layer.W.shape == (2, 3) and layer.b.shape == (3,)


@pytest.mark.parametrize('stride', ['a', 1.5, (1, 2, 3), True])
def test_conv_layer_and_function_give_one_error_class_for_a_bad_stride(stride):
    with pytest.raises(TypeError, match=r'Conv2d: stride must be an int or a pair of ints'):
        L.Conv2d(4, 3, stride=stride)
    with pytest.raises(TypeError, match=r'conv2d: stride must be an int or a pair of ints'):
        F.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((4, 3, 3, 3)), stride=stride)


@pytest.mark.parametrize('x, shown', [(np.ones((2, 3), dtype=np.int64), 'int64'),
                                      (np.ones((2, 3), dtype=bool), 'bool')])
def test_batchnorm_layer_refuses_non_float_input(x, shown):
    bn = L.BatchNorm()
    with pytest.raises(TypeError, match=rf'BatchNorm: x must be floating point, got {shown}'):
        bn(x)
    assert bn.avg_mean.data is None and bn.gamma.data is None  # nothing created


def test_batchnorm_layer_with_batch_of_one_raises_and_keeps_its_statistics():
    bn = L.BatchNorm()
    with pytest.raises(ValueError, match=r'BatchNorm: expected more than 1 value per channel '
                                         r'when training, got x of shape \(1, 3\)'):
        bn(np.ones((1, 3), dtype=np.float32))
    assert bn.avg_mean.data is None and bn.avg_var.data is None
    bn(np.array([[0.0, 1.0, 2.0], [2.0, 3.0, 6.0]], dtype=np.float32))
    mean, var = bn.avg_mean.data.copy(), bn.avg_var.data.copy()
    with pytest.raises(ValueError, match='more than 1 value per channel'):
        bn(np.ones((1, 3), dtype=np.float32))
    np.testing.assert_array_equal(bn.avg_mean.data, mean)
    np.testing.assert_array_equal(bn.avg_var.data, var)
    np.testing.assert_allclose(mean, [0.1, 0.2, 0.4], rtol=1e-6)  # 0.1 * the batch means


@pytest.mark.parametrize('ids, shown', [(2, 'got a Python int'), ([0, 1], 'got a Python list'),
                                        (np.array([0.0, 1.0]), 'got an array of float64')])
def test_embed_id_says_it_needs_an_integer_array_of_ids(ids, shown):
    with pytest.raises(TypeError, match=rf'embed_id: x must be an integer ndarray or Variable '
                                        rf'of ids, {shown}'):
        L.EmbedID(5, 3)(ids)
