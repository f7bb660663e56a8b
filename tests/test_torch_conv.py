"""The convolution family against PyTorch: forward values, first derivatives (random upstream
gradient) and second derivatives (the gradient of sum(gx * v) with respect to every input
and to the upstream gradient), in float64 and float32.

conv2d against ``torch.nn.functional.conv2d``, deconv2d against ``conv_transpose2d`` (its
weight (C_in, C_out, KH, KW) is our (C, OC, KH, KW); ``output_padding`` reaches a larger
outsize), pooling against ``max_pool2d`` (which pads with -inf, as ours does) and
average_pooling against ``avg_pool2d`` (count_include_pad=True), over strides 1-3,
paddings 0-2, odd and even sizes and non-square kernels. Pooling settings that PyTorch
refuses (pad more than half the kernel) are left out.

The cases are written once for both frameworks through the harness of torch_compare.py.
"""
import types

import numpy as np
import pytest

torch = pytest.importorskip('torch')
tF = torch.nn.functional
pytest.register_assert_rewrite('torch_compare')

import zerograd.functions as F  # noqa: E402
from zerograd import utils  # noqa: E402
from torch_compare import (  # noqa: E402
    assert_matches_torch, const, make_inputs, torch_derivatives, zerograd_derivatives)


def _th_deconv2d(x, W, b=None, stride=1, pad=0, outsize=None):
    KH, KW = W.shape[2:]
    (SH, SW), (PH, PW) = utils.pair(stride), utils.pair(pad)
    H, W_width = x.shape[2:]
    default = (SH * (H - 1) + KH - 2 * PH, SW * (W_width - 1) + KW - 2 * PW)
    outsize = default if outsize is None else utils.pair(outsize)
    output_padding = (outsize[0] - default[0], outsize[1] - default[1])
    return tF.conv_transpose2d(x, W, b, stride, pad, output_padding)


ZG = types.SimpleNamespace(**{name: getattr(F, name) for name in dir(F)})
TH = types.SimpleNamespace(
    conv2d=lambda x, W, b=None, stride=1, pad=0: tF.conv2d(x, W, b, stride, pad),
    conv2d_simple=lambda x, W, b=None, stride=1, pad=0: tF.conv2d(x, W, b, stride, pad),
    deconv2d=_th_deconv2d,
    pooling=lambda x, k, stride=1, pad=0: tF.max_pool2d(x, k, stride, pad),
    pooling_simple=lambda x, k, stride=1, pad=0: tF.max_pool2d(x, k, stride, pad),
    average_pooling=lambda x, k, stride=1, pad=0: tF.avg_pool2d(
        x, k, stride, pad, count_include_pad=True),
    relu=torch.relu,
)

SHAPES = [(2, 2, 7, 6), (1, 3, 6, 5)]  # odd and even heights and widths
KERNELS = [(3, 3), (2, 2), (2, 3)]


def _fits(shape, kernel, pad):
    return all(k <= n + 2 * p for n, k, p in zip(shape[2:], kernel, utils.pair(pad)))


def _conv_cases():
    cases = {}
    for kernel in KERNELS:
        for stride in (1, 2, 3):
            for pad in (0, 1, 2):
                shape = SHAPES[(stride + pad) % 2]
                C = shape[1]
                cases[f'conv2d k={kernel} s={stride} p={pad} x={shape}'] = (
                    lambda m, x, W, b, s=stride, p=pad: m.conv2d(x, W, b, s, p),
                    [shape, (3, C) + kernel, (3,)], 'any')
                H, W = shape[2:]
                default = [s_ * (n - 1) + k - 2 * pad
                           for s_, n, k in ((stride, H, kernel[0]), (stride, W, kernel[1]))]
                if min(default) <= 0:
                    continue
                outsize = None if pad % 2 == 0 else (default[0] + stride - 1, default[1])
                cases[f'deconv2d k={kernel} s={stride} p={pad} x={shape} outsize={outsize}'] = (
                    lambda m, x, W, b, s=stride, p=pad, o=outsize: m.deconv2d(x, W, b, s, p, o),
                    [shape, (C, 3) + kernel, (3,)], 'any')
    return cases


def _pool_cases():
    cases = {}
    for kernel in KERNELS + [(4, 5)]:
        for stride in (1, 2, 3):
            for pad in (0, 1, 2):
                shape = SHAPES[(stride + pad) % 2]
                if pad > min(kernel) // 2 or not _fits(shape, kernel, pad):
                    continue  # torch: pad at most half the kernel
                for name in ('pooling', 'average_pooling'):
                    cases[f'{name} k={kernel} s={stride} p={pad} x={shape}'] = (
                        lambda m, x, n=name, k=kernel, s=stride, p=pad: getattr(m, n)(x, k, s, p),
                        [shape], 'any')
    return cases


_rng = np.random.default_rng(21)
X_DATA = _rng.uniform(-1, 1, size=(2, 2, 6, 5))  # a plain-array input of conv2d

CASES = {
    **_conv_cases(),
    **_pool_cases(),
    # pairs, the _simple oracles, a plain-array x, no bias, and a small network
    'conv2d s=(1, 2) p=(2, 1)': (lambda m, x, W, b: m.conv2d(x, W, b, (1, 2), (2, 1)),
                                 [(2, 2, 5, 6), (3, 2, 3, 2), (3,)], 'any'),
    'conv2d without b': (lambda m, x, W: m.conv2d(x, W, None, 2, 1),
                         [(2, 2, 5, 6), (3, 2, 3, 3)], 'any'),
    'conv2d ndarray x': (lambda m, W, b: m.conv2d(const(X_DATA, W), W, b, 1, 1),
                         [(4, 2, 3, 3), (4,)], 'any'),
    'conv2d_simple s=2 p=1': (lambda m, x, W, b: m.conv2d_simple(x, W, b, 2, 1),
                              [(2, 2, 7, 6), (3, 2, 3, 2), (3,)], 'any'),
    'deconv2d s=(2, 3) p=(1, 0) without b': (
        lambda m, x, W: m.deconv2d(x, W, None, (2, 3), (1, 0)), [(2, 2, 3, 4), (2, 3, 3, 2)],
        'any'),
    'pooling k=(3, 2) s=(2, 1) p=(1, 0)': (lambda m, x: m.pooling(x, (3, 2), (2, 1), (1, 0)),
                                           [(2, 2, 7, 6)], 'any'),
    'pooling_simple k=3 s=2 p=1': (lambda m, x: m.pooling_simple(x, 3, 2, 1),
                                   [(2, 2, 7, 6)], 'any'),
    'conv2d, relu, conv2d, max pooling': (
        lambda m, x, W1, W2, b2: m.pooling(
            m.conv2d(m.relu(m.conv2d(x, W1, None, 1, 1)), W2, b2, 1, 0), 2, 2, 0),
        [(2, 2, 7, 6), (3, 2, 3, 3), (4, 3, 2, 3), (4,)], 'any'),
}

TOLERANCE = {np.float64: dict(rtol=1e-9, atol=1e-11), np.float32: dict(rtol=1e-4, atol=1e-4)}


@pytest.mark.parametrize('dtype', [np.float64, np.float32], ids=['float64', 'float32'])
@pytest.mark.parametrize('case_id', list(CASES))
def test_against_torch(case_id, dtype):
    fn = CASES[case_id][0]
    xs, gy, vs = make_inputs(case_id, CASES[case_id], dtype, ZG)
    ours = zerograd_derivatives(fn, ZG, xs, gy, vs)
    theirs = torch_derivatives(fn, TH, xs, gy, vs)
    assert_matches_torch(case_id, dtype, ours, theirs, TOLERANCE[dtype])


def test_the_grid_covers_what_the_issue_asks():
    for op in ('conv2d', 'deconv2d', 'pooling', 'average_pooling'):
        ids = [case_id for case_id in CASES if case_id.startswith(op + ' k=')]
        for stride in (1, 2, 3):
            for pad in (0, 1, 2):
                assert any(f's={stride} p={pad} ' in case_id for case_id in ids), (op, stride, pad)
        assert any('k=(2, 3)' in case_id for case_id in ids), op
        for shape in SHAPES:
            assert any(str(shape) in case_id for case_id in ids), (op, shape)
    assert any('outsize=(' in case_id for case_id in CASES)
