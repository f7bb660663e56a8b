"""zerograd's neural-network functions against PyTorch: forward values, first derivatives
(random upstream gradient) and second derivatives (the gradient of sum(gx * v) with respect
to every input and to the upstream gradient), in float64 and float32. Batch norm's updated
running mean and variance are compared too.

Each case is one function ``fn(m, *xs)`` written once for both frameworks: ``m`` is ``ZG``
(zerograd.functions) or ``TH`` (the same names and conventions on PyTorch).
"""
import types
import zlib

import numpy as np
import pytest

torch = pytest.importorskip('torch')
tF = torch.nn.functional

import zerograd.functions as F  # noqa: E402
from zerograd import Variable  # noqa: E402

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


def _const(array, x):
    """A constant operand in x's framework and dtype."""
    if isinstance(x, torch.Tensor):
        return torch.as_tensor(array, dtype=x.dtype)
    return array.astype(x.dtype)


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
    'linear ndarray x': (lambda m, W, b: m.linear(_const(X53, W), W, b), [(3, 4), (4,)], 'any'),
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


def _make(shape, domain, rng):
    if domain == 'scores':
        return rng.uniform(-3.0, 3.0, size=shape)
    if domain == 'kinkless':
        return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.2, 1.5, size=shape)
    if domain == 'clip':
        x = rng.uniform(-0.9, 0.9, size=shape)
        return np.where(np.abs(x) < 0.5, x * 0.8, np.sign(x) * (np.abs(x) + 0.1))
    if domain == 'prob':
        return rng.uniform(0.05, 0.95, size=shape)
    return rng.uniform(-1.0, 1.0, size=shape)


def _inputs(case_id, dtype):
    """The case's inputs, upstream gradient gy and double-backward weights vs."""
    fn, shapes, domain = CASES[case_id]
    rng = np.random.default_rng(zlib.crc32(case_id.encode()))
    xs = [_make(shape, domain, rng).astype(dtype) for shape in shapes]
    y_shape = np.shape(fn(ZG, *[Variable(x.astype(np.float64)) for x in xs]).data)
    gy = rng.standard_normal(y_shape).astype(dtype)
    vs = [rng.standard_normal(x.shape).astype(dtype) for x in xs]
    return fn, xs, gy, vs


def _zerograd(fn, xs, gy, vs):
    """(y, [gx], [ggx], ggy) computed by zerograd, in one backward with create_graph."""
    inputs = [Variable(x.copy()) for x in xs]
    gy_var = Variable(gy.copy())
    y = fn(ZG, *inputs)
    y.grad = gy_var
    y.backward(create_graph=True)
    gxs = [x.grad for x in inputs]
    for x in inputs:
        x.cleargrad()
    g = None
    for gx, v in zip(gxs, vs):
        if gx is not None:
            g = (gx * v).sum() if g is None else g + (gx * v).sum()
    g.backward()
    zeros_or = lambda a, v: np.zeros_like(a) if v is None else v.data  # noqa: E731
    return (y, [zeros_or(x, gx) for x, gx in zip(xs, gxs)],
            [zeros_or(x, v.grad) for x, v in zip(xs, inputs)], zeros_or(gy, gy_var.grad))


def _torch(fn, xs, gy, vs):
    """(y, [gx], [ggx], ggy) computed by PyTorch."""
    inputs = [torch.tensor(x, requires_grad=True) for x in xs]
    gy_t = torch.tensor(gy, requires_grad=True)
    y = fn(TH, *inputs)
    gxs = torch.autograd.grad(y, inputs, gy_t, create_graph=True, allow_unused=True)
    gxs = [torch.zeros_like(x) if gx is None else gx for x, gx in zip(inputs, gxs)]
    g = sum((gx * torch.from_numpy(v)).sum() for gx, v in zip(gxs, vs))
    grads = torch.autograd.grad(g, inputs + [gy_t], allow_unused=True)
    grads = [torch.zeros_like(x) if gr is None else gr for x, gr in zip(inputs + [gy_t], grads)]
    return _np(y), [_np(gx) for gx in gxs], [_np(gr) for gr in grads[:-1]], _np(grads[-1])


def _np(t):
    return t.detach().numpy(force=True)  # force: PyTorch may return a lazy zero tensor


# float32: losses and batch norm sum many rounded terms, and second derivatives of batch
# norm cancel large ones, so a few float32 spacings of the largest term.
TOLERANCE = {np.float64: dict(rtol=1e-9, atol=1e-11), np.float32: dict(rtol=1e-4, atol=1e-5)}


@pytest.mark.parametrize('dtype', [np.float64, np.float32], ids=['float64', 'float32'])
@pytest.mark.parametrize('case_id', list(CASES))
def test_against_torch(case_id, dtype):
    fn, xs, gy, vs = _inputs(case_id, dtype)
    y, gxs, ggxs, ggy = _zerograd(fn, xs, gy, vs)
    ty, tgxs, tggxs, tggy = _torch(fn, xs, gy, vs)
    tol = TOLERANCE[dtype]

    assert y.dtype == dtype, f'{case_id}: {np.dtype(dtype).name} inputs gave {y.dtype}'
    assert y.shape == ty.shape, f'{case_id}: output shape {y.shape}, torch {ty.shape}'
    np.testing.assert_allclose(y.data, ty, **tol, err_msg=f'{case_id}: forward')
    for i, (gx, tgx) in enumerate(zip(gxs, tgxs)):
        assert gx.dtype == dtype, f'{case_id}: gradient of input {i} is {gx.dtype}'
        np.testing.assert_allclose(gx, tgx, **tol,
                                   err_msg=f'{case_id}: first derivative of input {i}')
    for i, (ggx, tggx) in enumerate(zip(ggxs, tggxs)):
        np.testing.assert_allclose(ggx, tggx, **tol,
                                   err_msg=f'{case_id}: second derivative of input {i}')
    np.testing.assert_allclose(ggy, tggy, **tol,
                               err_msg=f'{case_id}: double backward w.r.t. the upstream grad')


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
        np.testing.assert_allclose(y.data, _np(ty), **tol, err_msg=f'step {step}: output')
        np.testing.assert_allclose(mean, _np(t_mean), **tol, err_msg=f'step {step}: mean')
        np.testing.assert_allclose(var, _np(t_var), **tol, err_msg=f'step {step}: var')
    assert mean.dtype == var.dtype == dtype
