"""The per-op checks of the neural-network functions of ``zerograd.functions``: reductions
to a mean, activations, linear, softmax and the losses, dropout, batch norm, embed_id and
the joining ops.

Every differentiable op goes through ``check_op`` (forward against NumPy in float64 and
float32, float32 kept, first derivatives and double backward against central differences,
a second shape). Then what ``check_op`` cannot see: numerical stability at extreme scores,
float32 through double backward, the composed ``_simple`` oracles against the fused ops,
dropout's mask, batch norm's running statistics, and the error messages for bad input.
"""
import re
import warnings

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
from zerograd import Variable
from zerograd.testing import check_op


# =============================================================================
# NumPy references
# =============================================================================
def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_softmax(x, axis=1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x, axis=1):
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def np_mse(x0, x1):
    return ((x0 - x1) ** 2).sum() / len(x0)


def np_softmax_cross_entropy(x, t):
    return -np_log_softmax(x)[np.arange(len(x)), t].mean()


def np_sigmoid_cross_entropy(x, t):
    p = np_sigmoid(x)
    return -(t * np.log(p) + (1 - t) * np.log(1 - p)).sum() / len(x)


def np_binary_cross_entropy(p, t):
    return -(t * np.log(p) + (1 - t) * np.log(1 - p)).sum() / len(p)


def _batch_axes(x):
    return (0,) if x.ndim == 2 else (0, 2, 3)


def _channel(a, x):
    """A (C,) array shaped to broadcast against x (N, C) or (N, C, H, W)."""
    return a.reshape((1, -1) + (1,) * (x.ndim - 2))


def np_batch_norm(x, gamma, beta, mean=None, var=None, eps=2e-5):
    """Train mode (batch statistics) when mean/var are None, else test mode."""
    if mean is None:
        mean, var = x.mean(axis=_batch_axes(x)), x.var(axis=_batch_axes(x))
    xhat = (x - _channel(mean, x)) / np.sqrt(_channel(var, x) + eps)
    return _channel(gamma, x) * xhat + _channel(beta, x)


def np_dropout_mask(shape, ratio):
    np.random.seed(0)
    return np.random.rand(*shape) > ratio


# =============================================================================
# Input domains and constants
# =============================================================================
def away_from_zero(shape, rng):
    """|x| in [0.2, 1.5]: away from the kink of relu and leaky_relu."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.2, 1.5, size=shape)


def away_from_clip_edges(shape, rng):
    """In [-1, 1] but at least 0.1 from the clip bounds -0.5 and 0.5."""
    x = rng.uniform(-0.9, 0.9, size=shape)
    return np.where(np.abs(x) < 0.5, x * 0.8, np.sign(x) * (np.abs(x) + 0.1))


KINKLESS = dict(make_input=away_from_zero)
SCORES = dict(low=-3.0, high=3.0)
PROBABILITIES = dict(low=0.05, high=0.95)

_rng = np.random.default_rng(42)
T4 = np.array([2, 0, 1, 2])  # class ids for 4 rows of 3 scores
T41 = _rng.integers(0, 2, size=(4, 1)).astype(np.float64)  # 0/1 labels, shape (N, 1)
T43 = _rng.integers(0, 2, size=(4, 3)).astype(np.float64)  # multi-label, shape (N, C)
X43 = _rng.uniform(-1, 1, size=(4, 3))  # plain-array input of linear
IDS = np.array([[0, 4, 2], [4, 4, 1]])  # embed_id ids, repeats included
RUNNING_MEAN = _rng.uniform(-0.5, 0.5, size=3)
RUNNING_VAR = _rng.uniform(0.5, 2.0, size=3)


def like(a, x):
    """The constant a in x's dtype, so float32 checks see float32 constants."""
    return a.astype(x.dtype)


def batch_norm_train(x, gamma, beta):
    C = x.shape[1]
    return F.batch_norm(x, gamma, beta, np.zeros(C), np.ones(C))  # fresh running stats


def batch_norm_test(x, gamma, beta):
    with zerograd.test_mode():
        return F.batch_norm(x, gamma, beta, RUNNING_MEAN.copy(), RUNNING_VAR.copy())


def seeded_dropout(x, ratio=0.3):
    np.random.seed(0)  # the same mask at every call: dropout becomes a fixed linear op
    return F.dropout(x, ratio)


# =============================================================================
# check_op on every differentiable op
# =============================================================================
# name, f (Variables in), NumPy reference, input shapes, other shapes or None, domain
OPS = [
    # mean
    ('average', F.average, np.mean, [(2, 3, 4)], [(5,)], {}),
    ('mean', F.mean, np.mean, [(2, 3)], None, {}),
    ('mean axis=1', lambda x: F.mean(x, axis=1), lambda x: x.mean(axis=1),
     [(2, 3, 4)], None, {}),
    ('average axis=-1 keepdims', lambda x: F.average(x, -1, True),
     lambda x: x.mean(axis=-1, keepdims=True), [(2, 3, 4)], None, {}),
    ('average axis=(0, 2)', lambda x: F.average(x, (0, 2)), lambda x: x.mean(axis=(0, 2)),
     [(2, 3, 4)], None, {}),
    ('mean axis=0', lambda x: F.mean(x, axis=0), lambda x: x.mean(axis=0), [(4, 3)], None, {}),
    # activations
    ('sigmoid', F.sigmoid, np_sigmoid, [(2, 3)], [(2, 3, 4)], SCORES),
    ('sigmoid_simple', F.sigmoid_simple, np_sigmoid, [(2, 3)], [(4,)], SCORES),
    ('relu', F.relu, lambda x: np.maximum(x, 0), [(2, 3)], [(2, 3, 4)], KINKLESS),
    ('leaky_relu', F.leaky_relu, lambda x: np.where(x > 0, x, 0.2 * x),
     [(2, 3)], [(2, 3, 4)], KINKLESS),
    ('leaky_relu slope=0.1', lambda x: F.leaky_relu(x, slope=0.1),
     lambda x: np.where(x > 0, x, 0.1 * x), [(3, 4)], None, KINKLESS),
    ('clip', lambda x: F.clip(x, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5),
     [(3, 4)], [(2, 3, 4)], dict(make_input=away_from_clip_edges)),
    # linear
    ('linear', F.linear, lambda x, W, b: x @ W + b, [(4, 3), (3, 5), (5,)],
     [(1, 2), (2, 3), (3,)], {}),
    ('linear without b', F.linear, np.matmul, [(4, 3), (3, 5)], None, {}),
    ('linear ndarray x', lambda W, b: F.linear(like(X43, W), W, b), lambda W, b: X43 @ W + b,
     [(3, 5), (5,)], None, {}),
    ('linear_simple', F.linear_simple, lambda x, W, b: x @ W + b, [(4, 3), (3, 5), (5,)],
     None, {}),
    ('linear_simple without b', F.linear_simple, np.matmul, [(4, 3), (3, 5)], None, {}),
    # softmax
    *[(f'{name} axis={axis}', lambda x, f=f, axis=axis: f(x, axis=axis),
       lambda x, ref=ref, axis=axis: ref(x, axis=axis), [(3, 4)], [(2, 3, 4)], SCORES)
      for name, f, ref in [('softmax', F.softmax, np_softmax),
                           ('softmax_simple', F.softmax_simple, np_softmax),
                           ('log_softmax', F.log_softmax, np_log_softmax)]
      for axis in (0, 1, -1)],
    ('softmax default axis', F.softmax, np_softmax, [(3, 4)], [(2, 3, 4)], SCORES),
    ('log_softmax default axis', F.log_softmax, np_log_softmax, [(3, 4)], [(2, 3, 4)], SCORES),
    # losses
    ('mean_squared_error', F.mean_squared_error, np_mse, [(4, 3), (4, 3)], [(5,), (5,)], {}),
    ('mean_squared_error_simple', F.mean_squared_error_simple, np_mse, [(4, 3), (4, 3)],
     [(5, 1), (5, 1)], {}),
    ('softmax_cross_entropy', lambda x: F.softmax_cross_entropy(x, T4),
     lambda x: np_softmax_cross_entropy(x, T4), [(4, 3)], None, SCORES),
    ('softmax_cross_entropy_simple', lambda x: F.softmax_cross_entropy_simple(x, T4),
     lambda x: np_softmax_cross_entropy(x, T4), [(4, 3)], None, SCORES),
    ('sigmoid_cross_entropy (N, 1)', lambda x: F.sigmoid_cross_entropy(x, T41),
     lambda x: np_sigmoid_cross_entropy(x, T41), [(4, 1)], None, SCORES),
    ('sigmoid_cross_entropy (N,) labels', lambda x: F.sigmoid_cross_entropy(x, T41.ravel()),
     lambda x: np_sigmoid_cross_entropy(x, T41), [(4, 1)], None, SCORES),
    ('sigmoid_cross_entropy (N, C)', lambda x: F.sigmoid_cross_entropy(x, T43),
     lambda x: np_sigmoid_cross_entropy(x, T43), [(4, 3)], None, SCORES),
    ('binary_cross_entropy', lambda p: F.binary_cross_entropy(p, T43),
     lambda p: np_binary_cross_entropy(p, T43), [(4, 3)], None, PROBABILITIES),
    # regularisation, normalisation, embedding
    ('dropout (seeded mask)', seeded_dropout,
     lambda x: x * np_dropout_mask(x.shape, 0.3) / (1 - 0.3), [(4, 5)], [(2, 3, 4)], {}),
    ('batch_norm train', batch_norm_train, np_batch_norm, [(5, 3), (3,), (3,)],
     [(3, 2, 2, 3), (2,), (2,)], {}),
    ('batch_nrom train', lambda x, g, b: F.batch_nrom(x, g, b, np.zeros(3), np.ones(3)),
     np_batch_norm, [(4, 3), (3,), (3,)], None, {}),
    ('batch_norm test mode', batch_norm_test,
     lambda x, g, b: np_batch_norm(x, g, b, RUNNING_MEAN, RUNNING_VAR),
     [(4, 3), (3,), (3,)], [(2, 3, 2, 2), (3,), (3,)], {}),
    ('embed_id', lambda W: F.embed_id(IDS, W), lambda W: W[IDS], [(5, 3)], None, {}),
    ('embed_id 1-D ids', lambda W: F.embed_id(IDS[0], W), lambda W: W[IDS[0]],
     [(5, 2)], None, {}),
    # joining
    ('concat axis=0', lambda a, b: F.concat([a, b]), lambda a, b: np.concatenate([a, b]),
     [(2, 3), (1, 3)], [(2, 3, 2), (4, 3, 2)], {}),
    ('concat axis=1', lambda a, b, c: F.concat((a, b, c), axis=1),
     lambda a, b, c: np.concatenate([a, b, c], axis=1), [(2, 1), (2, 3), (2, 2)],
     [(2, 1, 3), (2, 2, 3), (2, 4, 3)], {}),
    ('concat axis=-1', lambda a, b: F.concat([a, b], axis=-1),
     lambda a, b: np.concatenate([a, b], axis=-1), [(2, 3, 1), (2, 3, 2)], None, {}),
    ('stack axis=0', lambda a, b: F.stack([a, b]), lambda a, b: np.stack([a, b]),
     [(2, 3), (2, 3)], [(4,), (4,)], {}),
    ('stack axis=1', lambda a, b, c: F.stack([a, b, c], axis=1),
     lambda a, b, c: np.stack([a, b, c], axis=1), [(2, 3)] * 3, None, {}),
    ('stack axis=-1', lambda a, b: F.stack([a, b], axis=-1),
     lambda a, b: np.stack([a, b], axis=-1), [(2, 3)] * 2, None, {}),
]
OP_IDS = [op[0] for op in OPS]


@pytest.mark.parametrize('name, f, ref, shapes, other, domain', OPS, ids=OP_IDS)
def test_op(name, f, ref, shapes, other, domain):
    check_op(name, f, ref, shapes, broadcast=other, **domain)


def _functions(y):
    """Every Function in the graph behind y."""
    todo, seen = [y.creator], set()
    while todo:
        func = todo.pop()
        if func is not None and func not in seen:
            seen.add(func)
            todo.extend(x.creator for x in func.inputs)
    return seen


@pytest.mark.parametrize('name, f, ref, shapes, other, domain', OPS, ids=OP_IDS)
def test_float32_stays_float32_through_double_backward(name, f, ref, shapes, other, domain):
    rng = np.random.default_rng(0)
    make = domain.get('make_input') or (
        lambda shape, rng: rng.uniform(domain.get('low', -1), domain.get('high', 1), shape))
    xs = [Variable(make(shape, rng).astype(np.float32)) for shape in shapes]
    y = f(*xs)
    assert y.dtype == np.float32, f'{name}: output is {y.dtype}'
    # Each Function's own backward keeps its inputs' dtypes (whatever the engine does after).
    for func in _functions(y):
        gys = [Variable(np.ones_like(out().data)) for out in func.outputs]
        with zerograd.no_grad():
            gxs = func.backward(*gys)
        for x, gx in zip(func.inputs, gxs if isinstance(gxs, tuple) else (gxs,)):
            assert gx is None or gx.dtype == x.dtype, \
                f'{name}: {type(func).__name__}.backward gave {gx.dtype} for a {x.dtype} input'
    y.backward(create_graph=True)
    gxs = [x.grad for x in xs]
    for i, gx in enumerate(gxs):
        assert gx.dtype == np.float32, f'{name}: gradient of input {i} is {gx.dtype}'
        xs[i].cleargrad()
    F.sum(gxs[0] * gxs[0]).backward()
    for i, x in enumerate(xs):
        assert x.grad is None or x.grad.dtype == np.float32, \
            f'{name}: second derivative of input {i} is {x.grad.dtype}'


# =============================================================================
# The composed _simple versions agree with the fused ones
# =============================================================================
SIMPLE_PAIRS = [
    ('sigmoid', F.sigmoid, F.sigmoid_simple, [(3, 4)], SCORES),
    ('softmax axis=1', F.softmax, F.softmax_simple, [(3, 4)], SCORES),
    ('softmax axis=0', lambda x: F.softmax(x, 0), lambda x: F.softmax_simple(x, 0),
     [(3, 4)], SCORES),
    ('softmax 3-D axis=-1', lambda x: F.softmax(x, -1), lambda x: F.softmax_simple(x, -1),
     [(2, 3, 4)], SCORES),
    ('linear', F.linear, F.linear_simple, [(4, 3), (3, 5), (5,)], {}),
    ('linear without b', F.linear, F.linear_simple, [(4, 3), (3, 5)], {}),
    ('mean_squared_error', F.mean_squared_error, F.mean_squared_error_simple,
     [(4, 3), (4, 3)], {}),
    ('softmax_cross_entropy', lambda x: F.softmax_cross_entropy(x, T4),
     lambda x: F.softmax_cross_entropy_simple(x, T4), [(4, 3)], SCORES),
]


def _value_grads(f, arrays, gy=None):
    xs = [Variable(a.copy()) for a in arrays]
    y = f(*xs)
    if gy is not None:
        y.grad = Variable(gy)
    y.backward(create_graph=True)
    gxs = [x.grad for x in xs]
    for x in xs:
        x.cleargrad()
    F.sum(gxs[0] * gxs[0]).backward()  # a second derivative through the first gradient
    return [y.data] + [g.data for g in gxs] + [np.zeros_like(a) if x.grad is None
                                              else x.grad.data for a, x in zip(arrays, xs)]


@pytest.mark.parametrize('dtype, rtol', [(np.float64, 1e-10), (np.float32, 1e-4)],
                         ids=['float64', 'float32'])
@pytest.mark.parametrize('name, fused, simple, shapes, domain', SIMPLE_PAIRS,
                         ids=[p[0] for p in SIMPLE_PAIRS])
def test_simple_version_agrees_with_fused(name, fused, simple, shapes, domain, dtype, rtol):
    rng = np.random.default_rng(3)
    arrays = [rng.uniform(domain.get('low', -1), domain.get('high', 1), shape).astype(dtype)
              for shape in shapes]
    gy = rng.standard_normal(np.shape(fused(*arrays).data)).astype(dtype)
    labels = ['value'] + [f'gradient {i}' for i in range(len(arrays))] + \
             [f'second derivative {i}' for i in range(len(arrays))]
    for label, a, b in zip(labels, _value_grads(fused, arrays, gy),
                           _value_grads(simple, arrays, gy)):
        assert a.dtype == b.dtype == dtype, f'{name} {label}: {a.dtype} vs {b.dtype}'
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 0.1,
                                   err_msg=f'{name}: {label} of fused vs _simple')


# =============================================================================
# Numerical stability at extreme scores
# =============================================================================
BIG = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0]])
LOG3 = np.log(3.0)
# name, f, x, expected value (None: only finite)
EXTREME = [
    ('softmax', F.softmax, BIG, [[1, 0, 0], [1 / 3] * 3]),
    ('log_softmax', F.log_softmax, BIG, [[0, -2000, -1000], [-LOG3] * 3]),
    ('softmax_cross_entropy', lambda x: F.softmax_cross_entropy(x, np.array([1, 2])), BIG,
     (2000 + LOG3) / 2),
    ('softmax_cross_entropy confident right', lambda x: F.softmax_cross_entropy(
        x, np.array([0, 0])), BIG, LOG3 / 2),
    ('softmax_cross_entropy_simple', lambda x: F.softmax_cross_entropy_simple(
        x, np.array([1, 2])), BIG, None),
    ('sigmoid', F.sigmoid, np.array([1000.0, -1000.0, 0.0]), [1.0, 0.0, 0.5]),
    ('sigmoid_cross_entropy', lambda x: F.sigmoid_cross_entropy(
        x, np.array([[1.0], [0.0], [0.0], [1.0]])),
     np.array([[1000.0], [-1000.0], [1000.0], [-1000.0]]), 2000 / 4),
    ('binary_cross_entropy', lambda p: F.binary_cross_entropy(p, np.array([1.0, 0.0, 1.0])),
     np.array([0.0, 1.0, 1.0]), None),
]


@pytest.mark.parametrize('dtype, atol', [(np.float64, 1e-12), (np.float32, 1e-6)],
                         ids=['float64', 'float32'])
@pytest.mark.parametrize('name, f, x, expected', EXTREME, ids=[e[0] for e in EXTREME])
def test_extreme_scores_give_finite_values_without_warnings(name, f, x, expected, dtype, atol):
    x = Variable(x.astype(dtype))
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # an overflow or log(0) RuntimeWarning fails the test
        y = f(x)
        y.backward()
    assert y.dtype == dtype and x.grad.dtype == dtype
    assert np.all(np.isfinite(y.data)), f'{name}: {y.data}'
    assert np.all(np.isfinite(x.grad.data)), f'{name}: gradient {x.grad.data}'
    if expected is not None:
        np.testing.assert_allclose(y.data, expected, rtol=1e-6, atol=atol, err_msg=name)


def test_softmax_cross_entropy_gradient_at_extreme_scores():
    x = Variable(BIG.astype(np.float32))
    F.softmax_cross_entropy(x, np.array([1, 2])).backward()
    expected = (np.array([[1, 0, 0], [1 / 3] * 3]) - np.eye(3)[[1, 2]]) / 2
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-6, atol=1e-7)


# =============================================================================
# linear with a plain-array input
# =============================================================================
def test_linear_with_ndarray_x_gives_grads_to_W_and_b_only():
    W = Variable(_rng.standard_normal((3, 5)))
    b = Variable(_rng.standard_normal(5))
    y = F.linear(X43, W, b)
    np.testing.assert_allclose(y.data, X43 @ W.data + b.data, rtol=1e-12)
    y.backward()
    np.testing.assert_allclose(W.grad.data, X43.T @ np.ones((4, 5)), rtol=1e-12)
    np.testing.assert_allclose(b.grad.data, np.full(5, 4.0))
    x_input = y.creator.inputs[0]  # the Variable wrapped around the plain array
    assert x_input.grad is None, 'linear computed a gradient for a plain-array x'

    x = Variable(X43)  # a Variable x does get its gradient
    F.linear(x, W, b).backward()
    np.testing.assert_allclose(x.grad.data, np.ones((4, 5)) @ W.data.T, rtol=1e-12)


# =============================================================================
# accuracy
# =============================================================================
@pytest.mark.parametrize('wrap', [lambda a: a, Variable], ids=['arrays', 'Variables'])
def test_accuracy_on_a_hand_example(wrap):
    y = np.array([[0.1, 0.8, 0.1], [0.9, 0.05, 0.05], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    t = np.array([1, 0, 1, 0])  # rows 0, 1 and 3 are right
    acc = F.accuracy(wrap(y), wrap(t))
    assert isinstance(acc, Variable) and acc.creator is None
    assert acc.shape == ()
    assert float(acc.data) == 0.75


# =============================================================================
# dropout
# =============================================================================
@pytest.mark.parametrize('dtype', [np.float64, np.float32], ids=['float64', 'float32'])
@pytest.mark.parametrize('ratio', [0.5, 0.2, 0.0])
def test_dropout_mask_scale_and_gradient(ratio, dtype):
    x = Variable(np.random.default_rng(5).uniform(0.5, 1.5, size=(6, 7)).astype(dtype))
    np.random.seed(0)
    y = F.dropout(x) if ratio == 0.5 else F.dropout(x, ratio)
    mask = np_dropout_mask(x.shape, ratio)
    assert y.dtype == dtype
    np.testing.assert_allclose(y.data, x.data * mask / (1 - ratio), rtol=1e-6)
    gy = np.random.default_rng(6).standard_normal(x.shape).astype(dtype)
    y.grad = Variable(gy)
    y.backward()
    assert x.grad.dtype == dtype
    np.testing.assert_allclose(x.grad.data, gy * mask / (1 - ratio), rtol=1e-6)


def test_dropout_is_identity_in_test_mode():
    x = Variable(np.arange(6.0).reshape(2, 3) + 1)
    with zerograd.test_mode():
        y = F.dropout(x, 0.9)
    np.testing.assert_array_equal(y.data, x.data)
    y.backward()
    np.testing.assert_array_equal(x.grad.data, np.ones((2, 3)))


# =============================================================================
# batch_norm: running statistics
# =============================================================================
@pytest.mark.parametrize('decay', [None, 0.5], ids=['default decay 0.9', 'decay 0.5'])
@pytest.mark.parametrize('shape', [(6, 3), (4, 3, 2, 2)], ids=['(N, C)', '(N, C, H, W)'])
def test_batch_norm_train_updates_running_stats_in_place(shape, decay):
    rng = np.random.default_rng(8)
    x = rng.normal(1.0, 2.0, size=shape)
    gamma, beta = rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)
    mean, var = RUNNING_MEAN.copy(), RUNNING_VAR.copy()
    kwargs = {} if decay is None else dict(decay=decay)
    y = F.batch_norm(Variable(x), Variable(gamma), Variable(beta), mean, var, **kwargs)
    np.testing.assert_allclose(y.data, np_batch_norm(x, gamma, beta), rtol=1e-10, atol=1e-12)
    d = 0.9 if decay is None else decay
    m = x.size // 3
    axes = _batch_axes(x)
    np.testing.assert_allclose(mean, d * RUNNING_MEAN + (1 - d) * x.mean(axis=axes),
                               rtol=1e-12)
    np.testing.assert_allclose(var, d * RUNNING_VAR + (1 - d) * x.var(axis=axes) * m / (m - 1),
                               rtol=1e-12)


@pytest.mark.parametrize('shape', [(6, 3), (4, 3, 2, 2)], ids=['(N, C)', '(N, C, H, W)'])
def test_batch_norm_test_mode_uses_running_stats_and_leaves_them(shape):
    rng = np.random.default_rng(9)
    x = rng.normal(1.0, 2.0, size=shape)
    gamma, beta = rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)
    mean, var = RUNNING_MEAN.copy(), RUNNING_VAR.copy()
    with zerograd.test_mode():
        y = F.batch_norm(x, gamma, beta, mean, var)
    np.testing.assert_array_equal(mean, RUNNING_MEAN)
    np.testing.assert_array_equal(var, RUNNING_VAR)
    np.testing.assert_allclose(y.data, np_batch_norm(x, gamma, beta, mean, var), rtol=1e-10)


def test_batch_nrom_is_batch_norm():
    assert F.batch_nrom is F.batch_norm


# =============================================================================
# Bad input: errors name the op and the values
# =============================================================================
X = Variable(np.zeros((2, 3)))
X234 = Variable(np.zeros((2, 3, 4)))
C3 = np.ones(3)
SHAPE_OR_TYPE = (ValueError, TypeError)
# id, call, exception, message pattern
BAD_INPUT = [
    ('softmax_cross_entropy float labels',
     lambda: F.softmax_cross_entropy(X, np.array([0.0, 1.0])), SHAPE_OR_TYPE,
     r'softmax_cross_entropy: t must hold integer class ids.*float64'),
    ('softmax_cross_entropy labels (N, 1)',
     lambda: F.softmax_cross_entropy(X, np.array([[0], [1]])), ValueError,
     r'softmax_cross_entropy: .*\(N,\).*\(2, 1\)'),
    ('softmax_cross_entropy negative label',
     lambda: F.softmax_cross_entropy(X, np.array([-1, 2])), ValueError,
     r'softmax_cross_entropy: class ids must be in \[0, 3\), got values from -1 to 2'),
    ('softmax_cross_entropy label >= C',
     lambda: F.softmax_cross_entropy(X, np.array([0, 3])), ValueError,
     r'softmax_cross_entropy: class ids must be in \[0, 3\), got values from 0 to 3'),
    ('softmax_cross_entropy 3-D x',
     lambda: F.softmax_cross_entropy(X234, np.array([0, 1])), ValueError,
     r'softmax_cross_entropy: x must be .*\(N, C\), got \(2, 3, 4\)'),
    ('softmax_cross_entropy_simple float labels',
     lambda: F.softmax_cross_entropy_simple(X, np.array([0.0, 1.0])), SHAPE_OR_TYPE,
     r'softmax_cross_entropy_simple: t must hold integer class ids'),
    ('softmax_cross_entropy_simple labels (N, 1)',
     lambda: F.softmax_cross_entropy_simple(X, np.array([[0], [1]])), ValueError,
     r'softmax_cross_entropy_simple: .*\(2, 1\)'),
    ('softmax_cross_entropy_simple label >= C',
     lambda: F.softmax_cross_entropy_simple(X, np.array([0, 5])), ValueError,
     r'softmax_cross_entropy_simple: class ids must be in \[0, 3\)'),
    ('mean_squared_error (N,) vs (N, 1)',
     lambda: F.mean_squared_error(np.zeros(3), np.zeros((3, 1))), ValueError,
     r'mean_squared_error: .*\(3,\) and \(3, 1\)'),
    ('mean_squared_error_simple (N, 1) vs (N,)',
     lambda: F.mean_squared_error_simple(np.zeros((3, 1)), np.zeros(3)), ValueError,
     r'mean_squared_error_simple: .*\(3, 1\) and \(3,\)'),
    ('linear features', lambda: F.linear(np.zeros((2, 4)), np.zeros((3, 5))), ValueError,
     re.escape('linear: input has 4 features but W expects 3 (x.shape=(2, 4), '
               'W.shape=(3, 5))')),
    ('linear b shape', lambda: F.linear(X, np.zeros((3, 5)), np.zeros(4)), ValueError,
     r'linear: b must have shape \(5,\), got \(4,\)'),
    ('linear_simple features', lambda: F.linear_simple(Variable(np.zeros((2, 4))),
                                                       np.zeros((3, 5))), ValueError,
     re.escape('linear_simple: input has 4 features but W expects 3 (x.shape=(2, 4), '
               'W.shape=(3, 5))')),
    ('concat shapes', lambda: F.concat([X, np.zeros((2, 4))], axis=0), ValueError,
     r'concat: .*\(2, 3\).*\(2, 4\)'),
    ('concat ndim', lambda: F.concat([X, X234], axis=1), ValueError,
     r'concat: .*\(2, 3\).*\(2, 3, 4\)'),
    ('concat axis', lambda: F.concat([X, X], axis=2), ValueError, r'concat: axis 2'),
    ('concat empty', lambda: F.concat([]), ValueError, r'concat'),
    ('stack shapes', lambda: F.stack([X, np.zeros((3, 2))]), ValueError,
     r'stack: .*\(2, 3\).*\(3, 2\)'),
    ('stack axis', lambda: F.stack([X, X], axis=3), ValueError, r'stack: axis 3'),
    ('dropout ratio 1', lambda: F.dropout(X, 1.0), ValueError, r'dropout: .*ratio.*1\.0'),
    ('dropout ratio < 0', lambda: F.dropout(X, -0.1), ValueError, r'dropout: .*ratio.*-0\.1'),
    ('dropout ratio > 1', lambda: F.dropout(X, 1.5), ValueError, r'dropout: .*ratio.*1\.5'),
    ('batch_norm gamma shape', lambda: F.batch_norm(X, np.ones(4), C3, C3, C3), ValueError,
     r'batch_norm: gamma must have shape \(3,\).*\(2, 3\).*\(4,\)'),
    ('batch_norm var shape', lambda: F.batch_norm(X, C3, C3, C3, np.ones(2)), ValueError,
     r'batch_norm: var must have shape \(3,\).*\(2,\)'),
    ('batch_norm 3-D x', lambda: F.batch_norm(X234, C3, C3, C3, C3), ValueError,
     r'batch_norm: x must be \(N, C\) or \(N, C, H, W\), got \(2, 3, 4\)'),
    ('embed_id float ids', lambda: F.embed_id(np.array([0.0, 1.0]), np.zeros((3, 2))),
     TypeError, r'embed_id: x must be an integer ndarray or Variable of ids, got an array '
     r'of float64'),
    ('clip x_min > x_max', lambda: F.clip(X, 1.0, -1.0), ValueError,
     r'clip: x_min 1\.0 .*x_max -1\.0'),
]


@pytest.mark.parametrize('name, call, error, pattern', BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_raises_naming_the_op_and_values(name, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


# =============================================================================
# Inputs that would give a silently wrong answer are refused
# =============================================================================
@pytest.mark.parametrize('shape', [(1, 3), (1, 3, 1, 1)])
def test_batch_norm_training_needs_more_than_one_value_per_channel(shape):
    mean, var = np.array([0.5, 1.0, -1.0]), np.array([2.0, 3.0, 4.0])
    x = np.arange(3.0).reshape(shape)
    with pytest.raises(ValueError, match=r'batch_norm: expected more than 1 value per channel '
                                         rf'when training, got x of shape {re.escape(str(shape))}'):
        F.batch_norm(x, np.ones(3), np.zeros(3), mean, var)
    np.testing.assert_array_equal(mean, [0.5, 1.0, -1.0])  # the running statistics untouched
    np.testing.assert_array_equal(var, [2.0, 3.0, 4.0])
    with zerograd.test_mode():  # inference uses the running statistics: one sample is fine
        y = F.batch_norm(x, np.ones(3), np.zeros(3), mean, var)
    expected = (np.arange(3.0) - mean) / np.sqrt(var + 2e-5)
    np.testing.assert_allclose(y.data.reshape(3), expected, rtol=1e-12)


def test_batch_norm_training_with_one_sample_of_several_pixels_is_fine():
    x = np.arange(8.0).reshape(1, 2, 2, 2)  # 4 values per channel
    y = F.batch_norm(x, np.ones(2), np.zeros(2), np.zeros(2), np.ones(2))
    flat = x.reshape(2, 4)
    expected = (flat - flat.mean(axis=1, keepdims=True)) / np.sqrt(flat.var(axis=1, keepdims=True) + 2e-5)
    np.testing.assert_allclose(y.data.reshape(2, 4), expected, rtol=1e-12)


@pytest.mark.parametrize('p, low, high', [
    ([1.5, 0.2], '0.2', '1.5'), ([-0.1, 0.5], '-0.1', '0.5'), ([np.nan, 0.5], 'nan', 'nan'),
])
def test_binary_cross_entropy_refuses_probabilities_outside_0_1(p, low, high):
    with pytest.raises(ValueError, match=rf'binary_cross_entropy: p must hold probabilities in '
                                         rf'\[0, 1\], got values from {low} to {high}'):
        F.binary_cross_entropy(np.array(p), np.array([1.0, 0.0]))


def test_binary_cross_entropy_refuses_targets_outside_0_1():
    with pytest.raises(ValueError, match=r'binary_cross_entropy: t must hold targets in \[0, 1\], '
                                         r'got values from 0.0 to 2.0'):
        F.binary_cross_entropy(np.array([0.5, 0.5]), np.array([2.0, 0.0]))


@pytest.mark.parametrize('t, low, high', [([2, 0], '0.0', '2.0'), ([-1.0, 0.5], '-1.0', '0.5')])
def test_sigmoid_cross_entropy_refuses_targets_outside_0_1(t, low, high):
    with pytest.raises(ValueError, match=rf'sigmoid_cross_entropy: t must hold targets in '
                                         rf'\[0, 1\], got values from {low} to {high}'):
        F.sigmoid_cross_entropy(np.array([1.5, 0.2]), np.array(t))


def test_sigmoid_cross_entropy_accepts_soft_targets():
    x, t = np.array([1.5, -0.2]), np.array([0.25, 1.0])
    expected = np.sum(np.log1p(np.exp(x)) - t * x) / 2
    np.testing.assert_allclose(F.sigmoid_cross_entropy(x, t).data, expected, rtol=1e-12)


@pytest.mark.parametrize('t', [np.array([0, 3]), np.array([-1, 0]), np.array([0.0, 1.0]),
                               np.array([[0], [1]])],
                         ids=['too large', 'negative', 'float', 'shape (N, 1)'])
def test_accuracy_checks_labels_as_softmax_cross_entropy_does(t):
    y = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
    with pytest.raises(ValueError) as loss_error:
        F.softmax_cross_entropy(y, t)
    with pytest.raises(ValueError) as accuracy_error:
        F.accuracy(y, t)
    message = str(loss_error.value).replace('softmax_cross_entropy', 'accuracy')
    if t.shape == (2,):  # the same check and message
        assert str(accuracy_error.value) == message
    assert str(accuracy_error.value).startswith('accuracy: ')


def test_accuracy_of_valid_labels():
    y = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.0, 0.2, 0.7]])
    assert float(F.accuracy(y, np.array([1, 0, 0])).data) == pytest.approx(2 / 3)
