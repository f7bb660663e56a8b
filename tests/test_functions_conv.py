"""The convolutions of ``zerograd.functions``: conv2d, deconv2d, conv2d_simple, im2col,
col2im (the error messages of the pooling functions too, which share their checks).

Every case of the registry's 'conv' topic goes through ``check_op`` (forward against a plain
NumPy loop reference in float64 and float32, float32 kept, first derivatives and double
backward against central differences). Then what ``check_op`` cannot see: the composed
``_simple`` oracles against the fused ops, chains that pass
the channel-major output of one convolution to the next op, the book's printed shapes, and
the error messages.
"""
import re

import numpy as np
import pytest

import ops
import zerograd.functions as F
from op_references import np_deconv2d
from zerograd import Variable, utils

CONV_SETTINGS = ops.CONV_SETTINGS


@pytest.mark.parametrize('case', ops.cases(ops.GRAD, 'conv'), ids=ops.case_id)
def test_check_op(case):
    """The registry's conv cases (ops.py) through zerograd.testing.check_op."""
    ops.check_case(case)


# =============================================================================
# The composed oracles against the fused ops, and channel-major chains
# =============================================================================


@pytest.mark.parametrize('kernel_size, stride, pad, x_shape', CONV_SETTINGS)
def test_conv2d_simple_equals_conv2d(kernel_size, stride, pad, x_shape):
    rng = np.random.default_rng(1)
    KH, KW = utils.pair(kernel_size)
    arrays = [rng.standard_normal(s) for s in (x_shape, (4, x_shape[1], KH, KW), (4,))]
    results = []
    for f in (F.conv2d, F.conv2d_simple):
        xs = [Variable(a.copy()) for a in arrays]
        y = f(*xs, stride=stride, pad=pad)
        y.grad = Variable(np.cos(np.arange(y.size)).reshape(y.shape))
        y.backward()
        results.append([y.data] + [x.grad.data for x in xs])
    for ours, oracle in zip(*results):
        np.testing.assert_allclose(ours, oracle, rtol=1e-10, atol=1e-12)


def test_a_network_of_channel_major_outputs_matches_the_composed_one():
    """conv2d's output is stored channel by channel: the next conv2d, relu, pooling,
    average pooling and deconv2d read it and their gradients come back right."""
    rng = np.random.default_rng(4)
    arrays = dict(x=rng.standard_normal((3, 2, 9, 8)),
                  W1=rng.standard_normal((4, 2, 3, 3)), b1=rng.standard_normal(4),
                  W2=rng.standard_normal((5, 4, 3, 2)), b2=rng.standard_normal(5),
                  W3=rng.standard_normal((5, 2, 2, 2)))

    def net(v, conv, pool):
        h = F.relu(conv(v['x'], v['W1'], v['b1'], stride=1, pad=1))
        h = conv(h, v['W2'], v['b2'], stride=(1, 2), pad=(0, 1))
        a = pool(h, 2, stride=2)
        m = F.average_pooling(h, (3, 2), stride=1, pad=1)
        d = F.deconv2d(a, v['W3'], stride=2)
        return (a * a).sum() + (m * m).sum() + (d * d).sum()

    grads = []
    for conv, pool in ((F.conv2d, F.pooling), (F.conv2d_simple, F.pooling_simple)):
        v = {k: Variable(a.copy()) for k, a in arrays.items()}
        loss = net(v, conv, pool)
        loss.backward()
        grads.append([loss.data] + [v[k].grad.data for k in arrays])
    for ours, oracle in zip(*grads):
        np.testing.assert_allclose(ours, oracle, rtol=1e-9, atol=1e-10)


def test_float32_stays_float32_through_double_backward():
    rng = np.random.default_rng(5)
    x = Variable(rng.standard_normal((2, 3, 6, 6)).astype(np.float32))
    W = Variable(rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    b = Variable(rng.standard_normal(4).astype(np.float32))
    h = F.conv2d(x, W, b, stride=1, pad=1)
    d = F.deconv2d(h, W, stride=1, pad=1)  # W (4, 3, 3, 3) read as (C, OC, KH, KW)
    y = (F.pooling(F.relu(h), 2, 2) ** 2).sum() + (F.average_pooling(h, 2, 2) ** 2).sum() \
        + (d * d).sum()
    assert d.dtype == y.dtype == np.float32
    y.backward(create_graph=True)
    gx, gW = x.grad, W.grad
    assert gx.dtype == gW.dtype == b.grad.dtype == np.float32
    x.cleargrad()
    W.cleargrad()
    ((gx * gx).sum() + (gW * gW).sum()).backward()
    assert x.grad.dtype == W.grad.dtype == np.float32


def test_conv2d_with_ndarray_x_skips_its_gradient_and_still_trains_W():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 5, 5))
    W = Variable(rng.standard_normal((2, 3, 3, 3)))
    y = F.conv2d(x, W, pad=1)
    assert y.creator.needs_gx is False
    y.backward()
    xv = Variable(x)
    W2 = Variable(W.data.copy())
    F.conv2d(xv, W2, pad=1).backward()
    np.testing.assert_allclose(W.grad.data, W2.grad.data)


def test_im2col_col2im_are_adjoint():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 6, 5))
    col = rng.standard_normal(F.im2col(x, (3, 2), 2, 1).shape)
    lhs = np.sum(F.im2col(x, (3, 2), 2, 1).data * col)
    rhs = np.sum(x * F.col2im(col, x.shape, (3, 2), 2, 1).data)
    np.testing.assert_allclose(lhs, rhs)


def test_deconv2d_is_the_input_gradient_of_conv2d():
    rng = np.random.default_rng(8)
    x = Variable(rng.standard_normal((2, 3, 7, 6)))
    W = rng.standard_normal((4, 3, 3, 3))
    y = F.conv2d(x, W, stride=2, pad=1)
    gy = rng.standard_normal(y.shape)
    y.grad = Variable(gy)
    y.backward()
    np.testing.assert_allclose(x.grad.data, np_deconv2d(gy, W, stride=2, pad=1, outsize=(7, 6)))


# =============================================================================
# The book's printed shapes (steps 55 and 57)
# =============================================================================


def test_step55_conv_outsize():
    H, W = 4, 4
    KH, KW = 3, 3
    SH, SW = 1, 1
    PH, PW = 1, 1
    OH = utils.get_conv_outsize(H, KH, SH, PH)
    OW = utils.get_conv_outsize(W, KW, SW, PW)
    assert (OH, OW) == (4, 4)


def test_step57_im2col_and_conv2d_simple_shapes():
    x1 = np.random.rand(1, 3, 7, 7)
    col1 = F.im2col(x1, kernel_size=5, stride=1, pad=0, to_matrix=True)
    assert col1.shape == (9, 75)
    x2 = np.random.rand(10, 3, 7, 7)
    col2 = F.im2col(x2, kernel_size=(5, 5), stride=(1, 1), pad=(0, 0), to_matrix=True)
    assert col2.shape == (90, 75)

    N, C, H, W = 1, 5, 15, 15
    OC, (KH, KW) = 8, (3, 3)
    x = Variable(np.random.randn(N, C, H, W))
    W = np.random.randn(OC, C, KH, KW)
    y = F.conv2d_simple(x, W, b=None, stride=1, pad=1)
    y.backward()
    assert y.shape == (1, 8, 15, 15)
    assert x.grad.shape == (1, 5, 15, 15)


# =============================================================================
# Errors a user can act on
# =============================================================================


X = np.zeros((2, 3, 5, 5))


W3 = np.zeros((4, 3, 3, 3))


ERRORS = [
    (lambda: F.conv2d(np.zeros((3, 5, 5)), W3), r'conv2d: x must be 4-D .* got shape \(3, 5, 5\)'),
    (lambda: F.conv2d(X, np.zeros((4, 3, 3))), r'conv2d: W must be 4-D \(OC, C, KH, KW\)'),
    (lambda: F.conv2d(X, np.zeros((4, 2, 3, 3))),
     r'conv2d: x has 3 channels but W \(OC, C, KH, KW\) expects 2 \(x.shape=\(2, 3, 5, 5\)'),
    (lambda: F.conv2d(X, np.zeros((4, 3, 6, 3))),
     r'conv2d: kernel \(6, 3\) is larger than the padded input \(5, 5\)'),
    (lambda: F.conv2d(X, W3, np.zeros(3)), r'conv2d: b must have shape \(4,\), got \(3,\)'),
    (lambda: F.conv2d(X, W3, stride=0), r'conv2d: stride must be positive, got \(0, 0\)'),
    (lambda: F.conv2d(X, W3, pad=(1, -1)), r'conv2d: pad must be non-negative, got \(1, -1\)'),
    (lambda: F.conv2d_simple(X, np.zeros((4, 2, 3, 3))), r'conv2d_simple: x has 3 channels'),
    (lambda: F.deconv2d(X, np.zeros((2, 4, 3, 3))),
     r'deconv2d: x has 3 channels but W \(C, OC, KH, KW\) expects 2'),
    (lambda: F.deconv2d(X, np.zeros((3, 4, 3, 3)), outsize=(8, 7)),
     r'deconv2d: outsize \(8, 7\) does not fit x of shape \(2, 3, 5, 5\).* \[7, 7\] x \[7, 7\]'),
    (lambda: F.deconv2d(X, np.zeros((3, 4, 3, 3)), stride=2, outsize=(13, 11)),
     r'deconv2d: outsize \(13, 11\) does not fit .* \[11, 12\] x \[11, 12\]'),
    (lambda: F.deconv2d(np.zeros((1, 3, 1, 1)), np.zeros((3, 4, 1, 1)), pad=1),
     r'deconv2d: pad \(1, 1\) is too large'),
    (lambda: F.deconv2d(X, np.zeros((3, 4, 3, 3)), np.zeros(3)), r'deconv2d: b must have shape \(4,\)'),
    (lambda: F.pooling(np.zeros((5, 5)), 2), r'pooling: x must be 4-D \(N, C, H, W\), got shape \(5, 5\)'),
    (lambda: F.pooling(X, 6), r'pooling: kernel \(6, 6\) is larger than the padded input \(5, 5\)'),
    (lambda: F.pooling(X, 2, pad=2), r'pooling: pad \(2, 2\) must be smaller than kernel_size'),
    (lambda: F.pooling(X, 2, stride=-1), r'pooling: stride must be positive'),
    (lambda: F.average_pooling(X, 0), r'average_pooling: kernel_size must be positive'),
    (lambda: F.average_pooling(X, 2, pad=-1), r'average_pooling: pad must be non-negative'),
    (lambda: F.im2col(np.zeros((2, 3, 5)), 2), r'im2col: x must be 4-D'),
    (lambda: F.im2col(X, 7, pad=0), r'im2col: kernel \(7, 7\) is larger than the padded input'),
    (lambda: F.col2im(np.zeros((5, 27)), X.shape, 3),
     r'col2im: col must have shape \(18, 27\) .* got \(5, 27\)'),
    (lambda: F.col2im(np.zeros((5, 27)), (3, 5, 5), 3), r'col2im: input_shape must be'),
]


@pytest.mark.parametrize('call, pattern', ERRORS, ids=[re.sub(r'\\', '', p[:40]) for _, p in ERRORS])
def test_errors(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


# The wrong type of kernel_size, stride or pad is a TypeError in every conv function, as in
# the conv layers (one shared check, utils.pair); a wrong value stays a ValueError.
TYPE_ERRORS = [
    (lambda: F.conv2d(X, W3, stride=1.5), r'conv2d: stride must be an int or a pair of ints, '
                                          r'got 1\.5'),
    (lambda: F.conv2d(X, W3, stride='a'), r"conv2d: stride must be an int or a pair of ints, "
                                          r"got 'a'"),
    (lambda: F.conv2d(X, W3, pad=(1, 2, 3)), r'conv2d: pad must be an int or a pair'),
    (lambda: F.deconv2d(X, np.zeros((3, 4, 3, 3)), stride=True), r'deconv2d: stride must be'),
    (lambda: F.pooling(X, 'a'), r'pooling: kernel_size must be an int or a pair'),
    (lambda: F.average_pooling(X, 2, stride=2.0), r'average_pooling: stride must be'),
    (lambda: F.im2col(X, (1.0, 2)), r'im2col: kernel_size must be an int or a pair'),
    (lambda: F.pooling_simple(X, (2, 2, 2)), r'pooling_simple: kernel_size must be an int or a pair'),
]


@pytest.mark.parametrize('call, pattern', TYPE_ERRORS,
                         ids=[re.sub(r'\\', '', p[:40]) for _, p in TYPE_ERRORS])
def test_wrong_type_of_window_argument_is_a_type_error(call, pattern):
    with pytest.raises(TypeError, match=pattern):
        call()
