"""The pooling of ``zerograd.functions``: pooling (max), pooling_simple, average_pooling.

Every case of the registry's 'pooling' topic goes through ``check_op``. Then what
``check_op`` cannot see: max pooling's third and fourth derivatives, the composed
``pooling_simple`` against the fused op, and integer inputs.
"""
import numpy as np
import pytest

import ops
import zerograd.functions as F
from op_references import _distinct as distinct
from op_references import _pad, np_windows
from zerograd import Variable
from zerograd.functions_conv import Pooling, PoolingGrad, PoolingWithIndexes


@pytest.mark.parametrize('case', ops.cases(ops.GRAD, 'pooling'), ids=ops.case_id)
def test_check_op(case):
    """The registry's pooling cases (ops.py) through zerograd.testing.check_op."""
    ops.check_case(case)


# =============================================================================
# Higher orders of max pooling: PoolingGrad and PoolingWithIndexes chain at any order
# =============================================================================
def _gather_at_max(x, v):
    """v read at the maximum of each window of x (kernel 3, stride 2, pad 1)."""
    windows_x = np_windows(x, 3, 2, 1, -np.inf)
    N, C, KH, KW, OH, OW = windows_x.shape
    index = windows_x.reshape(N, C, KH * KW, OH, OW).argmax(axis=2)[:, :, None]
    windows_v = np_windows(v, 3, 2, 1).reshape(N, C, KH * KW, OH, OW)
    return np.take_along_axis(windows_v, index, 2)[:, :, 0]


def _scatter_to_max(x, u):
    """u (N, C, OH, OW) added at the maximum of each window of x (kernel 3, stride 2, pad 1)."""
    N, C, H, W = x.shape
    out = np.zeros((N, C, H + 2, W + 2))
    xp = _pad(x, 1, -np.inf)
    for n, c, i, j in np.ndindex(*u.shape):
        window = xp[n, c, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
        a, b = np.unravel_index(window.argmax(), window.shape)
        out[n, c, 2 * i + a, 2 * j + b] += u[n, c, i, j]
    return out[:, :, 1:H + 1, 1:W + 1]


def _functions_behind(v):
    """The types of every Function in the graph behind v."""
    seen, todo = set(), [v.creator]
    while todo:
        f = todo.pop()
        if f is not None and f not in seen:
            seen.add(f)
            todo.extend(x.creator for x in f.inputs)
    return {type(f) for f in seen}


def test_max_pooling_third_and_fourth_derivatives():
    """Pooling -> PoolingGrad -> PoolingWithIndexes -> PoolingGrad -> PoolingWithIndexes:
    each derivative is the previous one's Function, differentiated again."""
    rng = np.random.default_rng(3)
    x = Variable(distinct((2, 2, 5, 5), rng))
    gy = Variable(rng.standard_normal((2, 2, 3, 3)))
    v = Variable(rng.standard_normal((2, 2, 5, 5)))
    u = Variable(rng.standard_normal((2, 2, 3, 3)))
    t = rng.standard_normal((2, 2, 5, 5))
    y = F.pooling(x, 3, stride=2, pad=1)
    assert isinstance(y.creator, Pooling)
    y.grad = gy
    y.backward(create_graph=True)
    gx = x.grad                                   # 1st: PoolingGrad(gy)
    assert isinstance(gx.creator, PoolingGrad)
    np.testing.assert_allclose(gx.data, _scatter_to_max(x.data, gy.data))
    (gx * v).sum().backward(create_graph=True)
    ggy = gy.grad                                 # 2nd: PoolingWithIndexes(v)
    assert isinstance(ggy.creator, PoolingWithIndexes)
    np.testing.assert_allclose(ggy.data, _gather_at_max(x.data, v.data))
    v.cleargrad()  # (gx * v) gave v a gradient: start afresh
    (ggy * u).sum().backward(create_graph=True)
    gv = v.grad                                   # 3rd: PoolingGrad(u)
    assert PoolingGrad in _functions_behind(gv)
    np.testing.assert_allclose(gv.data, _scatter_to_max(x.data, u.data))
    u.cleargrad()
    (gv * t).sum().backward()
    np.testing.assert_allclose(u.grad.data, _gather_at_max(x.data, t))  # 4th


def test_pooling_simple_equals_pooling_with_negative_inputs_and_padding():
    x = distinct((2, 3, 5, 6), np.random.default_rng(2)) - 1.5  # all negative
    for f in (F.pooling, F.pooling_simple):
        xv = Variable(x.copy())
        y = f(xv, 3, 2, 1)
        y.backward()
        if f is F.pooling:
            y0, g0 = y.data, xv.grad.data
    np.testing.assert_array_equal(y.data, y0)
    np.testing.assert_array_equal(xv.grad.data, g0)
    assert (y0 < 0).all()  # the zero padding of the book would have won


def test_default_stride_of_pooling_is_one():
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    assert F.pooling(x, 2).shape == (1, 1, 2, 2)
    assert F.average_pooling(x, 2).shape == (1, 1, 2, 2)


def test_max_pooling_of_integers():
    x = np.array([[[[-5, -3], [-4, -9]]]], dtype=np.int64)
    assert F.pooling(x, 2, pad=1).data.tolist() == [[[[-5, -3, -3], [-4, -3, -3],
                                                      [-4, -4, -9]]]]


def test_average_pooling_of_integers_gives_floats():
    x = np.arange(16, dtype=np.uint8).reshape(1, 1, 4, 4)
    y = F.average_pooling(x, 2, 2)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y.data, [[[[2.5, 4.5], [10.5, 12.5]]]])
