"""zerograd's neural-network functions against PyTorch: forward values, first derivatives
(random upstream gradient) and second derivatives (the gradient of sum(gx * v) with respect
to every input and to the upstream gradient), in float64 and float32. Batch norm's updated
running mean and variance are compared too.

Each case is one function ``fn(m, *xs)`` written once for both frameworks: ``m`` is ``ZG``
(zerograd.functions) or ``TH`` (the same names and conventions on PyTorch).
The harness (inputs, both frameworks' derivatives, the comparison) is torch_compare.py.
"""
import types

import numpy as np
import pytest

torch = pytest.importorskip('torch')
tF = torch.nn.functional
pytest.register_assert_rewrite('torch_compare')

import zerograd.functions as F  # noqa: E402
from torch_compare import (  # noqa: E402
    assert_matches_torch, const, make_inputs, to_numpy, torch_derivatives,
    zerograd_derivatives)

EPS = 2e-5  # batch_norm's default eps


def _th_batch_norm(x, gamma, beta, running_mean=None, running_var=None):
    C = x.shape[1]
    if running_mean is None:
        running_mean, running_var = torch.zeros(C, dtype=x.dtype), torch.ones(C, dtype=x.dtype)
    return tF.batch_norm(x, running_mean, running_var, gamma, beta, training=True,
                         momentum=0.1, eps=EPS)


def _zg_batch_norm(x, gamma, beta):
    C = x.shape[1]
    return F.batch_norm(x, gamma, beta, np.zeros(C, x.dtype), np.ones(C, x.dtype))


def _th_mean(x, axis=None, keepdims=False):
    return x.mean() if axis is None else x.mean(dim=axis, keepdim=keepdims)


def _th_labels(t, x):
    return torch.as_tensor(t, dtype=x.dtype)


ZG = types.SimpleNamespace(**{name: getattr(F, name) for name in dir(F)})
ZG.batch_norm = _zg_batch_norm
TH = types.SimpleNamespace(
    mean=_th_mean,
    sigmoid=torch.sigmoid,
    relu=torch.relu,
    leaky_relu=lambda x, slope=0.2: tF.leaky_relu(x, negative_slope=slope),
    clip=torch.clamp,
    linear=lambda x, W, b=None: tF.linear(x, W.T, b),  # torch's weight is (out, in)
    softmax=lambda x, axis=1: tF.softmax(x, dim=axis),
    log_softmax=lambda x, axis=1: tF.log_softmax(x, dim=axis),
    mean_squared_error=lambda x0, x1: ((x0 - x1) ** 2).sum() / len(x0),
    softmax_cross_entropy=lambda x, t: tF.cross_entropy(x, torch.from_numpy(t)),
    sigmoid_cross_entropy=lambda x, t: tF.binary_cross_entropy_with_logits(
        x, _th_labels(t, x), reduction='sum') / len(x),
    binary_cross_entropy=lambda p, t: tF.binary_cross_entropy(
        p, _th_labels(t, p), reduction='sum') / len(p),
    batch_norm=_th_batch_norm,
    embed_id=lambda ids, W: tF.embedding(torch.from_numpy(ids), W),
    concat=lambda xs, axis=0: torch.cat(xs, dim=axis),
    stack=lambda xs, axis=0: torch.stack(xs, dim=axis),
)


_rng = np.random.default_rng(11)
T5 = _rng.integers(0, 4, size=5)  # class ids for 5 rows of 4 scores
T51 = _rng.integers(0, 2, size=(5, 1)).astype(np.float64)  # 0/1 labels
T54 = _rng.integers(0, 2, size=(5, 4)).astype(np.float64)  # multi-label 0/1
X53 = _rng.uniform(-1, 1, size=(5, 3))  # a plain-array input of linear
IDS = np.array([[0, 3, 3], [5, 0, 1]])

# id -> (fn(m, *xs), input shapes, domain: 'any' [-1, 1], 'scores' [-3, 3],
#        'kinkless' |x| in [0.2, 1.5], 'clip' [-1, 1] away from +-0.5, 'prob' [0.05, 0.95])
CASES = {
    'mean': (lambda m, x: m.mean(x), [(2, 3, 4)], 'any'),
    'mean axis=1': (lambda m, x: m.mean(x, 1), [(2, 3, 4)], 'any'),
    'mean axis=(0, 2) keepdims': (lambda m, x: m.mean(x, (0, 2), True), [(2, 3, 4)], 'any'),
    'mean axis=-1': (lambda m, x: m.mean(x, -1), [(3, 4)], 'any'),
    'sigmoid': (lambda m, x: m.sigmoid(x), [(2, 3, 4)], 'scores'),
    'relu': (lambda m, x: m.relu(x), [(2, 3, 4)], 'kinkless'),
    'leaky_relu': (lambda m, x: m.leaky_relu(x, 0.2), [(2, 3, 4)], 'kinkless'),
    'clip': (lambda m, x: m.clip(x, -0.5, 0.5), [(3, 4)], 'clip'),
    'linear': (lambda m, x, W, b: m.linear(x, W, b), [(5, 3), (3, 4), (4,)], 'any'),
    'linear without b': (lambda m, x, W: m.linear(x, W), [(5, 3), (3, 4)], 'any'),
    'linear ndarray x': (lambda m, W, b: m.linear(const(X53, W), W, b), [(3, 4), (4,)], 'any'),
    'softmax': (lambda m, x: m.softmax(x), [(5, 4)], 'scores'),
    'softmax axis=0': (lambda m, x: m.softmax(x, 0), [(5, 4)], 'scores'),
    'softmax 3-D axis=-1': (lambda m, x: m.softmax(x, -1), [(2, 3, 4)], 'scores'),
    'softmax 3-D axis=1': (lambda m, x: m.softmax(x, 1), [(2, 3, 4)], 'scores'),
    'log_softmax': (lambda m, x: m.log_softmax(x), [(5, 4)], 'scores'),
    'log_softmax 3-D axis=0': (lambda m, x: m.log_softmax(x, 0), [(2, 3, 4)], 'scores'),
    'mean_squared_error': (lambda m, a, b: m.mean_squared_error(a, b), [(5, 3), (5, 3)], 'any'),
    'mean_squared_error (N,)': (lambda m, a, b: m.mean_squared_error(a, b), [(5,), (5,)], 'any'),
    'softmax_cross_entropy': (lambda m, x: m.softmax_cross_entropy(x, T5), [(5, 4)], 'scores'),
    'sigmoid_cross_entropy': (lambda m, x: m.sigmoid_cross_entropy(x, T51), [(5, 1)], 'scores'),
    'sigmoid_cross_entropy (N, C)': (lambda m, x: m.sigmoid_cross_entropy(x, T54), [(5, 4)],
                                     'scores'),
    'binary_cross_entropy': (lambda m, p: m.binary_cross_entropy(p, T54), [(5, 4)], 'prob'),
    'batch_norm (N, C)': (lambda m, x, g, b: m.batch_norm(x, g, b), [(6, 3), (3,), (3,)],
                          'any'),
    'batch_norm (N, C, H, W)': (lambda m, x, g, b: m.batch_norm(x, g, b),
                                [(3, 2, 3, 2), (2,), (2,)], 'any'),
    'embed_id': (lambda m, W: m.embed_id(IDS, W), [(6, 3)], 'any'),
    'concat axis=0': (lambda m, a, b: m.concat([a, b]), [(2, 3), (4, 3)], 'any'),
    'concat axis=1 three': (lambda m, a, b, c: m.concat([a, b, c], 1),
                            [(2, 1, 3), (2, 2, 3), (2, 4, 3)], 'any'),
    'stack axis=0': (lambda m, a, b: m.stack([a, b]), [(2, 3), (2, 3)], 'any'),
    'stack axis=-1': (lambda m, a, b, c: m.stack([a, b, c], -1), [(2, 3)] * 3, 'any'),
    # compositions whose inputs broadcast
    'softmax(x + y) broadcast': (lambda m, x, y: m.softmax(x + y), [(5, 4), (4,)], 'scores'),
    'linear(x, W) * s broadcast then sigmoid_cross_entropy': (
        lambda m, x, W, s: m.sigmoid_cross_entropy(m.linear(x, W) * s, T54),
        [(5, 3), (3, 4), (5, 1)], 'any'),
    'leaky_relu(x) * y broadcast, mean axis=0': (
        lambda m, x, y: m.mean(m.leaky_relu(x) * y, 0), [(2, 1, 3), (4, 1)], 'kinkless'),
}


# float32: losses and batch norm sum many rounded terms, and second derivatives of batch
# norm cancel large ones, so a few float32 spacings of the largest term.
TOLERANCE = {np.float64: dict(rtol=1e-9, atol=1e-11), np.float32: dict(rtol=1e-4, atol=1e-5)}


@pytest.mark.parametrize('dtype', [np.float64, np.float32], ids=['float64', 'float32'])
@pytest.mark.parametrize('case_id', list(CASES))
def test_against_torch(case_id, dtype):
    fn = CASES[case_id][0]
    xs, gy, vs = make_inputs(case_id, CASES[case_id], dtype, ZG)
    ours = zerograd_derivatives(fn, ZG, xs, gy, vs, plain_first=False)
    theirs = torch_derivatives(fn, TH, xs, gy, vs)
    assert_matches_torch(case_id, dtype, ours, theirs, TOLERANCE[dtype])


@pytest.mark.parametrize('dtype', [np.float64, np.float32], ids=['float64', 'float32'])
@pytest.mark.parametrize('shape', [(6, 3), (4, 3, 2, 2), (2, 3)],
                         ids=['(N, C)', '(N, C, H, W)', 'N=2'])
def test_batch_norm_running_stats_against_torch(shape, dtype):
    """Two training steps: zerograd's decay 0.9 is torch's momentum 0.1, and both keep
    the unbiased variance m / (m - 1) in the running variance."""
    rng = np.random.default_rng(12)
    gamma, beta = rng.uniform(0.5, 1.5, 3).astype(dtype), rng.standard_normal(3).astype(dtype)
    mean, var = rng.standard_normal(3).astype(dtype), rng.uniform(0.5, 2.0, 3).astype(dtype)
    t_mean, t_var = torch.tensor(mean), torch.tensor(var)
    tol = TOLERANCE[dtype]
    for step in range(2):
        x = rng.normal(1.0, 2.0, size=shape).astype(dtype)
        y = F.batch_norm(x, gamma, beta, mean, var)
        ty = _th_batch_norm(torch.tensor(x), torch.tensor(gamma), torch.tensor(beta),
                            t_mean, t_var)
        np.testing.assert_allclose(y.data, to_numpy(ty), **tol, err_msg=f'step {step}: output')
        np.testing.assert_allclose(mean, to_numpy(t_mean), **tol, err_msg=f'step {step}: mean')
        np.testing.assert_allclose(var, to_numpy(t_var), **tol, err_msg=f'step {step}: var')
    assert mean.dtype == var.dtype == dtype
