"""The whole API on the GPU: every op, layer, model, optimizer, loader and file path keeps
its data on the device and gives the values it gives on the CPU.

Each test runs twice, over the ``xp`` fixture:

* ``strict``: ``zerograd.testing_strict``'s stand-in for CuPy, on any machine. Its arrays
  refuse plain NumPy arrays and NumPy functions, so an op that leaked to the host would fail
  here (``test_the_checker_*`` show it with deliberate leaks);
* ``cupy``: real CuPy on a real GPU; skipped, with the reason, without CuPy or a GPU.

Every device result is compared with the same computation on plain NumPy.
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from zerograd import (Function, Variable, checkpoints, cli, cuda, datasets, optimizers,
                      recipes, training, transforms, utils)
from zerograd.dataloaders import DataLoader, SeqDataLoader
from zerograd.models import MLP, ResNet50, Sequential, SqueezeNet
from zerograd.models import BottleneckA, BuildingBlock
from zerograd.testing_strict import StrictArray, strict, use_strict_device

import ops
from op_references import case_rng, make_array


def _cupy_skip_reason() -> str | None:
    if importlib.util.find_spec('cupy') is None:
        return 'CuPy is not installed (pip install zerograd[gpu]); the strict stand-in ran'
    ok, text = cuda.gpu_status()
    return None if ok else f'no GPU ({text}); the strict stand-in ran'


@pytest.fixture(params=['strict', 'cupy'])
def xp(request):
    """The device's array module, installed as zerograd's CuPy for the test."""
    if request.param == 'strict':
        with use_strict_device() as module:
            yield module
    else:
        reason = _cupy_skip_reason()
        if reason is not None:
            pytest.skip(reason)
        yield cuda._cupy()


# =============================================================================
# Helpers
# =============================================================================
def dev(a):
    """A host array (or None) on the device."""
    return None if a is None else cuda.as_cupy(a)


def host(a):
    return cuda.as_numpy(a)


def assert_all_close(device_values, cpu_values, rtol=1e-6, atol=1e-9):
    """Pairwise: both None, or the device value on the device and close to the CPU's."""
    assert len(device_values) == len(cpu_values)
    for value, cpu_value in zip(device_values, cpu_values):
        assert (value is None) == (cpu_value is None)
        if value is not None:
            assert_close(value, cpu_value, rtol, atol)


def assert_on_device(xp, *arrays):
    for a in arrays:
        a = a.data if isinstance(a, Variable) else a
        assert isinstance(a, xp.ndarray), f'expected a device array, got {type(a).__name__}'


def assert_close(device_value, cpu_value, rtol=1e-6, atol=1e-9):
    device_value = host(device_value.data if isinstance(device_value, Variable)
                        else device_value)
    cpu_value = cpu_value.data if isinstance(cpu_value, Variable) else cpu_value
    assert device_value.dtype == np.asarray(cpu_value).dtype
    np.testing.assert_allclose(device_value, cpu_value, rtol=rtol, atol=atol)


def _grads(f, arrays, consts, gy_seed, double, to_device):
    """y, the first gradients and (if double) the gradients of sum(gx * v), computed with
    the arrays (and the non-differentiable consts) on the host or on the device."""
    move = dev if to_device else (lambda a: a)
    rng = np.random.default_rng(gy_seed)
    xs = [Variable(move(a)) for a in arrays]
    y = f(*xs, **{k: move(v) for k, v in consts.items()})
    gy = np.asarray(rng.standard_normal(y.shape), dtype=y.dtype)
    y.grad = Variable(move(gy))
    y.backward(create_graph=double)
    first = [x.grad for x in xs]
    second = []
    if double:
        for x in xs:
            x.cleargrad()
        g = 0
        for gx in first:
            if gx is not None:
                g = g + (gx * move(rng.standard_normal(gx.shape).astype(gx.dtype))).sum()
        g.backward()
        second = [x.grad for x in xs]
    return y, first, second


def check_on_device(xp, f, arrays, consts=None, double=False, rtol=1e-6, atol=1e-9):
    """f's forward, gradients (and second gradients) on the device equal the CPU's, and
    every result lives on the device."""
    consts = consts or {}
    y_cpu, first_cpu, second_cpu = _grads(f, arrays, consts, 0, double, False)
    y, first, second = _grads(f, arrays, consts, 0, double, True)
    assert_on_device(xp, y, *[g for g in first + second if g is not None])
    assert_all_close([y] + first + second, [y_cpu] + first_cpu + second_cpu, rtol, atol)


R = np.random.default_rng(7)


def rand(*shape, low=-1.0, high=1.0, dtype=np.float64):
    return R.uniform(low, high, size=shape).astype(dtype)


# =============================================================================
# Every differentiable op of the registry (ops.py): forward, backward, and double
# backward on the cases marked device_double
# =============================================================================
DEVICE_CASES = ops.cases(ops.DEVICE)


def _device_inputs(case, dtype=np.float64):
    rng = case_rng('device ' + case.id)
    return [make_array(shape, case.domain, rng).astype(dtype) for shape in case.shapes]


def test_every_op_of_the_registry_is_run_on_the_device():
    # Functions of F without a device case have a test of their own below.
    own_tests = {'get_item': 'test_get_item_scatter_adds_repeated_indexes',
                 'dropout': 'test_dropout_on_device', 'batch_norm': 'test_batch_norm_on_device',
                 'accuracy': 'test_accuracy_on_device',
                 'scatter_add': 'test_scatter_add_adds_each_repeat',
                 'GetItemGrad': 'test_get_item_scatter_adds_repeated_indexes'}
    for name in own_tests.values():
        assert callable(globals()[name])
    on_device = {c.op for c in DEVICE_CASES}
    assert set(ops.OPS) - on_device <= set(own_tests)
    assert set(ops.NOT_DIFFERENTIABLE) - set(own_tests) <= {
        'as_array', 'as_variable', 'get_array_module'}  # not ops: nothing to run


@pytest.mark.parametrize('case', DEVICE_CASES, ids=ops.case_id)
def test_op_on_device(xp, case):
    check_on_device(xp, case.zerograd(), _device_inputs(case), case.consts,
                    double=case.device_double)


@pytest.mark.parametrize('case', ops.cases(ops.DEVICE, device_float32=True), ids=ops.case_id)
def test_float32_stays_float32_on_device(xp, case):
    check_on_device(xp, case.zerograd(), _device_inputs(case, np.float32), case.consts,
                    rtol=1e-4, atol=1e-5)


def test_get_item_scatter_adds_repeated_indexes(xp):
    # The book's backward used cupy.scatter_add, gone from CuPy: cupyx.scatter_add now.
    index = np.array([0, 2, 0, 0])
    x = rand(3, 4)
    check_on_device(xp, lambda a, i: F.get_item(a, (i, slice(1, 3))), [x],
                    {'i': index}, double=True)
    v = Variable(dev(x))
    y = v[dev(index)]
    y.backward()
    assert_close(v.grad, np.array([[3.0] * 4, [0.0] * 4, [1.0] * 4]))


def test_scatter_add_adds_each_repeat(xp):
    a = dev(np.zeros(4, dtype=np.float32))
    cuda.scatter_add(a, dev(np.array([1, 1, 3])), dev(np.ones(3, dtype=np.float32)))
    assert_on_device(xp, a)
    assert_close(a, np.array([0, 2, 0, 1], dtype=np.float32))


def test_third_derivative_through_max_pooling(xp):
    def third(x):
        y = F.pooling(x, 2, stride=1)
        (gx,) = _grad_of(F.sum(y * y * y), x)
        (ggx,) = _grad_of(F.sum(gx * gx), x)
        return ggx

    x = rand(1, 2, 3, 3)
    assert_close(third(Variable(dev(x))), third(Variable(x)).data)


def _grad_of(y, *xs):
    for x in xs:
        x.cleargrad()
    y.backward(create_graph=True)
    return [x.grad for x in xs]


def test_dropout_on_device(xp):
    x = Variable(dev(np.ones((200, 50))))
    y = F.dropout(x, 0.3)
    assert_on_device(xp, y)
    values = host(y.data)
    kept = values != 0
    np.testing.assert_allclose(values[kept], 1 / 0.7)
    assert 0.65 < kept.mean() < 0.75
    y.backward()
    assert_on_device(xp, x.grad)
    np.testing.assert_allclose(host(x.grad.data), values)  # the same mask, scaled
    with zerograd.test_mode():
        assert F.dropout(x, 0.3) is x


@pytest.mark.parametrize('shape', [(8, 3), (4, 3, 2, 2)])
@pytest.mark.parametrize('train', [True, False])
def test_batch_norm_on_device(xp, shape, train):
    x, gamma, beta = rand(*shape), rand(3, low=0.5, high=1.5), rand(3)
    stats = {'cpu': (rand(3) * 0.1, rand(3, low=0.5, high=1.5))}
    stats['device'] = tuple(dev(a) for a in stats['cpu'])

    def f_for(which):
        def f(x, gamma, beta):
            mean, var = stats[which]
            return F.batch_norm(x, gamma, beta, mean, var)
        return f

    with zerograd.using_config('train', train):
        y_cpu, g_cpu, gg_cpu = _grads(f_for('cpu'), [x, gamma, beta], {}, 0, True, False)
        y, g, gg = _grads(f_for('device'), [x, gamma, beta], {}, 0, True, True)
    assert_on_device(xp, y, *g, *[v for v in gg if v is not None], *stats['device'])
    assert_all_close([y] + g + gg, [y_cpu] + g_cpu + gg_cpu, rtol=1e-6, atol=1e-8)
    assert_all_close(stats['device'], stats['cpu'])  # running statistics, updated in place


def test_accuracy_on_device(xp):
    y, t = rand(6, 4), np.array([0, 1, 2, 3, 0, 1])
    acc = F.accuracy(dev(y), dev(t))
    assert_on_device(xp, acc)
    assert float(acc.data) == float(F.accuracy(y, t).data)


def test_utils_on_device(xp):
    x = rand(3, 4)
    assert utils.array_allclose(dev(x), x) and utils.array_equal(Variable(dev(x)), x)
    assert utils.gradient_check(F.tanh, dev(x))
    np.testing.assert_allclose(utils.numerical_grad(F.sin, dev(x)), np.cos(x), rtol=1e-6)
    assert_close(utils.logsumexp(dev(x)), utils.logsumexp(x))


def test_normalize_transform_on_device(xp):
    x = rand(3, 2, 2, dtype=np.float32)
    normalize = transforms.Normalize(mean=[0.1, 0.2, 0.3], std=2.0)
    y = normalize(dev(x))
    assert_on_device(xp, y)
    assert_close(y, normalize(x))


# =============================================================================
# Variables and layers: moving, and every layer on the device
# =============================================================================
def test_variable_to_gpu_and_back_moves_the_gradient(xp):
    x = Variable(rand(2, 3))
    (x * x).sum().backward()
    x.to_gpu()
    assert_on_device(xp, x, x.grad)
    assert cuda.get_array_module(x) is xp and cuda.get_array_module(x.data) is xp
    x.to_cpu()
    assert type(x.data) is np.ndarray and type(x.grad.data) is np.ndarray
    assert cuda.get_array_module(x) is np


def test_cuda_helpers(xp):
    a = rand(2, 2)
    d = cuda.as_cupy(a)
    assert_on_device(xp, d)
    assert cuda.as_cupy(d) is d or isinstance(cuda.as_cupy(d), xp.ndarray)
    back = cuda.as_numpy(d)
    assert type(back) is np.ndarray and np.array_equal(back, a)
    assert cuda.as_numpy(Variable(d)).shape == (2, 2)
    assert cuda.gpu_available() and cuda.gpu_enable
    ok, text = cuda.gpu_status()
    assert ok and 'device 0' in text


def _same_layer(make, x, steps=1):
    """A layer made twice from one seed: one stays on the CPU, one goes to the device after
    a first call on the CPU (which creates the lazy weights); then both run ``steps`` calls
    and a backward."""
    layers = []
    for _ in range(2):
        np.random.seed(0)  # the same weights, drawn at construction or at the first call
        layer = make()
        layer(x)
        if hasattr(layer, 'reset_state'):
            layer.reset_state()
        layer.cleargrads()
        layers.append(layer)
    cpu, device = layers
    device.to_gpu()
    outputs = []
    for layer, move in ((cpu, lambda a: a), (device, dev)):
        y = 0
        for _ in range(steps):
            y = y + layer(move(x))
        if isinstance(y, Variable) and y.dtype.kind == 'f':
            y.backward()
        outputs.append(y)
    return cpu, device, outputs[0], outputs[1]


LAYERS = {
    'Linear': (lambda: L.Linear(3), rand(4, 5, dtype=np.float32), 1),
    'Conv2d': (lambda: L.Conv2d(4, 3, stride=2, pad=1), rand(2, 3, 5, 5, dtype=np.float32), 1),
    'Deconv2d': (lambda: L.Deconv2d(2, 4, stride=2, pad=1), rand(2, 3, 3, 3, dtype=np.float32),
                 1),
    'RNN': (lambda: L.RNN(5, in_size=3), rand(2, 3, dtype=np.float32), 3),
    'LSTM': (lambda: L.LSTM(4, in_size=3), rand(2, 3, dtype=np.float32), 3),
    'EmbedID': (lambda: L.EmbedID(6, 3), np.array([[1, 5], [1, 1]]), 1),
    'BatchNorm': (lambda: L.BatchNorm(), rand(6, 3, 2, 2, dtype=np.float32), 1),
    'MLP': (lambda: MLP((6, 3), activation=F.relu), rand(4, 5, dtype=np.float32), 1),
    'Sequential': (lambda: Sequential(L.Linear(4), F.tanh, L.Linear(2)),
                   rand(4, 5, dtype=np.float32), 1),
    'BuildingBlock': (lambda: BuildingBlock(2, 4, 2, 8, 2), rand(2, 4, 5, 5, dtype=np.float32),
                      1),
    'MnistCNN': (recipes.MnistCNN, rand(2, 1, 28, 28, dtype=np.float32), 1),
    'BetterRNN': (lambda: recipes.BetterRNN(5, 1), rand(3, 1, dtype=np.float32), 3),
    'CharLSTM': (lambda: recipes.CharLSTM(7, 4, 5), np.array([1, 6, 1]), 2),
}


@pytest.mark.parametrize('name', sorted(LAYERS))
def test_layer_on_device(xp, name):
    make, x, steps = LAYERS[name]
    cpu, device, y_cpu, y = _same_layer(make, x, steps)
    assert_on_device(xp, y)
    assert_close(y, y_cpu.data, rtol=1e-4, atol=1e-5)
    params = device.named_params()
    for key, param in cpu.named_params().items():
        assert_on_device(xp, params[key])
        assert_close(params[key], param.data, rtol=1e-5, atol=1e-6)  # BatchNorm's stats
        if param.grad is not None:
            assert_on_device(xp, params[key].grad)
            assert_close(params[key].grad, param.grad.data, rtol=1e-4, atol=1e-5)
    device.to_cpu()
    for param in device.params():
        assert type(param.data) is np.ndarray
        assert param.grad is None or type(param.grad.data) is np.ndarray


def test_lazy_layer_fed_device_data_creates_its_weights_there(xp):
    layer = L.Linear(3)  # not moved: the bias follows the weights to the input's device
    y = layer(dev(rand(2, 4, dtype=np.float32)))
    assert_on_device(xp, y, layer.W, layer.b)
    conv = L.Conv2d(2, 3).to_gpu()
    assert_on_device(xp, conv(dev(rand(1, 3, 4, 4, dtype=np.float32))), conv.W, conv.b)


@pytest.mark.parametrize('make, shape', [
    (lambda: SqueezeNet(n_classes=5), (1, 3, 32, 32)),
    (ResNet50, (1, 3, 32, 32)),
    (lambda: BottleneckA(None, 2, 6, 2, downsample_fb=True), (2, 3, 5, 5)),
], ids=['SqueezeNet', 'ResNet50', 'BottleneckA'])
def test_image_model_on_device(xp, make, shape):
    # Inference only (test mode): VGG16 needs 224 x 224 images and is left out as too slow.
    x = rand(*shape, dtype=np.float32)
    with zerograd.test_mode():
        np.random.seed(0)
        cpu = make()
        y_cpu = cpu(x)
        cpu.to_gpu()
        y = cpu(dev(x))
    assert_on_device(xp, y, *cpu.params())
    assert_close(y, y_cpu.data, rtol=1e-4, atol=1e-5)


# =============================================================================
# Optimizers: updates and state on the device
# =============================================================================
OPTIMIZERS = {
    'SGD': (lambda: optimizers.SGD(0.1), []),
    'MomentumSGD': (lambda: optimizers.MomentumSGD(0.1), ['vs']),
    'AdaGrad': (lambda: optimizers.AdaGrad(0.1), ['hs']),
    'AdaDelta': (lambda: optimizers.AdaDelta(), ['msg', 'msdx']),
    'Adam': (lambda: optimizers.Adam(0.01), ['ms', 'vs']),
}
HOOKS = {
    'none': lambda model: [],
    'WeightDecay+ClipGrad': lambda model: [optimizers.WeightDecay(0.1),
                                           optimizers.ClipGrad(0.5)],
    'FreezeParam': lambda model: [optimizers.FreezeParam(model.l0)],
}


def _train_steps(model, optimizer, x, t, steps=3):
    for _ in range(steps):
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update()


@pytest.mark.parametrize('name, hooks', [(name, 'none') for name in sorted(OPTIMIZERS)]
                         + [(name, hooks) for name in ('SGD', 'Adam') for hooks in HOOKS
                            if hooks != 'none'])
def test_optimizer_on_device(xp, name, hooks):
    make, state_names = OPTIMIZERS[name]
    x, t = rand(6, 4, dtype=np.float32), np.array([0, 1, 2, 0, 1, 2])
    models = []
    for to_device in (False, True):
        np.random.seed(1)
        model = MLP((5, 3))
        model(x)
        if to_device:
            model.to_gpu()
        optimizer = make().setup(model)
        for hook in HOOKS[hooks](model):
            optimizer.add_hook(hook)
        move = dev if to_device else (lambda a: a)
        _train_steps(model, optimizer, move(x), move(t))
        models.append((model, optimizer))
    (cpu, cpu_opt), (device, device_opt) = models
    for p_cpu, p in zip(cpu.params(), device.params()):
        assert_on_device(xp, p)
        assert_close(p, p_cpu.data, rtol=1e-4, atol=1e-6)
    for attr in state_names:
        states = getattr(device_opt, attr)
        assert states, attr
        assert_on_device(xp, *states.values())
    cpu_state = cpu_opt.state_dict()
    state = device_opt.state_dict()  # host copies, named by parameter
    assert sorted(state) == sorted(cpu_state)
    for key, value in state.items():
        assert type(value) is np.ndarray
        np.testing.assert_allclose(value, cpu_state[key], rtol=1e-4, atol=1e-6)


def test_optimizer_state_follows_the_model_between_devices(xp):
    x, t = rand(6, 4, dtype=np.float32), np.array([0, 1, 2, 0, 1, 2])
    model = MLP((5, 3))
    optimizer = optimizers.MomentumSGD(0.1).setup(model)
    _train_steps(model, optimizer, x, t, steps=1)  # state made on the CPU
    model.to_gpu()
    _train_steps(model, optimizer, dev(x), dev(t), steps=1)
    assert_on_device(xp, *optimizer.vs.values())
    model.to_cpu()
    _train_steps(model, optimizer, x, t, steps=1)
    assert all(type(v) is np.ndarray for v in optimizer.vs.values())


# =============================================================================
# Loaders
# =============================================================================
def test_dataloader_gpu_batches(xp):
    dataset = datasets.Spiral()
    np.random.seed(3)
    cpu_batches = [(x, t) for x, t in DataLoader(dataset, 64)]
    np.random.seed(3)
    loader = DataLoader(dataset, 64, gpu=True)
    batches = list(loader)
    assert len(batches) == len(cpu_batches) == 5
    for (x, t), (x_cpu, t_cpu) in zip(batches, cpu_batches):
        assert_on_device(xp, x, t)
        assert_close(x, x_cpu)
        assert np.array_equal(host(t), t_cpu)
    loader.to_cpu()
    x, t = next(iter(loader))
    assert type(x) is np.ndarray
    loader.to_gpu()
    assert_on_device(xp, *next(iter(loader)))


def test_dataloader_gpu_over_a_list_of_pairs(xp):
    pairs = [(np.full(3, i, dtype=np.float32), i % 2) for i in range(5)]
    x, t = next(iter(DataLoader(pairs, 4, shuffle=False, gpu=True)))
    assert_on_device(xp, x, t)
    assert_close(x, np.repeat(np.arange(4, dtype=np.float32), 3).reshape(4, 3))


def test_seq_dataloader_gpu_batches(xp):
    dataset = datasets.SinCurve()
    cpu = list(SeqDataLoader(dataset, 3))
    device = list(SeqDataLoader(dataset, 3, gpu=True))
    assert len(cpu) == len(device)
    for (x, t), (x_cpu, t_cpu) in zip(device[:5] + device[-2:], cpu[:5] + cpu[-2:]):
        assert_on_device(xp, x, t)
        assert_all_close([x, t], [x_cpu, t_cpu])


# =============================================================================
# Files: weights and checkpoints of a device model
# =============================================================================
def _device_model_with_adam(x, t):
    np.random.seed(2)
    model = MLP((5, 3))
    model(x)
    model.to_gpu()
    optimizer = optimizers.Adam(0.01).setup(model)
    _train_steps(model, optimizer, dev(x), dev(t), steps=2)
    return model, optimizer


def test_save_and_load_weights_of_a_device_model(xp, tmp_path):
    x, t = rand(6, 4, dtype=np.float32), np.array([0, 1, 2, 0, 1, 2])
    model, _ = _device_model_with_adam(x, t)
    path = str(tmp_path / 'weights.npz')
    model.save_weights(path)
    assert_on_device(xp, *model.params())  # saving never moves the model
    on_cpu = MLP((5, 3))
    on_cpu.load_weights(path)  # lazy weights: loaded as they are, on the CPU
    on_device = MLP((5, 3))
    on_device(x)
    on_device.to_gpu()
    on_device.load_weights(path)  # created weights: loaded onto the model's device
    assert_on_device(xp, *on_device.params())
    for p, p_cpu, p_device in zip(model.params(), on_cpu.params(), on_device.params()):
        assert type(p_cpu.data) is np.ndarray
        assert_close(p, p_cpu.data, rtol=0, atol=0)
        assert_close(p_device, p_cpu.data, rtol=0, atol=0)
    lazy_on_device = MLP((5, 3)).to_gpu()  # only the biases exist: the weights follow them
    lazy_on_device.load_weights(path)
    assert_on_device(xp, *lazy_on_device.params())


def test_checkpoint_of_a_device_model_resumes_on_the_device(xp, tmp_path):
    x, t = rand(6, 4, dtype=np.float32), np.array([0, 1, 2, 0, 1, 2])
    model, optimizer = _device_model_with_adam(x, t)
    path = str(tmp_path / 'ckpt.npz')
    checkpoints.save(path, model, optimizer, epoch=2)
    assert_on_device(xp, *model.params(), *optimizer.ms.values())
    restored = MLP((5, 3)).to_gpu()
    restored_optimizer = optimizers.Adam(0.01)
    assert checkpoints.load(path, restored, restored_optimizer) == {'epoch': 2}
    assert_on_device(xp, *restored.params(), *restored_optimizer.ms.values(),
                     *restored_optimizer.vs.values())
    assert restored_optimizer.t == optimizer.t == 2
    # One more step each: the restored run continues exactly as the original.
    _train_steps(model, optimizer, dev(x), dev(t), steps=1)
    _train_steps(restored, restored_optimizer, dev(x), dev(t), steps=1)
    for p, q in zip(model.params(), restored.params()):
        assert_close(q, host(p.data), rtol=1e-6, atol=0)
    on_cpu = MLP((5, 3))
    checkpoints.load(path, on_cpu, optimizers.Adam(0.01))  # and onto the CPU
    assert all(type(p.data) is np.ndarray for p in on_cpu.params())


# =============================================================================
# Training, and the command line
# =============================================================================
def _fit(to_device, tmp_path, epochs, resume=False):
    dataset = datasets.Spiral()
    np.random.seed(0)
    model = MLP((10, 3))
    model(dataset.data[:1])
    loader = DataLoader(dataset, 30, gpu=to_device)
    test_loader = DataLoader(datasets.Spiral(train=False), 100, shuffle=False, gpu=to_device)
    if to_device:
        model.to_gpu()
    optimizer = optimizers.SGD(1.0).setup(model)
    np.random.seed(1)
    history = training.fit(model, optimizer, loader, epochs, test_loader=test_loader,
                           out=str(tmp_path / ('gpu' if to_device else 'cpu')), quiet=True,
                           resume=resume)
    return model, history


def test_fit_on_device_matches_the_cpu(xp, tmp_path):
    cpu, cpu_history = _fit(False, tmp_path, 3)
    model, history = _fit(True, tmp_path, 3)
    assert_on_device(xp, *model.params())
    for name in ('train_loss', 'train_accuracy', 'test_loss', 'test_accuracy'):
        np.testing.assert_allclose(history[name], cpu_history[name], rtol=1e-4)
    resumed, resumed_history = _fit(True, tmp_path, 4, resume=True)
    assert_on_device(xp, *resumed.params())
    assert len(resumed_history) == 4


def test_fit_bptt_on_device_matches_the_cpu(xp):
    histories = []
    for to_device in (False, True):
        np.random.seed(0)
        model = recipes.BetterRNN(6, 1)
        model(np.zeros((4, 1)))  # create the lazy weights on the CPU
        model.reset_state()
        loader = SeqDataLoader(datasets.SinCurve(), 4, gpu=to_device)
        if to_device:
            model.to_gpu()
        optimizer = optimizers.Adam(0.01).setup(model)
        histories.append(training.fit_bptt(model, optimizer, loader, 1, bptt_length=30,
                                           quiet=True))
    assert_on_device(xp, *model.params())
    np.testing.assert_allclose(histories[1]['train_loss'], histories[0]['train_loss'],
                               rtol=1e-5)


def test_cli_train_and_info_with_gpu(xp, tmp_path, capsys):
    out = str(tmp_path / 'spiral')
    assert cli.main(['train', 'spiral', '--epochs', '2', '--gpu', '--quiet', '--out', out]) == 0
    assert os.path.exists(os.path.join(out, 'weights.npz'))
    assert cli.main(['train', 'spiral', '--epochs', '3', '--gpu', '--quiet', '--out', out,
                     '--resume']) == 0
    assert 'test accuracy' in capsys.readouterr().out
    assert 'GPU: available: ' in cli.info()


def test_sample_text_from_a_device_model(xp, tmp_path):
    (tmp_path / 'abc.txt').write_text('abcabcab')
    text = datasets.CharText(tmp_path / 'abc.txt')
    model = recipes.CharLSTM(3, 4, 5).to_gpu()
    sample = recipes.sample_text(model, text, 'ab', length=10)
    assert len(sample) == 12 and set(sample) <= set('abc')


# =============================================================================
# The checker itself: a deliberate leak must fail, with the checker's message
# =============================================================================
class LeakyExp(Function):
    """exp computed with NumPy whatever the device: the bug the checker is for."""

    def forward(self, x):
        return np.exp(x)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy * y


class HostMaskReLU(Function):
    """relu whose backward builds its mask on the host (np.asarray slips past the type)."""

    def forward(self, x):
        return cuda.get_array_module(x).maximum(x, 0)

    def backward(self, gy):
        x, = self.inputs
        return gy * (np.asarray(x.data) > 0).astype(gy.dtype)


def test_the_checker_fails_a_numpy_function_on_device_data():
    x = rand(3, 4)
    np.testing.assert_allclose(LeakyExp()(x).data, np.exp(x))  # unnoticed on the CPU
    with use_strict_device():
        with pytest.raises(TypeError, match=r'strict device check: numpy\.exp was applied'):
            check_on_device(strict, lambda a: LeakyExp()(a), [x])


def test_the_checker_fails_a_host_array_mixed_with_device_data():
    x = rand(3, 4)
    HostMaskReLU()(Variable(x)).backward()  # unnoticed on the CPU
    with use_strict_device():
        with pytest.raises(TypeError, match=r'strict device check: .* mixes a device array '
                                            r'with a NumPy array of shape \(3, 4\)'):
            check_on_device(strict, lambda a: HostMaskReLU()(a), [x])


def test_the_checker_fails_a_real_op_made_to_leak(monkeypatch):
    # The op suite above would fail if an op of zerograd itself leaked: make tanh leak.
    monkeypatch.setattr(F.Tanh, 'forward', lambda self, x: np.tanh(x))
    with use_strict_device():
        with pytest.raises(TypeError, match=r'numpy\.tanh was applied to a device array'):
            check_on_device(strict, ops.find(ops.DEVICE, 'tanh').zerograd(), [rand(3, 4)])
    monkeypatch.setattr(F.GetItemGrad, 'forward', _leaky_get_item_grad)
    with use_strict_device():
        with pytest.raises(TypeError, match=r'numpy\.add\.at was applied to a device array'):
            test_get_item_scatter_adds_repeated_indexes(strict)


def _leaky_get_item_grad(self, gy):
    gx = cuda.get_array_module(gy).zeros(self.in_shape, dtype=gy.dtype)
    np.add.at(gx, self.slices, gy)  # the CPU's scatter-add on device data
    return gx


def test_the_checker_fails_a_host_result_where_a_device_one_is_expected():
    class HostCopy(Function):
        def forward(self, x):
            return np.asarray(x) * 2  # the known gap: a silent copy to the host...

        def backward(self, gy):
            return gy * 2

    with use_strict_device():
        with pytest.raises(AssertionError, match='expected a device array, got ndarray'):
            check_on_device(strict, lambda a: HostCopy()(a), [rand(2)])  # ...caught here


def test_strict_arrays_behave_like_cupy_arrays():
    a = strict.asarray(np.arange(6.0).reshape(2, 3))
    assert type(a) is StrictArray and type(a.get()) is np.ndarray
    assert type(a.sum()) is StrictArray and a.sum().shape == ()  # 0-d, not a NumPy scalar
    assert type(a[0, 0]) is StrictArray
    assert type(np.float32(2) - a) is StrictArray  # NumPy scalars mix, as with CuPy
    assert type(2 * a + 1.5) is StrictArray and (a > 2).dtype == np.bool_
    assert np.shape(a) == (2, 3)  # metadata is not a computation
    host_array = np.ones(3)
    assert strict.asarray(host_array) is not host_array  # a copy: device memory is its own
    for leak in (lambda: a + np.ones(3), lambda: np.sum(a), lambda: a[np.array([0])],
                 lambda: a.__setitem__(0, np.zeros(3)), lambda: strict.add(a, np.ones(3)),
                 lambda: np.concatenate([a, a])):
        with pytest.raises(TypeError, match='strict device check'):
            leak()
    with pytest.raises(TypeError, match='scatter_add supports'):
        strict.cupyx.scatter_add(strict.zeros(3, dtype=np.int64), strict.asarray([0, 0]), 1)
    assert strict.get_array_module(a) is strict and strict.get_array_module(a.get()) is np


def test_use_strict_device_restores_the_cpu_only_state():
    with use_strict_device():
        assert cuda._stand_in is strict
    assert cuda._stand_in is None
    if importlib.util.find_spec('cupy') is None:
        ok, text = cuda.gpu_status()
        assert not ok and 'CuPy is not installed' in text
        with pytest.raises(ImportError, match='CuPy is not installed'):
            cuda.require_gpu('test')


@pytest.mark.skipif(importlib.util.find_spec('cupy') is not None, reason='CuPy is installed')
def test_cli_gpu_without_cupy_is_a_one_line_error(tmp_path, capsys):
    assert cli.main(['train', 'spiral', '--epochs', '1', '--gpu',
                     '--out', str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'CuPy is not installed' in err
    assert not os.listdir(tmp_path)  # nothing was trained or written


# =============================================================================
# The device check's benchmark stays runnable (on the stand-in; timings meaningless)
# =============================================================================
@pytest.mark.slow
def test_bench_gpu_runs_on_the_stand_in(tmp_path):
    import json
    import subprocess
    import sys
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = tmp_path / 'bench.json'
    proc = subprocess.run([sys.executable, os.path.join('benchmarks', 'bench_gpu.py'),
                           '--stand-in', '--quick', '--json', str(result)],
                          cwd=repo, env=dict(os.environ, ZEROGRAD_OFFLINE='1'),
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'stand-in run' in proc.stdout
    with open(result) as file:
        results = json.load(file)
    assert results['gpu_cpu_difference'] < 1e-5
    for workload in results['workloads'].values():
        assert workload['medians']['zerograd GPU'] > 0


# =============================================================================
# Ceil-mode pooling and ONNX, on the device
# =============================================================================
def test_ceil_mode_max_pooling_on_device(xp):
    def run(x):
        y = F.pooling(x, 3, stride=2, ceil_mode=True)
        (gx,) = _grad_of(F.sum(y * y), x)
        return y, gx

    x = rand(2, 3, 8, 7)
    y, gx = run(Variable(dev(x)))
    y_cpu, gx_cpu = run(Variable(x))
    assert_on_device(xp, y, gx)
    assert_close(y, y_cpu.data)
    assert_close(gx, gx_cpu.data)


class _SmallCNN(zerograd.Model):
    def __init__(self):
        super().__init__()
        self.conv = L.Conv2d(3, kernel_size=3, pad=1)
        self.bn = L.BatchNorm()
        self.fc = L.Linear(4)

    def forward(self, x):
        x = F.pooling(F.relu(self.bn(self.conv(x))), 3, stride=2, ceil_mode=True)
        return self.fc(F.flatten(x))


def _small_cnn(x):
    """(zerograd.onnx, a _SmallCNN with its parameters made by one call on x)."""
    pytest.importorskip('onnx')
    import zerograd.onnx as zonnx
    np.random.seed(0)
    model = _SmallCNN()
    model(x)
    return zonnx, model


def test_a_model_on_the_device_exports_the_file_it_exports_on_the_cpu(xp):
    x = rand(2, 1, 6, 6, dtype=np.float32)
    zonnx, model = _small_cnn(x)
    cpu_file = zonnx.export(model, x).SerializeToString()
    model.to_gpu()
    device_file = zonnx.export(model, dev(x)).SerializeToString()
    assert_on_device(xp, *model.params())  # export never moves the model
    assert device_file == cpu_file


def test_a_loaded_onnx_model_runs_and_trains_on_the_device(xp):
    x = rand(3, 1, 6, 6, dtype=np.float32)
    zonnx, model = _small_cnn(x)
    cpu = zonnx.load(zonnx.export(model, x))
    device = zonnx.load(zonnx.export(model, x)).to_gpu()
    ys = []
    for m, data in ((cpu, x), (device, dev(x))):
        ys.append(m(data))
        m.cleargrads()
        F.sum(ys[-1] * ys[-1]).backward()
    y_cpu, y = ys
    assert_on_device(xp, y, *[p.grad for p in device.params() if p.grad is not None])
    # float32 convolutions sum in another order on the GPU: the tolerance of the others
    assert_close(y, y_cpu.data, rtol=1e-4, atol=1e-5)
    for key, p in cpu.onnx_names.items():
        if p.grad is not None:
            assert_close(device.onnx_names[key].grad, p.grad.data, rtol=1e-4, atol=1e-5)
