"""The activations of ``zerograd.functions``: sigmoid, relu, leaky_relu, softmax,
log_softmax and the composed ``_simple`` oracles.

Every case of the registry's 'activation' topic goes through ``check_op``. Then what
check_op cannot see: the composed ``_simple`` versions against the fused ops (values,
gradients and second derivatives), and numerical stability at extreme scores.
"""
import warnings

import numpy as np
import pytest

import ops
import zerograd.functions as F
from zerograd import Variable

SCORES = dict(low=-3.0, high=3.0)
T4 = ops.T4


@pytest.mark.parametrize('case', ops.cases(ops.GRAD, 'activation'), ids=ops.case_id)
def test_check_op(case):
    """The registry's activation cases (ops.py) through zerograd.testing.check_op."""
    ops.check_case(case)


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
