"""``zerograd.onnx.export`` of the network ops and of whole models, checked by running them.

Each export goes through ``onnx.checker.check_model(full_check=True)`` and onnxruntime
(CPUExecutionProvider), and its outputs are compared with zerograd's forward in test mode
(rtol = atol = 1e-5 in float32, same dtypes and shapes). Models are traced at batch 2 and
run at batches 1, 2 and 5; exporting must leave them as they were (parameters, batch norm
statistics, RNN states, ``Config.train``).
"""
import numpy as np
import pytest

import zerograd
import zerograd.functions as F
import zerograd.layers as L
import zerograd.onnx
from zerograd import Parameter, Variable, models
from zerograd.recipes import MnistCNN

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')

TOL = dict(rtol=1e-5, atol=1e-5)


def _session(proto):
    return ort.InferenceSession(proto.SerializeToString(), providers=['CPUExecutionProvider'])


def _export(model, args, **kwargs):
    proto = zerograd.onnx.export(model, args, **kwargs)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _compare(session, model, inputs):
    """onnxruntime's outputs against zerograd's forward (test mode) on the same inputs."""
    names = [i.name for i in session.get_inputs()]
    got = session.run(None, dict(zip(names, inputs)))
    with zerograd.test_mode():
        expected = model(*[Variable(a) for a in inputs])
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and g.shape == e.shape, (g.dtype, g.shape, e.dtype, e.shape)
        np.testing.assert_allclose(g, e.data, **TOL)


def _check_function(f, *arrays, opset=17, dynamic_axes=None):
    """Export f (a function of Variables) at these arrays, run it at them."""
    proto = _export(f, arrays, opset=opset, dynamic_axes=dynamic_axes)
    _compare(_session(proto), f, list(arrays))
    return proto


def _op_types(proto):
    return [node.op_type for node in proto.graph.node]


def _normal(rng, shape, scale=1.0, dtype=np.float32):
    return (rng.standard_normal(shape) * scale).astype(dtype)


# =============================================================================
# Each network Function alone
# =============================================================================
@pytest.mark.parametrize('stride, pad, bias', [(1, 1, True), ((2, 1), (0, 2), True),
                                               (3, 1, False)])
def test_conv2d_exports_as_conv(stride, pad, bias):
    rng = np.random.default_rng(0)
    x = _normal(rng, (2, 3, 9, 8))
    W = Parameter(_normal(rng, (4, 3, 3, 2), 0.3), name='W')
    b = Parameter(_normal(rng, (4,)), name='b') if bias else None
    proto = _check_function(lambda x: F.conv2d(x, W, b, stride, pad), x)
    assert _op_types(proto) == ['Conv']
    assert {i.name for i in proto.graph.initializer} == ({'W', 'b'} if bias else {'W'})


@pytest.mark.parametrize('stride, pad, outsize', [(1, 0, None), (2, 1, None), (2, 1, (8, 7)),
                                                  ((3, 2), (1, 0), (10, 9))])
def test_deconv2d_exports_as_conv_transpose_with_its_outsize(stride, pad, outsize):
    rng = np.random.default_rng(1)
    x = _normal(rng, (2, 3, 4, 4))
    W = _normal(rng, (3, 5, 3, 3), 0.3)  # (C, OC, KH, KW): ConvTranspose's layout
    b = _normal(rng, (5,))
    proto = _check_function(lambda x: F.deconv2d(x, W, b, stride, pad, outsize), x)
    assert _op_types(proto) == ['ConvTranspose']
    y = F.deconv2d(x, W, b, stride, pad, outsize)
    assert outsize is None or y.shape[2:] == outsize


@pytest.mark.parametrize('opset', sorted({17, 18, zerograd.onnx.newest_opset()}))
@pytest.mark.parametrize('kernel, stride, pad, ceil_mode, shape', [
    (2, 2, 0, False, (2, 3, 8, 7)), (3, 2, 1, False, (2, 3, 8, 7)),
    ((3, 2), (1, 2), (1, 0), False, (2, 3, 8, 7)),
    (3, 2, 0, True, (2, 3, 8, 7)),   # a partial window on both axes
    (3, 2, 1, True, (2, 3, 8, 7)),
    (2, 3, 1, True, (2, 3, 8, 8)),   # a last window in the end padding: dropped
    (2, 3, 0, True, (2, 3, 7, 6)),   # one partial, one dropped
    (3, 2, 0, True, (2, 3, 2, 5))])  # a kernel larger than x
def test_max_pooling_exports_as_max_pool(opset, kernel, stride, pad, ceil_mode, shape):
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32) - 3
    proto = _check_function(lambda x: F.pooling(x, kernel, stride, pad, ceil_mode), x,
                            opset=opset)
    assert _op_types(proto) == ['MaxPool']


def test_max_pooling_exports_in_float64():
    x = np.random.default_rng(3).standard_normal((2, 2, 5, 5))
    _check_function(lambda x: F.pooling(x, 3, 2, 1, ceil_mode=True), x)


@pytest.mark.parametrize('kernel, stride, pad', [(2, 2, 0), (3, 2, 1), ((2, 3), 1, (1, 1))])
def test_average_pooling_exports_as_average_pool_counting_the_padding(kernel, stride, pad):
    x = np.random.default_rng(4).standard_normal((2, 3, 7, 6)).astype(np.float32) + 2
    proto = _check_function(lambda x: F.average_pooling(x, kernel, stride, pad), x)
    assert _op_types(proto) == ['AveragePool']


class _Normalized(models.Model):
    def __init__(self):
        super().__init__()
        self.bn1 = L.BatchNorm()

    def forward(self, x):
        return self.bn1(x)


@pytest.mark.parametrize('shape', [(3, 4), (2, 4, 3, 5)])
def test_batch_norm_exports_with_the_running_statistics_named_by_their_paths(shape):
    rng = np.random.default_rng(5)
    model = _Normalized()
    x = _normal(rng, shape, 2.0)
    with zerograd.test_mode():
        model(x)
    model.bn1.avg_mean.data = _normal(rng, (4,))
    model.bn1.avg_var.data = rng.uniform(0.5, 2.0, 4).astype(np.float32)
    model.bn1.gamma.data = _normal(rng, (4,))
    model.bn1.beta.data = _normal(rng, (4,))
    proto = _export(model, x)
    assert _op_types(proto) == ['BatchNormalization']
    assert sorted(i.name for i in proto.graph.initializer) == [
        'bn1/avg_mean', 'bn1/avg_var', 'bn1/beta', 'bn1/gamma']
    _compare(_session(proto), model, [x])
    _compare(_session(proto), model, [_normal(rng, (5,) + shape[1:])])


def test_batch_norm_traced_in_training_mode_is_refused():
    gamma, beta = np.ones(3, np.float32), np.zeros(3, np.float32)
    mean, var = np.zeros(3, np.float32), np.ones(3, np.float32)

    def train_mode_norm(x):
        with zerograd.using_config('train', True):
            return F.batch_norm(x, gamma, beta, mean, var)

    with pytest.raises(NotImplementedError, match='BatchNorm .* traced in training mode'):
        zerograd.onnx.export(train_mode_norm, np.ones((2, 3), np.float32))


def test_lstm_cell_exports_as_its_gate_ops():
    rng = np.random.default_rng(6)
    arrays = [_normal(rng, (2, 4), 2.0) for _ in range(5)]
    proto = _check_function(lambda *xs: F.lstm_cell(*xs), *arrays)
    assert set(_op_types(proto)) == {'Sigmoid', 'Tanh', 'Mul', 'Add'}
    assert [o.name for o in proto.graph.output] == ['output0', 'output1']


@pytest.mark.parametrize('to_matrix', [True, False])
@pytest.mark.parametrize('kernel, stride, pad', [(3, 1, 1), ((2, 3), (2, 1), (0, 1))])
def test_im2col_exports_as_strided_slices_bit_for_bit(kernel, stride, pad, to_matrix):
    rng = np.random.default_rng(7)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((2, 3, 6, 5)).astype(dtype)
        proto = _check_function(lambda x: F.im2col(x, kernel, stride, pad, to_matrix), x)
        got = _session(proto).run(None, {'input': np.concatenate([x, x[:1] * 3])})[0]
        np.testing.assert_array_equal(
            got, F.im2col(np.concatenate([x, x[:1] * 3]), kernel, stride, pad, to_matrix).data)


@pytest.mark.parametrize('to_matrix', [True, False])
def test_col2im_exports_as_col2im_from_opset_18(to_matrix):
    rng = np.random.default_rng(8)
    x_shape = (2, 3, 6, 5)
    col = F.im2col(np.zeros(x_shape), 3, 2, 1, to_matrix)
    cols = rng.standard_normal(col.shape).astype(np.float32)

    def f(col):
        return F.col2im(col, x_shape, 3, 2, 1, to_matrix)

    dynamic = {}  # col2im's input_shape fixes the batch size
    proto = _export(f, cols, opset=18, dynamic_axes=dynamic)
    assert 'Col2Im' in _op_types(proto)
    _compare(_session(proto), f, [cols])
    with pytest.raises(NotImplementedError, match='Col2im .*Col2Im from opset 18'):
        zerograd.onnx.export(f, cols, opset=17, dynamic_axes=dynamic)


@pytest.mark.parametrize('make, op', [
    (lambda x: F.conv2d(x, np.ones((2, 3, 3, 3))), 'Conv'),
    (lambda x: F.deconv2d(x, np.ones((3, 2, 3, 3))), 'ConvTranspose'),
    (lambda x: F.average_pooling(x, 2), 'AveragePool')])
def test_float64_ops_without_an_onnxruntime_kernel_are_refused(make, op):
    x = np.ones((2, 3, 4, 4))
    with pytest.raises(NotImplementedError) as info:
        zerograd.onnx.export(make, x)
    message = str(info.value)
    for part in (op, 'float64', '(2, 3, 4, 4)', "onnxruntime's CPU backend", 'float32'):
        assert part in message, message


@pytest.mark.parametrize('gradient, name', [
    (lambda x, W: _grads(F.conv2d(x, W), (W,))[0], 'Conv2DGradW'),
    (lambda x, W: _grads(F.pooling(x, 2, 2), (x,))[0], 'PoolingGrad'),
    (lambda x, W: _grads(F.average_pooling(x, 2, 2), (x,))[0], 'AveragePoolingGrad')])
def test_backward_only_functions_are_refused(gradient, name):
    W = Parameter(np.ones((2, 3, 3, 3), np.float32), name='W')
    # Fixed sizes: the seed gradient of backward is broadcast to y's (batch) shape, which
    # the walk would refuse first with a dynamic batch.
    with pytest.raises(NotImplementedError, match=f'{name} .*backward-only'):
        zerograd.onnx.export(lambda x: gradient(x, W), np.ones((2, 3, 4, 4), np.float32),
                             dynamic_axes={})


def test_the_input_gradient_of_conv2d_exports_as_conv_transpose():
    """gx of conv2d, recorded with create_graph=True, is deconv2d: a forward op."""
    W = Parameter(np.random.default_rng(9).standard_normal((2, 3, 3, 3)).astype(np.float32))
    x = np.random.default_rng(10).standard_normal((2, 3, 4, 4)).astype(np.float32)
    proto = _check_function(lambda x: _grads(F.conv2d(x, W, pad=1), (x,))[0], x,
                            dynamic_axes={})  # (backward's seed is broadcast to y's shape)
    assert 'ConvTranspose' in _op_types(proto)


def _grads(y, wrt):
    for v in wrt:
        v.cleargrad()
    F.sum(y * y).backward(create_graph=True)
    return [v.grad for v in wrt]


# =============================================================================
# Whole models
# =============================================================================
def _randomize(model, rng):
    """Small deterministic weights: W scaled by 1/sqrt(fan in), batch norm statistics and
    gains near 1, biases small."""
    for path, p in sorted(model.named_params().items()):
        shape = p.data.shape
        name = path.rsplit('/', 1)[-1]
        if name in ('avg_var', 'gamma'):
            p.data = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif name in ('avg_mean', 'beta', 'b'):
            p.data = _normal(rng, shape, 0.1)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) == 4 else shape[0]
            p.data = _normal(rng, shape, 1.0 / np.sqrt(fan_in))


def _state(model):
    params = {k: p.data.copy() for k, p in model.named_params().items()}
    states = {id(layer): (getattr(layer, 'h', None), getattr(layer, 'c', None))
              for layer in _all_layers(model)}
    return params, states, zerograd.Config.train


def _all_layers(model):
    layers, todo = [], [model]
    while todo:
        layer = todo.pop()
        layers.append(layer)
        todo.extend(v for v in vars(layer).values() if isinstance(v, L.Layer))
    return layers


def _check_model(model, shape, rng, opsets=(17,), batches=(1, 2, 5)):
    """Make the lazy parameters at batch 2, randomize them, export at batch 2, check that
    the model is as before, then compare with onnxruntime at each batch size."""
    with zerograd.test_mode():
        model(_normal(rng, (2,) + shape))
    _randomize(model, rng)
    x = _normal(rng, (2,) + shape)
    params, states, train = _state(model)
    protos = [_export(model, x, opset=opset) for opset in opsets]
    params_after, states_after, train_after = _state(model)
    assert train_after == train
    assert params_after.keys() == params.keys()
    for key in params:
        np.testing.assert_array_equal(params_after[key], params[key], err_msg=key)
    assert all(states_after[k][0] is h and states_after[k][1] is c
               for k, (h, c) in states.items())
    for proto in protos:
        session = _session(proto)
        for n in batches:
            _compare(session, model, [_normal(rng, (n,) + shape)])
    return protos


def test_mlp():
    _check_model(models.MLP((10, 7, 3)), (4,), np.random.default_rng(10))


def test_mnist_cnn_at_opsets_17_18_and_the_newest():
    opsets = sorted({17, 18, zerograd.onnx.newest_opset()})
    protos = _check_model(MnistCNN(), (1, 28, 28), np.random.default_rng(11), opsets)
    for proto, opset in zip(protos, opsets):
        assert proto.opset_import[0].version == opset
        assert _op_types(proto).count('Conv') == 2 and _op_types(proto).count('MaxPool') == 2
        assert {'conv1/W', 'conv1/b', 'fc2/W'} <= {i.name for i in proto.graph.initializer}


class _SmallVGG16(models.VGG16):
    """VGG16's layers at 32 x 32 (fc6 takes 512 x 1 x 1): VGG16 insists on 224 x 224, the
    size its published weights need, which is too slow for a unit test."""

    def _check_size(self, x):
        pass


def test_vgg16_at_32_by_32():
    _check_model(_SmallVGG16(), (3, 32, 32), np.random.default_rng(12))


def test_resnet50_at_32_by_32():
    model = models.ResNet50()
    protos = _check_model(model, (3, 32, 32), np.random.default_rng(13))
    types = _op_types(protos[0])
    assert types.count('BatchNormalization') == 53 and 'Concat' not in types
    pools = [n for n in protos[0].graph.node if n.op_type == 'MaxPool']
    assert [a.i for a in pools[0].attribute if a.name == 'ceil_mode'] == [1]


def test_squeezenet_at_34_by_34_with_partial_pooling_windows():
    model = models.SqueezeNet(n_classes=10)
    protos = _check_model(model, (3, 34, 34), np.random.default_rng(14))
    pools = [n for n in protos[0].graph.node if n.op_type == 'MaxPool']
    assert len(pools) == 3


class _Recurrent(models.Model):
    """A recurrent layer unrolled over the T steps of x (N, T, D), from a fresh state, then
    a linear read-out of the last h."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell
        self.fc = L.Linear(2)

    def forward(self, x):
        self.cell.reset_state()
        for t in range(x.shape[1]):
            h = self.cell(x[:, t])
        return self.fc(h)


@pytest.mark.parametrize('cell', [lambda: L.RNN(5, in_size=3), lambda: L.LSTM(5, in_size=3)],
                         ids=['RNN', 'LSTM'])
def test_recurrent_models_unrolled_over_four_steps(cell):
    model = _Recurrent(cell())
    rng = np.random.default_rng(15)
    with zerograd.test_mode():
        model(_normal(rng, (2, 4, 3)))  # a state left behind: export must keep it
    _check_model(model, (4, 3), rng)
