"""zerograd against PyTorch: forward values, first derivatives (random upstream gradient)
and second derivatives (the gradient of sum(gx * v) with respect to every input and to the
upstream gradient), in float64 and float32, on random inputs including broadcasting shapes.

Each case is one function ``fn(m, *xs)`` written once for both frameworks: ``m`` is ``ZG``
(zerograd.functions) or ``TH`` (the same names on PyTorch), and operators work on both.
The harness (inputs, both frameworks' derivatives, the comparison) is torch_compare.py.
"""
import types

import numpy as np
import pytest

torch = pytest.importorskip('torch')
pytest.register_assert_rewrite('torch_compare')

import zerograd.functions as F  # noqa: E402
from zerograd import Variable  # noqa: E402
from torch_compare import (  # noqa: E402
    assert_matches_torch, case_rng, const, make_array, make_inputs, to_numpy,
    torch_derivatives, zerograd_derivatives)


def _torch_index(index):
    """A NumPy index with its arrays as tensors (PyTorch indexes with tensors)."""
    if isinstance(index, tuple):
        return tuple(_torch_index(i) for i in index)
    if isinstance(index, np.ndarray):
        return torch.from_numpy(index)
    return index


ZG = F
TH = types.SimpleNamespace(
    sin=torch.sin, cos=torch.cos, tanh=torch.tanh, exp=torch.exp, log=torch.log,
    square=torch.square, sqrt=torch.sqrt, abs=torch.abs,
    add=torch.add, sub=torch.sub, mul=torch.mul, div=torch.div, neg=torch.neg, pow=torch.pow,
    reshape=lambda x, shape: x.reshape(shape),
    transpose=lambda x, axes=None: x.permute(*(range(x.ndim - 1, -1, -1) if axes is None
                                               else axes)),
    sum=lambda x, axis=None, keepdims=False: x.sum(dim=axis, keepdim=keepdims),
    max=lambda x, axis=None, keepdims=False: x.amax(dim=() if axis is None else axis,
                                                    keepdim=keepdims),
    min=lambda x, axis=None, keepdims=False: x.amin(dim=() if axis is None else axis,
                                                    keepdim=keepdims),
    sum_to=lambda x, shape: x.sum_to_size(shape),
    broadcast_to=lambda x, shape: x.expand(shape),
    expand_dims=lambda x, axis: x.unsqueeze(axis),
    flatten=lambda x: x.flatten(1),
    get_item=lambda x, index: x[_torch_index(index)],
    matmul=torch.matmul,
)


C23 = np.random.default_rng(7).uniform(0.5, 1.5, size=(2, 3))  # positive: divisor or base

# id -> (fn(m, *xs), input shapes, domain: 'any' [-1, 1], 'pos' [0.5, 2], 'nonzero' |x| >= 0.5)
CASES = {
    # arithmetic, operators and functions, with broadcasting
    'x + y': (lambda m, x, y: x + y, [(2, 3), (2, 3)], 'any'),
    'x + y broadcast': (lambda m, x, y: x + y, [(2, 1, 3), (4, 1)], 'any'),
    'F.add broadcast': (lambda m, x, y: m.add(x, y), [(3,), (2, 3)], 'any'),
    'x - y broadcast': (lambda m, x, y: x - y, [(2, 1, 3), (4, 1)], 'any'),
    'F.sub broadcast': (lambda m, x, y: m.sub(x, y), [(2, 3), (2, 1)], 'any'),
    'x * y broadcast': (lambda m, x, y: x * y, [(2, 1, 3), (4, 1)], 'any'),
    'F.mul broadcast': (lambda m, x, y: m.mul(x, y), [(2, 3), (3,)], 'any'),
    'x / y broadcast': (lambda m, x, y: x / y, [(2, 1, 3), (4, 1)], 'nonzero'),
    'F.div broadcast': (lambda m, x, y: m.div(x, y), [(1, 3), (2, 1)], 'nonzero'),
    'x ** y broadcast': (lambda m, x, y: x ** y, [(2, 1, 3), (4, 1)], 'pos'),
    'F.pow(x, y)': (lambda m, x, y: m.pow(x, y), [(2, 3), (2, 3)], 'pos'),
    '-x': (lambda m, x: -x, [(2, 3)], 'any'),
    'F.neg': (lambda m, x: m.neg(x), [(2, 3)], 'any'),
    'x + 1.5': (lambda m, x: x + 1.5, [(2, 3)], 'any'),
    '1.5 + x': (lambda m, x: 1.5 + x, [(2, 3)], 'any'),
    'x - 1.5': (lambda m, x: x - 1.5, [(2, 3)], 'any'),
    '2.0 - x': (lambda m, x: 2.0 - x, [(2, 3)], 'any'),
    'x * 1.5': (lambda m, x: x * 1.5, [(2, 3)], 'any'),
    '2 * x': (lambda m, x: 2 * x, [(2, 3)], 'any'),
    'x / 1.5': (lambda m, x: x / 1.5, [(2, 3)], 'any'),
    '2.0 / x': (lambda m, x: 2.0 / x, [(2, 3)], 'nonzero'),
    'x ** 3': (lambda m, x: x ** 3, [(2, 3)], 'any'),
    'x ** -1.5': (lambda m, x: x ** -1.5, [(2, 3)], 'pos'),
    '2 ** x': (lambda m, x: 2 ** x, [(2, 3)], 'any'),
    'x + C': (lambda m, x: x + const(C23, x), [(3,)], 'any'),
    'C - x': (lambda m, x: const(C23, x) - x, [(1, 3)], 'any'),
    'x * C': (lambda m, x: x * const(C23, x), [(2, 1)], 'any'),
    'C / x': (lambda m, x: const(C23, x) / x, [(3,)], 'nonzero'),
    'x / C': (lambda m, x: x / const(C23, x), [(2, 3)], 'any'),
    'x ** C': (lambda m, x: x ** const(C23, x), [(3,)], 'pos'),
    'C ** x': (lambda m, x: const(C23, x) ** x, [(2, 1)], 'any'),
    # elementwise
    'sin': (lambda m, x: m.sin(x), [(2, 3)], 'any'),
    'cos': (lambda m, x: m.cos(x), [(2, 3)], 'any'),
    'tanh': (lambda m, x: m.tanh(x), [(2, 3)], 'any'),
    'exp': (lambda m, x: m.exp(x), [(2, 3)], 'any'),
    'log': (lambda m, x: m.log(x), [(2, 3)], 'pos'),
    'square': (lambda m, x: m.square(x), [(2, 3)], 'any'),
    'sqrt': (lambda m, x: m.sqrt(x), [(2, 3)], 'pos'),
    'abs': (lambda m, x: m.abs(x), [(2, 3)], 'nonzero'),
    'sin 0-d': (lambda m, x: m.sin(x), [()], 'any'),
    # shape
    'reshape': (lambda m, x: m.reshape(x, (3, 2)), [(2, 3)], 'any'),
    'reshape -1': (lambda m, x: m.reshape(x, (-1, 4)), [(2, 3, 4)], 'any'),
    'Variable.reshape varargs': (lambda m, x: x.reshape(4, 6), [(2, 3, 4)], 'any'),
    'transpose None': (lambda m, x: m.transpose(x), [(2, 3, 4)], 'any'),
    'transpose axes': (lambda m, x: m.transpose(x, (1, 2, 0)), [(2, 3, 4)], 'any'),
    'Variable.T': (lambda m, x: x.T, [(2, 3)], 'any'),
    'sum None': (lambda m, x: m.sum(x), [(2, 3, 4)], 'any'),
    'sum 1': (lambda m, x: m.sum(x, 1), [(2, 3, 4)], 'any'),
    'sum -1 keepdims': (lambda m, x: m.sum(x, -1, True), [(2, 3, 4)], 'any'),
    'sum (0, 2)': (lambda m, x: m.sum(x, (0, 2)), [(2, 3, 4)], 'any'),
    'sum (-1, 0) keepdims': (lambda m, x: m.sum(x, (-1, 0), True), [(2, 3, 4)], 'any'),
    'Variable.sum(axis, keepdims)': (lambda m, x: x.sum(axis=1, keepdims=True), [(2, 3)], 'any'),
    'sum_to (1, 3)': (lambda m, x: m.sum_to(x, (1, 3)), [(2, 3)], 'any'),
    'sum_to (3, 1)': (lambda m, x: m.sum_to(x, (3, 1)), [(2, 3, 4)], 'any'),
    'sum_to ()': (lambda m, x: m.sum_to(x, ()), [(2, 3)], 'any'),
    'broadcast_to': (lambda m, x: m.broadcast_to(x, (4, 2, 3)), [(2, 1)], 'any'),
    'expand_dims 1': (lambda m, x: m.expand_dims(x, 1), [(2, 3)], 'any'),
    'expand_dims -1': (lambda m, x: m.expand_dims(x, -1), [(2, 3)], 'any'),
    'flatten': (lambda m, x: m.flatten(x), [(2, 3, 4)], 'any'),
    'get_item int': (lambda m, x: m.get_item(x, 1), [(3, 4)], 'any'),
    'get_item slices': (lambda m, x: m.get_item(x, (slice(None), slice(1, 3))), [(3, 4)], 'any'),
    'get_item repeated': (lambda m, x: m.get_item(x, np.array([0, 2, 0, 0])), [(3, 4)], 'any'),
    'get_item repeated pairs': (
        lambda m, x: m.get_item(x, (np.array([0, 2, 0]), np.array([1, 1, 1]))), [(3, 4)], 'any'),
    'x[index, slice]': (lambda m, x: x[_index(m, np.array([1, 1])), 1:], [(3, 4)], 'any'),
    # reductions
    'max None': (lambda m, x: m.max(x), [(2, 3, 4)], 'any'),
    'max 1': (lambda m, x: m.max(x, 1), [(2, 3, 4)], 'any'),
    'max (0, 2) keepdims': (lambda m, x: m.max(x, (0, 2), True), [(2, 3, 4)], 'any'),
    'min -1': (lambda m, x: m.min(x, -1), [(2, 3, 4)], 'any'),
    'min None keepdims': (lambda m, x: m.min(x, None, True), [(2, 3, 4)], 'any'),
    # matmul
    'matmul 2-D': (lambda m, x, W: m.matmul(x, W), [(3, 4), (4, 5)], 'any'),
    'matmul (2,3,4)@(4,5)': (lambda m, x, W: m.matmul(x, W), [(2, 3, 4), (4, 5)], 'any'),
    'matmul (2,3,4)@(1,4,5)': (lambda m, x, W: x @ W, [(2, 3, 4), (1, 4, 5)], 'any'),
    'matmul (2,1,3,4)@(3,4,2)': (lambda m, x, W: x @ W, [(2, 1, 3, 4), (3, 4, 2)], 'any'),
    'matmul (3,4)@(2,4,5)': (lambda m, x, W: x @ W, [(3, 4), (2, 4, 5)], 'any'),
    'matmul (4,)@(4,5)': (lambda m, x, W: m.matmul(x, W), [(4,), (4, 5)], 'any'),
    'matmul (2,3,4)@(4,)': (lambda m, x, W: m.matmul(x, W), [(2, 3, 4), (4,)], 'any'),
    'matmul (4,)@(2,4,5)': (lambda m, x, W: m.matmul(x, W), [(4,), (2, 4, 5)], 'any'),
    'x.matmul(W)': (lambda m, x, W: x.matmul(W), [(3, 4), (4, 5)], 'any'),
    'x.dot(W) 1-D': (lambda m, x, W: x.dot(W), [(4,), (4,)], 'any'),
    # a composition: the second derivative mixes several ops
    'tanh(x @ W) * exp(-x.sum)': (
        lambda m, x, W: m.tanh(x @ W) * m.exp(-m.sum(x, 1, True)), [(3, 4), (4, 2)], 'any'),
}


def _index(m, index):
    return index if m is ZG else _torch_index(index)


TOLERANCE = {np.float64: dict(rtol=1e-9, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-6)}


@pytest.mark.parametrize('dtype', [np.float64, np.float32], ids=['float64', 'float32'])
@pytest.mark.parametrize('case_id', list(CASES))
def test_against_torch(case_id, dtype):
    fn = CASES[case_id][0]
    xs, gy, vs = make_inputs(case_id, CASES[case_id], dtype, ZG)
    ours = zerograd_derivatives(fn, ZG, xs, gy, vs, plain_first=True)
    theirs = torch_derivatives(fn, TH, xs, gy, vs)
    assert isinstance(ours[0], Variable)
    assert_matches_torch(case_id, dtype, ours, theirs, TOLERANCE[dtype])


# Third derivatives: d/dx of sum(d/dx of sum(d/dx of sum(f(x)))), recorded with create_graph.
THIRD_ORDER = {
    'tanh': (lambda m, x: m.tanh(x), 'any'),
    'sin': (lambda m, x: m.sin(x), 'any'),
    'log': (lambda m, x: m.log(x), 'pos'),
    'sqrt': (lambda m, x: m.sqrt(x), 'pos'),
    'x ** 2.5': (lambda m, x: x ** 2.5, 'pos'),
    '2 ** x': (lambda m, x: 2 ** x, 'any'),
    '2.0 / x': (lambda m, x: 2.0 / x, 'nonzero'),
    'x ** x': (lambda m, x: x ** x, 'pos'),
    'exp(x[index]) * x.sum(0)': (
        lambda m, x: m.exp(m.get_item(x, np.array([0, 0, 1]))) * m.sum(x, 0), 'any'),
    'exp(x @ x.T)': (lambda m, x: m.exp(m.matmul(x, m.transpose(x)) / 4), 'any'),
}


@pytest.mark.parametrize('case_id', list(THIRD_ORDER))
def test_third_derivative_against_torch(case_id):
    fn, domain = THIRD_ORDER[case_id]
    data = make_array((2, 3), domain, case_rng(case_id))

    x = Variable(data.copy())
    g = fn(ZG, x).sum()
    for _ in range(2):
        x.cleargrad()
        g.backward(create_graph=True)
        g = x.grad.sum()
    x.cleargrad()
    g.backward()

    t = torch.tensor(data, requires_grad=True)
    tg = fn(TH, t).sum()
    for _ in range(2):
        tg = torch.autograd.grad(tg, t, create_graph=True)[0].sum()
    expected = torch.autograd.grad(tg, t)[0]

    np.testing.assert_allclose(x.grad.data, to_numpy(expected), rtol=1e-9, atol=1e-12)
