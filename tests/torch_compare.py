"""The harness of the PyTorch comparisons (test_torch.py).

A case of the op registry (ops.py) is one function ``fn(m, *xs)`` written once for every
framework: ``m`` is ``zerograd.functions`` or the same names on PyTorch
(``op_references.TH``), and operators work on both. For a case this module draws the inputs, computes with each framework the forward value, the first
derivatives (random upstream gradient ``gy``) and the second derivatives (the gradient of
sum(gx * v) with respect to every input and to ``gy``), and compares them.

Not a test module: the test modules import it after ``pytest.importorskip('torch')``
(pytest puts tests/, which has no ``__init__.py``, on sys.path), and register it for
pytest's assertion rewriting first.
"""
import numpy as np
import torch

from op_references import case_rng, make_array
from zerograd import Variable


def make_inputs(case_id, case, dtype, zg):
    """The case's inputs xs, upstream gradient gy and double-backward weights vs.

    case: (fn, input shapes, domain); zg: the zerograd namespace, used once to learn the
    output's shape."""
    fn, shapes, domain = case
    rng = case_rng(case_id)
    xs = [make_array(shape, domain, rng).astype(dtype) for shape in shapes]
    y_shape = np.shape(fn(zg, *[Variable(x.astype(np.float64)) for x in xs]).data)
    gy = rng.standard_normal(y_shape).astype(dtype)
    vs = [rng.standard_normal(x.shape).astype(dtype) for x in xs]
    return xs, gy, vs


def _data_or_zeros(like, v):
    return np.zeros_like(like) if v is None else v.data


def zerograd_derivatives(fn, zg, xs, gy, vs, plain_first=True):
    """(y, [gx], [ggx], ggy) computed by zerograd.

    plain_first: the first derivatives from a backward without create_graph, and the second
    ones from a second run of fn; otherwise both from one backward with create_graph."""
    if plain_first:
        inputs = [Variable(x.copy()) for x in xs]
        y = fn(zg, *inputs)
        y.grad = Variable(gy.copy())
        y.backward()
        gxs = [_data_or_zeros(x, v.grad) for x, v in zip(xs, inputs)]

    inputs = [Variable(x.copy()) for x in xs]
    gy_var = Variable(gy.copy())
    y2 = fn(zg, *inputs)
    y2.grad = gy_var
    y2.backward(create_graph=True)
    if not plain_first:
        y = y2
        gxs = [_data_or_zeros(x, v.grad) for x, v in zip(xs, inputs)]
    g = None
    for x, v in zip(inputs, vs):
        if x.grad is not None:
            term = (x.grad * v).sum()
            g = term if g is None else g + term
        x.cleargrad()
    g.backward()
    ggxs = [_data_or_zeros(x, v.grad) for x, v in zip(xs, inputs)]
    return y, gxs, ggxs, _data_or_zeros(gy, gy_var.grad)


def torch_derivatives(fn, th, xs, gy, vs):
    """(y, [gx], [ggx], ggy) computed by PyTorch, as NumPy arrays; th: the torch namespace."""
    inputs = [torch.tensor(x, requires_grad=True) for x in xs]
    gy_t = torch.tensor(gy, requires_grad=True)
    y = fn(th, *inputs)
    gxs = torch.autograd.grad(y, inputs, gy_t, create_graph=True, allow_unused=True)
    gxs = [torch.zeros_like(x) if gx is None else gx for x, gx in zip(inputs, gxs)]
    g = sum((gx * torch.from_numpy(v)).sum() for gx, v in zip(gxs, vs))
    grads = torch.autograd.grad(g, inputs + [gy_t], allow_unused=True)
    grads = [torch.zeros_like(x) if gr is None else gr for x, gr in zip(inputs + [gy_t], grads)]
    return (to_numpy(y), [to_numpy(gx) for gx in gxs], [to_numpy(gr) for gr in grads[:-1]],
            to_numpy(grads[-1]))


def to_numpy(t):
    """A tensor as a NumPy array (force: PyTorch may return a lazy zero tensor)."""
    return t.detach().numpy(force=True)


def assert_matches_torch(case_id, dtype, ours, theirs, tol):
    """zerograd's (y, [gx], [ggx], ggy) against PyTorch's: dtype and shape of y and of every
    gx, and every value within tol (keyword arguments of assert_allclose)."""
    y, gxs, ggxs, ggy = ours
    ty, tgxs, tggxs, tggy = theirs
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
