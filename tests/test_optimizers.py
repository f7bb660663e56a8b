"""Optimizers and hooks: every update rule against a plain NumPy transcription of API.md,
dtypes, Adam's step counter and step size, hooks, checks of the arguments, state dicts,
and (where PyTorch is installed) against torch.optim."""
import math

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Parameter, Variable
from zerograd.layers import Layer, Linear
from zerograd.models import MLP
from zerograd.optimizers import (SGD, AdaDelta, AdaGrad, Adam, ClipGrad, FreezeParam,
                                 MomentumSGD, Optimizer, WeightDecay)

SHAPES = {'W': (3, 4), 'b': (4,)}
STEPS = 3


def make_layer(dtype=np.float64, seed=0):
    """A Layer with two Parameters W (3, 4) and b (4,), fixed random values."""
    rng = np.random.default_rng(seed)
    layer = Layer()
    layer.W = Parameter(rng.standard_normal(SHAPES['W']).astype(dtype), name='W')
    layer.b = Parameter(rng.standard_normal(SHAPES['b']).astype(dtype), name='b')
    return layer


def make_grads(dtype=np.float64, seed=1):
    """STEPS gradients for each of W and b: [{'W': gW, 'b': gb}, ...]."""
    rng = np.random.default_rng(seed)
    return [{name: rng.standard_normal(shape).astype(dtype) for name, shape in SHAPES.items()}
            for _ in range(STEPS)]


def run(optimizer, layer, grads):
    """Set the given gradients and update, once per step."""
    optimizer.setup(layer)
    for step in grads:
        for name, g in step.items():
            getattr(layer, name).grad = Variable(g.copy())
        optimizer.update()
    return layer


# -- the rules of API.md, written out on plain arrays, one parameter at a time -------------
def ref_sgd(p, gs, lr=0.01):
    for g in gs:
        p = p - lr * g
    return p


def ref_momentum(p, gs, lr=0.01, momentum=0.9):
    v = np.zeros_like(p)
    for g in gs:
        v = momentum * v - lr * g
        p = p + v
    return p


def ref_adagrad(p, gs, lr=0.001, eps=1e-8):
    h = np.zeros_like(p)
    for g in gs:
        h = h + g ** 2
        p = p - lr * g / (np.sqrt(h) + eps)
    return p


def ref_adadelta(p, gs, rho=0.95, eps=1e-6):
    msg = np.zeros_like(p)
    msdx = np.zeros_like(p)
    for g in gs:
        msg = rho * msg + (1 - rho) * g ** 2
        dx = np.sqrt((msdx + eps) / (msg + eps)) * g
        msdx = rho * msdx + (1 - rho) * dx ** 2
        p = p - dx
    return p


def ref_adam(p, gs, alpha=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(gs, start=1):
        m = m + (1 - beta1) * (g - m)
        v = v + (1 - beta2) * (g ** 2 - v)
        lr = alpha * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
        p = p - lr * m / (np.sqrt(v) + eps)
    return p


CASES = [  # (optimizer class, hyper-parameters (non-default, so they matter), reference)
    (SGD, {'lr': 0.1}, ref_sgd),
    (MomentumSGD, {'lr': 0.05, 'momentum': 0.8}, ref_momentum),
    (AdaGrad, {'lr': 0.1, 'eps': 1e-7}, ref_adagrad),
    (AdaDelta, {'rho': 0.9, 'eps': 1e-5}, ref_adadelta),
    (Adam, {'alpha': 0.01, 'beta1': 0.8, 'beta2': 0.99, 'eps': 1e-7}, ref_adam),
]
IDS = [cls.__name__ for cls, _, _ in CASES]


@pytest.mark.parametrize('cls, kwargs, ref', CASES, ids=IDS)
def test_rule_matches_reference(cls, kwargs, ref):
    layer0 = make_layer()
    grads = make_grads()
    layer = run(cls(**kwargs), make_layer(), grads)
    for name in SHAPES:
        expected = ref(getattr(layer0, name).data, [step[name] for step in grads], **kwargs)
        np.testing.assert_allclose(getattr(layer, name).data, expected, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize('cls, kwargs, ref', CASES, ids=IDS)
def test_default_hyperparams_match_reference(cls, kwargs, ref):
    layer0 = make_layer()
    grads = make_grads()
    layer = run(cls(), make_layer(), grads)
    for name in SHAPES:
        expected = ref(getattr(layer0, name).data, [step[name] for step in grads])
        np.testing.assert_allclose(getattr(layer, name).data, expected, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize('numpy_scalars', [False, True], ids=['python', 'numpy-float64'])
@pytest.mark.parametrize('cls, kwargs, ref', CASES, ids=IDS)
def test_float32_stays_float32(cls, kwargs, ref, numpy_scalars):
    # NumPy 2: np.float64(0.1) * float32 array is float64; hyper-parameters given as NumPy
    # float64 scalars must not change the parameters' or the state's dtype.
    if numpy_scalars:
        kwargs = {k: np.float64(v) for k, v in kwargs.items()}
    layer0 = make_layer(np.float32)
    grads = make_grads(np.float32)
    optimizer = cls(**kwargs)
    layer = run(optimizer, make_layer(np.float32), grads)
    for name in SHAPES:
        param = getattr(layer, name)
        assert param.data.dtype == np.float32
        expected = ref(getattr(layer0, name).data.astype(np.float64),
                       [step[name].astype(np.float64) for step in grads],
                       **{k: float(v) for k, v in kwargs.items()})
        np.testing.assert_allclose(param.data, expected, rtol=1e-5, atol=1e-6)
    for value in optimizer.state_dict().values():
        if value.ndim:
            assert value.dtype == np.float32


def test_update_is_in_place_and_records_no_graph():
    layer = make_layer()
    W = layer.W.data
    run(Adam(), layer, make_grads())
    assert layer.W.data is W
    assert layer.W.creator is None


def test_adam_lr_property():
    optimizer = Adam(alpha=0.01, beta1=0.8, beta2=0.99).setup(make_layer())
    expected = [0.01 * math.sqrt(1 - 0.99 ** t) / (1 - 0.8 ** t) for t in (1, 2, 3)]
    assert optimizer.lr == pytest.approx(expected[0], rel=1e-15)  # t = 0: the first step's
    for t in (1, 2, 3):
        optimizer.update()
        assert optimizer.t == t
        assert optimizer.lr == pytest.approx(expected[t - 1], rel=1e-15)
        assert isinstance(optimizer.lr, float)


def test_adam_t_counts_updates_not_params():
    model = MLP((4, 3, 2))  # six parameters
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    optimizer = Adam().setup(model)
    for step in range(1, 4):
        model.cleargrads()
        F.sum(model(x)).backward()
        optimizer.update()
        assert optimizer.t == step
    assert len(optimizer.ms) == 6


def test_params_without_grad_are_skipped():
    layer = make_layer()
    b = layer.b.data.copy()
    layer.W.grad = Variable(np.ones(SHAPES['W']))
    optimizer = MomentumSGD().setup(layer)
    optimizer.update()
    np.testing.assert_array_equal(layer.b.data, b)
    assert set(optimizer.vs) == {id(layer.W)}  # no velocity made for b
    # state_dict names every slot of every parameter; b's is the zeros it would start from
    state = optimizer.state_dict()
    assert set(state) == {'v/W', 'v/b'}
    np.testing.assert_array_equal(state['v/b'], np.zeros_like(b))
    assert state['v/b'].dtype == b.dtype


def test_shared_layer_is_updated_once():
    shared = Linear(2, in_size=3)
    model = Layer()
    model.a = shared
    model.b = shared  # the same parameters registered twice
    W = shared.W.data.copy()
    shared.W.grad = Variable(np.ones_like(W))
    SGD(lr=0.5).setup(model).update()
    np.testing.assert_allclose(shared.W.data, W - 0.5)


# -- hooks ----------------------------------------------------------------------------------
def test_weight_decay():
    layer0, layer = make_layer(), make_layer()
    grads = make_grads()[:1]
    optimizer = SGD(lr=0.1)
    optimizer.add_hook(WeightDecay(0.01))
    run(optimizer, layer, grads)
    for name in SHAPES:
        p0, g = getattr(layer0, name).data, grads[0][name]
        np.testing.assert_allclose(getattr(layer, name).data, p0 - 0.1 * (g + 0.01 * p0),
                                   rtol=1e-14)


def test_weight_decay_gives_each_param_its_own_grad():
    # x0 + x1 hands both inputs the same gradient Variable: an in-place hook would add
    # rate * W0 to W1's gradient too.
    layer = Layer()
    layer.p0 = Parameter(np.array([1.0, 2.0]))
    layer.p1 = Parameter(np.array([10.0, 20.0]))
    F.sum(layer.p0 + layer.p1).backward()
    g = layer.p0.grad
    WeightDecay(0.5)([layer.p0, layer.p1])
    np.testing.assert_allclose(layer.p0.grad.data, [1.5, 2.0])
    np.testing.assert_allclose(layer.p1.grad.data, [6.0, 11.0])
    np.testing.assert_array_equal(g.data, [1.0, 1.0])  # the original is untouched


def test_weight_decay_keeps_float32():
    layer = make_layer(np.float32)
    layer.W.grad = Variable(np.ones(SHAPES['W'], np.float32))
    WeightDecay(np.float64(0.1))([layer.W])
    assert layer.W.grad.dtype == np.float32


def test_clip_grad_scales_by_global_norm():
    layer = make_layer()
    gW = np.full(SHAPES['W'], 2.0)
    gb = np.full(SHAPES['b'], -1.0)
    layer.W.grad, layer.b.grad = Variable(gW.copy()), Variable(gb.copy())
    norm = math.sqrt(12 * 4.0 + 4 * 1.0)
    ClipGrad(1.5)([layer.W, layer.b])
    scale = 1.5 / (norm + 1e-6)
    np.testing.assert_allclose(layer.W.grad.data, gW * scale, rtol=1e-14)
    np.testing.assert_allclose(layer.b.grad.data, gb * scale, rtol=1e-14)
    clipped = math.sqrt(np.sum(layer.W.grad.data ** 2) + np.sum(layer.b.grad.data ** 2))
    assert clipped < 1.5


def test_clip_grad_below_threshold_is_a_no_op():
    layer = make_layer()
    gW, gb = Variable(np.full(SHAPES['W'], 0.1)), Variable(np.full(SHAPES['b'], 0.1))
    layer.W.grad, layer.b.grad = gW, gb
    ClipGrad(1.0)([layer.W, layer.b])  # norm = 0.4
    assert layer.W.grad is gW and layer.b.grad is gb
    np.testing.assert_array_equal(gW.data, 0.1)


def test_clip_grad_keeps_float32():
    layer = make_layer(np.float32)
    layer.W.grad = Variable(np.full(SHAPES['W'], 10.0, np.float32))
    ClipGrad(1.0)([layer.W])
    assert layer.W.grad.dtype == np.float32


def test_freeze_param_freezes_the_given_layer_only():
    model = MLP((4, 3))
    x = np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32)
    model(x)
    before = {key: p.data.copy() for key, p in model.named_params().items()}
    optimizer = Adam(alpha=0.1).setup(model)
    optimizer.add_hook(FreezeParam(model.l0))
    for _ in range(2):
        model.cleargrads()
        F.sum(model(x)).backward()
        optimizer.update()
    after = model.named_params()
    for key in ('l0/W', 'l0/b'):
        np.testing.assert_array_equal(after[key].data, before[key])
        assert after[key].grad is None
    for key in ('l1/W', 'l1/b'):
        assert not np.array_equal(after[key].data, before[key])
    frozen = {id(model.l0.W), id(model.l0.b)}
    assert set(optimizer.ms) == set(optimizer.vs) == {id(model.l1.W), id(model.l1.b)}
    state = optimizer.state_dict()  # every slot named; the frozen layer's are zeros
    assert not frozen & set(optimizer.ms)
    for key in ('m/l0/W', 'm/l0/b', 'v/l0/W', 'v/l0/b'):
        assert not state[key].any(), key


def test_freeze_param_accepts_parameters():
    layer0, layer = make_layer(), make_layer()
    optimizer = SGD(lr=0.1)
    optimizer.add_hook(FreezeParam(layer.b))
    run(optimizer, layer, make_grads())
    np.testing.assert_array_equal(layer.b.data, layer0.b.data)
    assert not np.array_equal(layer.W.data, layer0.W.data)


def test_freeze_param_rejects_other_things():
    with pytest.raises(TypeError, match=r'FreezeParam: argument 1 must be a Layer or a Parameter'):
        FreezeParam(Linear(2), np.zeros(3))


def test_hooks_run_in_order_on_params_with_grad():
    layer = make_layer()
    calls = []
    optimizer = SGD().setup(layer)
    optimizer.add_hook(lambda params: calls.append(('first', [p.name for p in params])))
    optimizer.add_hook(lambda params: calls.append(('second', [p.name for p in params])))
    layer.W.grad = Variable(np.ones(SHAPES['W']))
    optimizer.update()
    assert calls == [('first', ['W']), ('second', ['W'])]


def test_hook_order_matters():
    # Clipping then decaying differs from decaying then clipping: the order added is kept.
    def final_W(hooks):
        layer = make_layer()
        optimizer = SGD(lr=1.0)
        for hook in hooks:
            optimizer.add_hook(hook)
        run(optimizer, layer, make_grads()[:1])
        return layer.W.data

    clip_first = final_W([ClipGrad(0.5), WeightDecay(0.5)])
    decay_first = final_W([WeightDecay(0.5), ClipGrad(0.5)])
    assert not np.allclose(clip_first, decay_first)


def test_add_hook_rejects_non_callables():
    with pytest.raises(TypeError, match='SGD.add_hook: a hook must be callable'):
        SGD().add_hook(3)


# -- argument checks ---------------------------------------------------------------------
@pytest.mark.parametrize('factory, match', [
    (lambda: SGD(lr=-0.1), r'SGD: lr must be a finite number >= 0, got -0\.1'),
    (lambda: SGD(lr=float('nan')), r'SGD: lr must be .*got nan'),
    (lambda: MomentumSGD(lr=-1e-3), r'MomentumSGD: lr must be .*got -0\.001'),
    (lambda: MomentumSGD(momentum=1.0), r'MomentumSGD: momentum must be in \[0, 1\), got 1\.0'),
    (lambda: MomentumSGD(momentum=-0.5), r'MomentumSGD: momentum must be in \[0, 1\), got -0\.5'),
    (lambda: AdaGrad(lr=-1), r'AdaGrad: lr must be .*got -1\.0'),
    (lambda: AdaGrad(eps=0), r'AdaGrad: eps must be a finite number > 0, got 0\.0'),
    (lambda: AdaDelta(rho=1), r'AdaDelta: rho must be in \[0, 1\), got 1\.0'),
    (lambda: AdaDelta(eps=-1e-6), r'AdaDelta: eps must be .*got -1e-06'),
    (lambda: Adam(alpha=-1), r'Adam: alpha must be a finite number >= 0, got -1\.0'),
    (lambda: Adam(beta1=1), r'Adam: beta1 must be in \[0, 1\), got 1\.0'),
    (lambda: Adam(beta2=1.5), r'Adam: beta2 must be in \[0, 1\), got 1\.5'),
    (lambda: Adam(eps=0), r'Adam: eps must be .*got 0\.0'),
    (lambda: WeightDecay(-0.1), r'WeightDecay: rate must be a finite number >= 0, got -0\.1'),
    (lambda: ClipGrad(0), r'ClipGrad: max_norm must be a finite number > 0, got 0\.0'),
])
def test_bad_hyperparams(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_hyperparam_of_wrong_type():
    with pytest.raises(TypeError, match=r"SGD: lr must be a real number, got '0.1' \(str\)"):
        SGD(lr='0.1')


@pytest.mark.parametrize('cls', [SGD, MomentumSGD, AdaGrad, AdaDelta, Adam])
def test_update_before_setup(cls):
    with pytest.raises(RuntimeError, match=rf'{cls.__name__}.update: .*call optimizer.setup'):
        cls().update()


def test_setup_rejects_non_layers():
    with pytest.raises(TypeError, match='SGD.setup: target must be a Layer or Model'):
        SGD().setup(np.zeros(3))


def test_setup_returns_self_and_base_is_abstract():
    optimizer = SGD()
    assert optimizer.setup(make_layer()) is optimizer
    layer = make_layer()
    layer.W.grad = Variable(np.ones(SHAPES['W']))
    with pytest.raises(NotImplementedError, match='Optimizer.update_one'):
        Optimizer().setup(layer).update()


def test_hyperparams_and_repr():
    optimizer = MomentumSGD(lr=0.1, momentum=0.5)
    assert optimizer.hyperparams() == {'lr': 0.1, 'momentum': 0.5}
    assert repr(optimizer) == 'MomentumSGD(lr=0.1, momentum=0.5)'
    assert Adam().hyperparams() == {'alpha': 0.001, 'beta1': 0.9, 'beta2': 0.999, 'eps': 1e-8}


# -- state dicts ----------------------------------------------------------------------------
STATE_KEYS = {
    SGD: set(),
    MomentumSGD: {'v/W', 'v/b'},
    AdaGrad: {'h/W', 'h/b'},
    AdaDelta: {'msg/W', 'msg/b', 'msdx/W', 'msdx/b'},
    Adam: {'t', 'm/W', 'm/b', 'v/W', 'v/b'},
}


@pytest.mark.parametrize('cls, kwargs, ref', CASES, ids=IDS)
def test_state_dict_round_trip(cls, kwargs, ref):
    grads = make_grads()
    straight = run(cls(**kwargs), make_layer(), grads)

    layer = make_layer()
    first = cls(**kwargs)
    run(first, layer, grads[:2])  # two steps, then a new optimizer takes over
    state = first.state_dict()
    assert set(state) == STATE_KEYS[cls]
    assert all(isinstance(v, np.ndarray) for v in state.values())

    resumed = cls(**kwargs).setup(layer)
    resumed.load_state_dict(state)
    run(resumed, layer, grads[2:])
    for name in SHAPES:
        np.testing.assert_array_equal(getattr(layer, name).data,
                                      getattr(straight, name).data)


def test_state_dict_is_a_copy():
    layer = make_layer()
    optimizer = MomentumSGD()
    run(optimizer, layer, make_grads()[:1])
    state = optimizer.state_dict()
    state['v/W'][...] = 123.0
    assert not np.any(optimizer.vs[id(layer.W)] == 123.0)
    optimizer.load_state_dict(state)
    state['v/W'][...] = 7.0
    assert np.all(optimizer.vs[id(layer.W)] == 123.0)


def test_adam_state_dict_holds_t():
    optimizer = Adam()
    run(optimizer, make_layer(), make_grads())
    state = optimizer.state_dict()
    assert state['t'].shape == () and int(state['t']) == STEPS
    fresh = Adam().setup(make_layer())
    fresh.load_state_dict(state)
    assert fresh.t == STEPS


@pytest.mark.parametrize('change, match', [
    (lambda s: s.update({'q/W': np.zeros(SHAPES['W'])}), r"unknown name 'q/W'"),
    (lambda s: s.update({'m/nope': np.zeros(3)}), r"'m/nope' names no parameter"),
    (lambda s: s.update({'m/W': np.zeros((4, 3))}),
     r"'m/W' has shape \(4, 3\) but the parameter has \(3, 4\)"),
    (lambda s: s.pop('t'), r"missing 't'"),
    (lambda s: s.update({'t': np.array(1.5)}), r"'t' must be a non-negative integer"),
])
def test_load_state_dict_checks(change, match):
    optimizer = Adam()
    layer = make_layer()
    run(optimizer, layer, make_grads())
    state = optimizer.state_dict()
    before = {k: v.copy() for k, v in optimizer.state_dict().items()}
    change(state)
    with pytest.raises(ValueError, match='Adam.load_state_dict: .*' + match):
        optimizer.load_state_dict(state)
    for key, value in optimizer.state_dict().items():  # nothing changed
        np.testing.assert_array_equal(value, before[key])


def test_state_dict_before_setup():
    with pytest.raises(RuntimeError, match=r'Adam.state_dict: .*setup'):
        Adam().state_dict()


# -- PyTorch --------------------------------------------------------------------------------
TORCH_CASES = [
    # (ours, torch.optim factory); float64 everywhere so that only the formulas differ.
    (lambda: SGD(lr=0.1), lambda torch, ps: torch.optim.SGD(ps, lr=0.1)),
    # torch: v = mu v + g, p -= lr v; ours: v = mu v - lr g, p += v. With a constant lr the
    # two velocities differ by the factor -lr, so the parameters are the same.
    (lambda: MomentumSGD(lr=0.05, momentum=0.8),
     lambda torch, ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8)),
    # torch adds eps outside the square root, as we do.
    (lambda: AdaGrad(lr=0.1, eps=1e-7),
     lambda torch, ps: torch.optim.Adagrad(ps, lr=0.1, eps=1e-7, initial_accumulator_value=0)),
    (lambda: AdaDelta(rho=0.9, eps=1e-5),
     lambda torch, ps: torch.optim.Adadelta(ps, lr=1.0, rho=0.9, eps=1e-5)),
    # torch: p -= alpha / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), that is ours
    # with eps replaced by eps * sqrt(1 - b2^t). With eps = 1e-12 against gradients of
    # order 1 the two differ by about 1e-12 relative, far below the tolerance.
    (lambda: Adam(alpha=0.01, beta1=0.8, beta2=0.99, eps=1e-12),
     lambda torch, ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-12)),
]


@pytest.mark.parametrize('ours, theirs', TORCH_CASES, ids=IDS)
def test_matches_torch(ours, theirs):
    torch = pytest.importorskip('torch')
    layer = make_layer()
    tensors = [torch.tensor(getattr(layer, name).data.copy(), requires_grad=True)
               for name in SHAPES]
    torch_optimizer = theirs(torch, tensors)
    optimizer = ours().setup(layer)
    for step in make_grads()[:2]:
        for name, tensor in zip(SHAPES, tensors):
            getattr(layer, name).grad = Variable(step[name].copy())
            tensor.grad = torch.tensor(step[name].copy())
        optimizer.update()
        torch_optimizer.step()
        for name, tensor in zip(SHAPES, tensors):
            np.testing.assert_allclose(getattr(layer, name).data, tensor.detach().numpy(),
                                       rtol=1e-10, atol=1e-13)


def test_adam_default_eps_close_to_torch():
    # With the default eps = 1e-8 the difference described above is visible but bounded:
    # at step t, with s = sqrt(v) and c = sqrt(1 - b2^t), the two steps differ by
    # lr |m| (1/(s + c eps) - 1/(s + eps)) <= lr |m| eps / s^2; the test sums that bound.
    torch = pytest.importorskip('torch')
    layer = make_layer()
    tensors = [torch.tensor(getattr(layer, name).data.copy(), requires_grad=True)
               for name in SHAPES]
    torch_optimizer = torch.optim.Adam(tensors)
    optimizer = Adam().setup(layer)
    bound = {name: 0.0 for name in SHAPES}
    for step in make_grads():
        for name, tensor in zip(SHAPES, tensors):
            getattr(layer, name).grad = Variable(step[name].copy())
            tensor.grad = torch.tensor(step[name].copy())
        optimizer.update()
        torch_optimizer.step()
        for name in SHAPES:
            param = getattr(layer, name)
            m, v = optimizer.ms[id(param)], optimizer.vs[id(param)]
            bound[name] = bound[name] + optimizer.lr * np.abs(m) * optimizer.eps / v
    for name, tensor in zip(SHAPES, tensors):
        difference = np.abs(getattr(layer, name).data - tensor.detach().numpy())
        assert np.all(difference <= bound[name] * 1.01 + 1e-15)
        assert difference.max() > 0  # the formulas really differ


# -- CuPy -----------------------------------------------------------------------------------
@pytest.mark.parametrize('cls, kwargs, ref', CASES, ids=IDS)
def test_cupy_matches_numpy(cls, kwargs, ref):
    cupy = pytest.importorskip('cupy')
    from zerograd import cuda
    if not cuda.gpu_available():
        pytest.skip('no GPU')
    grads = make_grads(np.float32)
    on_cpu = run(cls(**kwargs), make_layer(np.float32), grads)
    layer = make_layer(np.float32).to_gpu()
    optimizer = cls(**kwargs).setup(layer)
    for step in grads:
        for name, g in step.items():
            getattr(layer, name).grad = Variable(cupy.asarray(g))
        optimizer.update()
    for name in SHAPES:
        data = getattr(layer, name).data
        assert isinstance(data, cupy.ndarray) and data.dtype == np.float32
        np.testing.assert_allclose(cupy.asnumpy(data), getattr(on_cpu, name).data,
                                   rtol=1e-5, atol=1e-6)
    for value in optimizer.state_dict().values():
        assert isinstance(value, np.ndarray)


# -----------------------------------------------------------------------------
# A hyper-parameter set after construction is checked as the constructor checks it
# -----------------------------------------------------------------------------
BAD_HYPERPARAMS = [
    (SGD, 'lr', float('nan')), (SGD, 'lr', -0.1), (SGD, 'lr', float('inf')), (SGD, 'lr', '0.1'),
    (MomentumSGD, 'lr', -1.0), (MomentumSGD, 'momentum', -1), (MomentumSGD, 'momentum', 1.0),
    (AdaGrad, 'eps', 0), (AdaGrad, 'lr', True), (AdaDelta, 'rho', float('nan')),
    (AdaDelta, 'eps', -1e-6), (Adam, 'alpha', float('nan')), (Adam, 'beta1', 1.0),
    (Adam, 'beta2', -0.1), (Adam, 'eps', None),
]


@pytest.mark.parametrize('cls, name, value', BAD_HYPERPARAMS,
                         ids=[f'{c.__name__}.{n}={v!r}' for c, n, v in BAD_HYPERPARAMS])
def test_hyperparameter_set_later_is_checked_like_in_the_constructor(cls, name, value):
    with pytest.raises((TypeError, ValueError)) as at_construction:
        cls(**{name: value})
    optimizer = cls()
    before = getattr(optimizer, name)
    with pytest.raises(at_construction.type) as later:
        setattr(optimizer, name, value)
    assert str(later.value) == str(at_construction.value)
    assert str(later.value).startswith(f'{cls.__name__}: {name} must be')
    assert getattr(optimizer, name) == before  # unchanged


def test_nan_learning_rate_set_later_never_reaches_the_weights():
    layer = Linear(2, in_size=3)
    optimizer = SGD(lr=0.1).setup(layer)
    with pytest.raises(ValueError, match='SGD: lr must be a finite number >= 0, got nan'):
        optimizer.lr = float('nan')
    loss = F.sum(layer(np.ones((1, 3), dtype=np.float32)))
    loss.backward()
    optimizer.update()
    assert np.isfinite(layer.W.data).all()


def test_valid_hyperparameter_set_later_is_a_python_float():
    optimizer = MomentumSGD()
    optimizer.lr = np.float64(0.5)
    optimizer.momentum = 0
    assert type(optimizer.lr) is float and optimizer.lr == 0.5
    assert type(optimizer.momentum) is float and optimizer.momentum == 0.0


def test_adam_lr_is_derived_and_says_to_set_alpha():
    optimizer = Adam()
    with pytest.raises(AttributeError, match='Adam: lr is derived .* set alpha instead'):
        optimizer.lr = 0.1


@pytest.mark.parametrize('cls', [SGD, MomentumSGD, AdaGrad, AdaDelta, Adam])
def test_update_does_not_check_hyperparameters_again(cls, monkeypatch):
    optimizer = cls()
    layer = Linear(2, in_size=3)
    optimizer.setup(layer)
    calls = []
    rules = {name: (lambda who, n, v, rule=rule: calls.append(n) or rule(who, n, v))
             for name, rule in cls._hyperparam_rules.items()}
    monkeypatch.setattr(cls, '_hyperparam_rules', rules)
    for _ in range(5):
        layer.cleargrads()
        F.sum(layer(np.ones((1, 3), dtype=np.float32))).backward()
        optimizer.update()
    assert calls == []
    setattr(optimizer, cls._hyperparam_names[0], 0.5)  # an assignment goes through the rule
    assert calls == [cls._hyperparam_names[0]]
