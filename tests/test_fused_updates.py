"""The optimizers' fused updates (``Optimizer._blocks``): every optimizer, with every
setting, gives the bits of its book formula on whole arrays, written out here as it stood
before the fast path (in place, the same operations in the same order), in float32 and
float64, over parameters of several blocks with a partial last one; float32 stays float32;
the scratch blocks are made once; the cases the fast path leaves to the formula (0-d,
non-contiguous, another dtype, overlapping arrays) still update; hooks still work."""
import math

import numpy as np
import pytest

from zerograd import Parameter, Variable
from zerograd import optimizers as O
from zerograd.layers import Layer

# Three blocks and a partial fourth, one of a single block, a 2-D one, a tiny one.
SHAPES = {'big': (3 * O._BLOCK + 123,), 'one': (O._BLOCK,), 'W': (37, 41), 'b': (5,)}
STEPS = 4


# -- the formulas as they were written before the fused path (the oracle) -----------------
def book_sgd(o, p, g, st):
    p -= o.lr * g


def book_momentum(o, p, g, st):
    v = st.setdefault('v', np.zeros_like(p))
    v *= o.momentum
    v -= o.lr * g
    if o.nesterov:
        p += o.momentum * v - o.lr * g
    else:
        p += v


def book_adagrad(o, p, g, st):
    h = st.setdefault('h', np.zeros_like(p))
    h += g * g
    p -= o.lr * g / (np.sqrt(h) + o.eps)


def book_adadelta(o, p, g, st):
    msg = st.setdefault('msg', np.zeros_like(p))
    msdx = st.setdefault('msdx', np.zeros_like(p))
    rho, eps = o.rho, o.eps
    msg *= rho
    msg += (1 - rho) * g * g
    dx = np.sqrt((msdx + eps) / (msg + eps)) * g
    msdx *= rho
    msdx += (1 - rho) * dx * dx
    p -= dx


def book_adam(o, p, g, st):
    m = st.setdefault('m', np.zeros_like(p))
    v = st.setdefault('v', np.zeros_like(p))
    m += (1 - o.beta1) * (g - m)
    v += (1 - o.beta2) * (g * g - v)
    p -= o.lr * m / (np.sqrt(v) + o.eps)


def book_adamw(o, p, g, st):
    m = st.setdefault('m', np.zeros_like(p))
    v = st.setdefault('v', np.zeros_like(p))
    t = o.t
    step_size = o.alpha / (1 - o.beta1 ** t)
    bias_correction2_sqrt = math.sqrt(1 - o.beta2 ** t)
    if o.weight_decay != 0:
        p *= 1 - o.alpha * o.weight_decay
    m += (1 - o.beta1) * (g - m)
    v *= o.beta2
    v += (1 - o.beta2) * g * g
    denom = np.sqrt(v) / bias_correction2_sqrt
    denom += o.eps
    p -= step_size * m / denom


def book_rmsprop(o, p, g, st):
    if o.weight_decay != 0:
        g = g + o.weight_decay * p
    alpha = o.alpha
    square_avg = st.setdefault('s', np.zeros_like(p))
    square_avg *= alpha
    square_avg += (1 - alpha) * g * g
    if o.centered:
        grad_avg = st.setdefault('a', np.zeros_like(p))
        grad_avg += (1 - alpha) * (g - grad_avg)
        avg = np.sqrt(square_avg - grad_avg * grad_avg)
    else:
        avg = np.sqrt(square_avg)
    avg += o.eps
    if o.momentum > 0:
        buf = st.setdefault('b', np.zeros_like(p))
        buf *= o.momentum
        buf += g / avg
        p -= o.lr * buf
    else:
        p -= o.lr * g / avg


CASES = {
    'SGD': (lambda: O.SGD(lr=0.1), book_sgd),
    'MomentumSGD': (lambda: O.MomentumSGD(lr=0.1, momentum=0.9), book_momentum),
    'MomentumSGD-nesterov': (lambda: O.MomentumSGD(lr=0.1, momentum=0.8, nesterov=True),
                             book_momentum),
    'AdaGrad': (lambda: O.AdaGrad(lr=0.1), book_adagrad),
    'AdaDelta': (lambda: O.AdaDelta(rho=0.9), book_adadelta),
    'Adam': (lambda: O.Adam(alpha=0.01), book_adam),
    'AdamW': (lambda: O.AdamW(lr=0.01, weight_decay=0.1), book_adamw),
    'AdamW-no-decay': (lambda: O.AdamW(lr=0.01, weight_decay=0.0), book_adamw),
    'RMSprop': (lambda: O.RMSprop(lr=0.01), book_rmsprop),
    'RMSprop-all': (lambda: O.RMSprop(lr=0.01, weight_decay=0.1, momentum=0.9,
                                      centered=True), book_rmsprop),
    'RMSprop-momentum': (lambda: O.RMSprop(lr=0.01, momentum=0.5), book_rmsprop),
    'RMSprop-centered-decay': (lambda: O.RMSprop(lr=0.01, weight_decay=0.01, centered=True),
                               book_rmsprop),
}


def make_layer(dtype, seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    layer = Layer()
    for name, shape in shapes.items():
        setattr(layer, name, Parameter(rng.standard_normal(shape).astype(dtype), name=name))
    return layer


def make_grads(dtype, shapes=SHAPES, seed=1):
    rng = np.random.default_rng(seed)
    grads = []
    for _ in range(STEPS):
        step = {}
        for name, shape in shapes.items():
            g = rng.standard_normal(shape).astype(dtype)
            g.reshape(-1)[::7] = 0  # zeros too: sqrt(0), 0 * x
            step[name] = g
        grads.append(step)
    return grads


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def check_against_book(make, book, dtype, shapes=SHAPES, hooks=()):
    layer = make_layer(dtype, shapes=shapes)
    expected = {name: getattr(layer, name).data.copy() for name in shapes}
    states = {name: {} for name in shapes}
    optimizer = make().setup(layer)
    for hook in hooks:
        optimizer.add_hook(hook)
    oracle = make()  # hyper-parameters and t for the book's formulas
    for step in make_grads(dtype, shapes):
        for name, g in step.items():
            getattr(layer, name).grad = Variable(g.copy())
        optimizer.update()
        if hasattr(oracle, 't'):
            oracle.t += 1
        for name, g in step.items():
            for hook in hooks:
                g = hook.book(expected[name], g)
            book(oracle, expected[name], g, states[name])
    for name in shapes:
        got = getattr(layer, name).data
        assert got.dtype == dtype, (name, got.dtype)
        assert same_bits(got, expected[name]), (name, np.abs(got - expected[name]).max())
    return optimizer


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
@pytest.mark.parametrize('case', list(CASES))
def test_fused_update_equals_the_book_formula_bit_for_bit(case, dtype):
    make, book = CASES[case]
    optimizer = check_against_book(make, book, dtype)
    # and the state the fused path kept is the state's own array, in the parameter's dtype
    for attr in optimizer._state_attrs.values():
        for value in getattr(optimizer, attr).values():
            assert value.dtype == dtype


@pytest.mark.parametrize('case', list(CASES))
def test_fused_path_is_taken_and_scratch_is_made_once(case):
    make, _ = CASES[case]
    layer = make_layer(np.float32)
    optimizer = make().setup(layer)
    grads = make_grads(np.float32)
    for name, g in grads[0].items():
        getattr(layer, name).grad = Variable(g)
    optimizer.update()
    scratch = optimizer.__dict__['_scratch_buffers'][np.dtype(np.float32)]
    ids = [id(block) for block in scratch]
    assert all(block.size == O._BLOCK for block in scratch)
    optimizer.update()
    assert [id(block) for block in optimizer.__dict__['_scratch_buffers'][
        np.dtype(np.float32)]] == ids
    assert 'scratch' not in ' '.join(optimizer.state_dict())


def test_blocks_cover_every_element_once():
    layer = make_layer(np.float64)
    optimizer = O.SGD().setup(layer)
    param = layer.big
    param.grad = Variable(np.ones_like(param.data))
    blocks = list(optimizer._blocks(param, scratch=1))
    assert sum(p.size for p, g, s in blocks) == param.data.size
    assert [p.size for p, g, s in blocks][-1] == 123
    assert all(np.shares_memory(p, param.data) for p, g, s in blocks)


class _Odd:
    """Layouts the fast path leaves to the book's formula."""

    @staticmethod
    def zero_d(dtype):
        return np.array(1.5, dtype), np.array(0.25, dtype)

    @staticmethod
    def transposed(dtype):
        rng = np.random.default_rng(3)
        return (rng.standard_normal((6, 4)).astype(dtype).T,
                rng.standard_normal((4, 6)).astype(dtype))

    @staticmethod
    def strided_grad(dtype):
        rng = np.random.default_rng(4)
        return (rng.standard_normal(40).astype(dtype),
                rng.standard_normal(80).astype(dtype)[::2])

    @staticmethod
    def float64_grad(dtype):
        rng = np.random.default_rng(5)
        return rng.standard_normal(40).astype(dtype), rng.standard_normal(40)


@pytest.mark.parametrize('layout', ['zero_d', 'transposed', 'strided_grad', 'float64_grad'])
@pytest.mark.parametrize('case', ['SGD', 'MomentumSGD-nesterov', 'Adam', 'AdamW',
                                  'RMSprop-all', 'AdaDelta', 'AdaGrad'])
def test_odd_layouts_run_the_book_formula(case, layout):
    make, book = CASES[case]
    data, grad = getattr(_Odd, layout)(np.float32)
    param = Parameter(np.copy(data))  # order kept (ndarray.copy makes it C-contiguous)
    layer = Layer()
    layer.p = param
    optimizer = make().setup(layer)
    expected, state = data.copy(), {}
    oracle = make()
    for _ in range(3):
        param.grad = Variable(grad)
        assert optimizer._blocks(param, ()) is None
        optimizer.update()
        if hasattr(oracle, 't'):
            oracle.t += 1
        book(oracle, expected, grad, state)
    assert same_bits(param.data, expected)
    assert param.data.dtype == np.float32


def _adam_step_is_the_book_formula(param, grad_values):
    """One Adam update of param (its grad set) takes the book's formula, not the fused one,
    and gives its bits; grad_values: the gradient's values before the update."""
    layer = Layer()
    layer.p = param
    optimizer = O.Adam(alpha=0.1).setup(layer)
    assert optimizer._blocks(param, ()) is None
    expected, state = param.data.copy(), {}
    optimizer.update()
    oracle = O.Adam(alpha=0.1)
    oracle.t = 1
    book_adam(oracle, expected, grad_values, state)
    assert same_bits(param.data, expected)
    return optimizer


def test_a_gradient_that_is_the_parameter_itself_runs_the_book_formula():
    param = Parameter(np.arange(10, dtype=np.float32))
    param.grad = Variable(param.data)  # the same array: in place, order would matter
    _adam_step_is_the_book_formula(param, param.data.copy())


class _BookWeightDecay(O.WeightDecay):
    def book(self, p, g):
        return g + self.rate * p


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
@pytest.mark.parametrize('case', ['SGD', 'MomentumSGD', 'Adam', 'RMSprop-all'])
def test_weight_decay_hook_with_the_fused_update(case, dtype):
    make, book = CASES[case]
    check_against_book(make, book, dtype, hooks=(_BookWeightDecay(0.01),))


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_clip_grad_and_freeze_param_with_the_fused_update(dtype):
    layer = make_layer(dtype)
    expected = {name: getattr(layer, name).data.copy() for name in SHAPES}
    states = {name: {} for name in SHAPES}
    optimizer = O.Adam(alpha=0.01).setup(layer)
    optimizer.add_hook(O.WeightDecay(0.01))
    optimizer.add_hook(O.ClipGrad(1.0))
    optimizer.add_hook(O.FreezeParam(layer.W))
    oracle = O.Adam(alpha=0.01)
    for step in make_grads(dtype):
        for name, g in step.items():
            getattr(layer, name).grad = Variable(g.copy())
        optimizer.update()
        oracle.t += 1
        decayed = {name: g + 0.01 * expected[name] for name, g in step.items()}
        total = sum(float(np.sum(np.square(g), dtype=np.float64)) for g in decayed.values())
        norm = math.sqrt(total)
        if norm > 1.0:
            decayed = {name: g * (1.0 / (norm + 1e-6)) for name, g in decayed.items()}
        for name, g in decayed.items():
            if name != 'W':
                book_adam(oracle, expected[name], g, states[name])
    for name in SHAPES:
        assert same_bits(getattr(layer, name).data, expected[name]), name
    assert optimizer._state('ms', layer.W).any() == False  # noqa: E712  (never updated)


def test_a_shared_gradient_is_not_changed_by_the_update():
    layer = make_layer(np.float32, shapes={'a': (O._BLOCK + 5,), 'b': (O._BLOCK + 5,)})
    shared = np.ones((O._BLOCK + 5,), np.float32)
    layer.a.grad = layer.b.grad = Variable(shared)
    O.Adam().setup(layer).update()
    assert (shared == 1).all()


# -- the unrecorded backward of softmax cross-entropy and ReLU -----------------------------
# backward() runs the array fast path; backward(create_graph=True) the composed ops, the
# formula as written before: the gradients must match to the bit.
import zerograd.functions as F  # noqa: E402


def _grads_both_ways(loss_of, x):
    grads = []
    for create_graph in (False, True):
        v = Variable(x.copy())
        loss_of(v).backward(create_graph=create_graph)
        grads.append(v.grad.data)
    return grads


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
@pytest.mark.parametrize('shape', [(100, 10), (7, 1000), (1, 3)])
def test_softmax_cross_entropy_fast_gradient_is_the_composed_one(dtype, shape):
    rng = np.random.default_rng(6)
    x = (rng.standard_normal(shape) * 30).astype(dtype)  # large scores: exp underflows to 0
    x[0, 0] = -np.inf if shape[1] > 1 else x[0, 0]
    t = rng.integers(0, shape[1], shape[0])
    fast, composed = _grads_both_ways(lambda v: F.softmax_cross_entropy(v, t) * 3.0, x)
    assert fast.dtype == dtype and same_bits(fast, composed)


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
@pytest.mark.parametrize('shape', [(100, 1000), (5,), ()])
def test_relu_fast_gradient_is_the_composed_one(dtype, shape):
    rng = np.random.default_rng(7)
    x = np.asarray(rng.standard_normal(shape)).astype(dtype)
    if x.ndim:
        x.reshape(-1)[:3] = (0.0, -0.0, np.nan)
    gy = np.asarray(rng.standard_normal(shape)).astype(dtype)
    fast, composed = _grads_both_ways(lambda v: F.sum(F.relu(v) * gy), x)
    assert type(fast) is np.ndarray and fast.dtype == dtype and same_bits(fast, composed)


def test_overlapping_views_run_the_book_formula_and_separate_arrays_the_fused_one():
    buffer = np.arange(11, dtype=np.float32)
    param = Parameter(buffer[:10])  # the gradient is the same memory, one element on
    param.grad = Variable(buffer[1:])
    optimizer = _adam_step_is_the_book_formula(param, np.arange(1, 11, dtype=np.float32))
    # arrays that own their memory need no overlap test: one block, the arrays themselves
    other = Parameter(np.arange(10, dtype=np.float32))
    other.grad = Variable(np.ones(10, dtype=np.float32))
    (p, g, s1, s2), = optimizer._blocks(other, ())
    assert np.shares_memory(p, other.data) and np.shares_memory(g, other.grad.data)
