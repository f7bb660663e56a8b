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


# =============================================================================
# ceil_mode: the last, partial window kept (Caffe's pooling; ResNet and SqueezeNet)
# =============================================================================
def _np_max_pooling_ceil(x, kernel_size, stride, pad):
    """The reference: a loop over the output pixels of ceil mode, each the maximum of the
    part of its window that lies in the -inf padded x (torch's rule for the last one)."""
    (KH, KW), (SH, SW), (PH, PW) = (np.broadcast_to(a, 2) for a in (kernel_size, stride, pad))
    N, C, H, W = x.shape

    def count(size, k, s, p):
        n = -(-(size + 2 * p - k) // s) + 1
        return n - 1 if (n - 1) * s >= size + p else n

    OH, OW = count(H, KH, SH, PH), count(W, KW, SW, PW)
    padded = np.full((N, C, H + 2 * PH + KH + SH, W + 2 * PW + KW + SW), -np.inf)
    padded[:, :, PH:PH + H, PW:PW + W] = x
    y = np.empty((N, C, OH, OW))
    for i in range(OH):
        for j in range(OW):
            window = padded[:, :, i * SH:i * SH + KH, j * SW:j * SW + KW]
            y[:, :, i, j] = window.max(axis=(2, 3))
    return y


CEIL_SETTINGS = [  # (kernel_size, stride, pad, x shape): partial windows on one or both axes
    (3, 2, 0, (2, 2, 6, 7)),
    ((3, 2), (2, 3), (1, 0), (1, 2, 6, 7)),
    (2, 3, 1, (2, 1, 5, 4)),        # the last window would start in the end padding: dropped
    (2, 2, 0, (1, 2, 4, 4)),        # nothing partial: the same as floor mode
    (3, 2, 0, (1, 2, 2, 3)),        # a kernel larger than x: one partial window
]


@pytest.mark.parametrize('kernel_size, stride, pad, shape', CEIL_SETTINGS)
def test_max_pooling_ceil_mode_forward_gradients_and_double_backward(kernel_size, stride, pad,
                                                                     shape):
    """check_op: forward against the loop reference, float64 central differences of the
    first and second derivatives, float32 in and out."""
    from zerograd.testing import check_op
    check_op(f'pooling ceil_mode k={kernel_size} s={stride} p={pad}',
             lambda x: F.pooling(x, kernel_size, stride, pad, ceil_mode=True),
             lambda x: _np_max_pooling_ceil(x, kernel_size, stride, pad), [shape],
             make_input=distinct)


@pytest.mark.parametrize('kernel_size, stride, pad, shape', CEIL_SETTINGS)
def test_max_pooling_ceil_mode_matches_torch(kernel_size, stride, pad, shape):
    torch = pytest.importorskip('torch')
    x = distinct(shape, np.random.default_rng(4))
    xv = Variable(x.copy())
    y = F.pooling(xv, kernel_size, stride, pad, ceil_mode=True)
    gy = np.random.default_rng(5).standard_normal(y.shape)
    y.grad = Variable(gy)
    y.backward()
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.max_pool2d(xt, kernel_size, stride, pad, ceil_mode=True)
    yt.backward(torch.tensor(gy))
    assert y.shape == tuple(yt.shape)
    np.testing.assert_array_equal(y.data, yt.detach().numpy())
    np.testing.assert_array_equal(xv.grad.data, xt.grad.numpy())


def test_max_pooling_ceil_mode_equals_floor_mode_on_the_minus_infinity_extended_input():
    """ResNet's and SqueezeNet's pooling: the partial window read as the full window of x
    extended by -inf rows and columns (what models._max_pooling_ceil did before ceil_mode),
    forward and gradient alike, also for x stored batch-last (a convolution's output)."""
    rng = np.random.default_rng(6)
    x = distinct((3, 4, 8, 9), rng)
    W = rng.standard_normal((2, 4, 1, 1))
    for batch_last in (False, True):
        xv = Variable(x.copy())
        h = F.conv2d(xv, W) if batch_last else xv * 1.0
        y = F.pooling(h, 3, stride=2, ceil_mode=True)
        gy = rng.standard_normal(y.shape)
        y.grad = Variable(gy)
        y.backward()

        xo = Variable(x.copy())
        h = F.conv2d(xo, W) if batch_last else xo * 1.0
        N, C, H, Wd = h.shape
        h = F.concat([h, np.full((N, C, 1, Wd), -np.inf)], axis=2)
        h = F.concat([h, np.full((N, C, H + 1, 0 if Wd % 2 else 1), -np.inf)], axis=3)
        y_old = F.pooling(h, 3, stride=2)
        y_old.grad = Variable(gy)
        y_old.backward()
        np.testing.assert_array_equal(y.data, y_old.data)
        np.testing.assert_array_equal(xv.grad.data, xo.grad.data)


def test_max_pooling_ceil_mode_is_a_bool_and_needs_a_window():
    with pytest.raises(TypeError, match='pooling: ceil_mode must be a bool'):
        F.pooling(np.zeros((1, 1, 4, 4)), 2, ceil_mode='yes')
    with pytest.raises(ValueError, match='leaves no window'):
        F.pooling(np.zeros((1, 1, 2, 2)), 3, stride=1, ceil_mode=True)


def test_floor_mode_pooling_adds_no_padding_after_the_end():
    y = F.pooling(np.zeros((1, 1, 5, 5)), 3, stride=2)
    assert y.creator.extra == (0, 0) and y.shape == (1, 1, 2, 2)
