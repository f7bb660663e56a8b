"""The per-op checks every differentiable op must pass (Chainer's generated op tests).

``check_op`` runs, for one op:

1. forward against a plain NumPy reference, in float64 and float32;
2. dtype kept: float32 in gives a float32 output and float32 gradients;
3. first derivatives against float64 central differences, for every input, with a random
   upstream gradient (so a wrong sign or a transposed gradient cannot hide in a sum);
4. the same on broadcasting shapes, when given;
5. double backward: the gradient of sum(gx * v) with respect to every input and to the
   upstream gradient, against central differences of the first derivatives.

It raises ``OpCheckError`` naming the op, the check, the input and shape, and the largest
error. Use it for custom ops too::

    check_op('sin', F.sin, np.sin, [(3, 4)])
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from zerograd.core import Variable, as_variable


class OpCheckError(AssertionError):
    """An op failed one of the checks of ``check_op``."""


def _uniform(low: float, high: float) -> Callable:
    def make(shape: tuple, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(low, high, size=shape)
    return make


def _largest_error(actual: np.ndarray, expected: np.ndarray, rtol: float,
                   atol: float) -> tuple[bool, float]:
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        return False, float('inf')
    error = np.abs(actual - expected)
    ok = bool(np.all(error <= atol + rtol * np.abs(expected)))
    return ok, float(error.max()) if error.size else 0.0


def _fail(name: str, check: str, shapes: Sequence[tuple], detail: str) -> None:
    raise OpCheckError(f'{name}: {check} failed for input shapes {list(shapes)}: {detail}')


def _grads(f: Callable, arrays: Sequence[np.ndarray], gy: np.ndarray) -> list[np.ndarray]:
    """Backprop's gradients of sum(f(*xs) * gy) for each input."""
    xs = [Variable(a) for a in arrays]
    y = as_variable(f(*xs))
    y.grad = Variable(gy)
    y.backward()
    return [np.zeros_like(a) if x.grad is None else x.grad.data for a, x in zip(arrays, xs)]


def _numerical(h: Callable[[list[np.ndarray]], float], arrays: list[np.ndarray], i: int,
               eps: float) -> np.ndarray:
    """Central difference of the scalar h with respect to arrays[i]."""
    point = [a.copy() for a in arrays]
    flat = point[i].reshape(-1)
    grad = np.zeros(flat.size)
    for k in range(flat.size):
        original = flat[k]
        flat[k] = original + eps
        plus = h(point)
        flat[k] = original - eps
        minus = h(point)
        flat[k] = original
        grad[k] = (plus - minus) / (2 * eps)
    return grad.reshape(arrays[i].shape)


def check_op(name: str, f: Callable, ref: Callable | None, shapes: Sequence[tuple], *,
             broadcast: Sequence[tuple] | None = None, make_input: Callable | None = None,
             low: float = -1.0, high: float = 1.0, double_backward: bool = True,
             check_float32: bool = True, rtol: float = 1e-4, atol: float = 1e-6,
             eps: float = 1e-6, seed: int = 0) -> None:
    """Run every per-op check on ``f`` (a function of Variables) and raise
    ``OpCheckError`` at the first failure.

    ref: the NumPy reference of the forward (arrays in, array out), or None to skip it.
    shapes: the shape of each input; broadcast: other shapes that broadcast together.
    make_input(shape, rng): draws an input (default: uniform in [low, high]).
    """
    rng = np.random.default_rng(seed)
    make = make_input or _uniform(low, high)
    cases = [tuple(shapes)]
    if broadcast is not None:
        cases.append(tuple(broadcast))
    for case in cases:
        arrays = [np.asarray(make(tuple(shape), rng), dtype=np.float64) for shape in case]
        _check_forward(name, f, ref, case, arrays, check_float32)
        y_shape = as_variable(f(*[Variable(a) for a in arrays])).shape
        gy = rng.standard_normal(y_shape)
        _check_first(name, f, case, arrays, gy, rtol, atol, eps)
        if double_backward:
            vs = [rng.standard_normal(a.shape) for a in arrays]
            _check_double(name, f, case, arrays, gy, vs, rtol, atol, eps)


def _check_forward(name, f, ref, shapes, arrays, check_float32):
    y = as_variable(f(*[Variable(a) for a in arrays]))
    if y.dtype != np.float64:
        _fail(name, 'dtype', shapes, f'float64 inputs gave a {y.dtype} output')
    if ref is not None:
        expected = ref(*arrays)
        ok, error = _largest_error(y.data, expected, 1e-7, 1e-10)
        if not ok:
            _fail(name, 'forward (float64) against NumPy', shapes,
                  f'largest error {error:.3g}, output shape {y.shape}, '
                  f'reference shape {np.shape(expected)}')
    if not check_float32:
        return
    xs32 = [Variable(a.astype(np.float32)) for a in arrays]
    y32 = as_variable(f(*xs32))
    if y32.dtype != np.float32:
        _fail(name, 'dtype', shapes, f'float32 inputs gave a {y32.dtype} output')
    if ref is not None:
        ok, error = _largest_error(y32.data, ref(*arrays), 1e-4, 1e-5)
        if not ok:
            _fail(name, 'forward (float32) against NumPy', shapes, f'largest error {error:.3g}')
    y32.backward()
    for i, x in enumerate(xs32):
        if x.grad is not None and x.grad.dtype != np.float32:
            _fail(name, 'dtype', shapes, f'float32 input {i} got a {x.grad.dtype} gradient')


def _check_first(name, f, shapes, arrays, gy, rtol, atol, eps):
    grads = _grads(f, arrays, gy)

    def h(point):
        y = as_variable(f(*[Variable(a) for a in point]))
        return float(np.sum(y.data * gy))

    for i, grad in enumerate(grads):
        expected = _numerical(h, list(arrays), i, eps)
        ok, error = _largest_error(grad, expected, rtol, atol)
        if not ok:
            _fail(name, f'first derivative of input {i} against central differences',
                  shapes, f'largest error {error:.3g} (rtol {rtol}, atol {atol})')


def _check_double(name, f, shapes, arrays, gy, vs, rtol, atol, eps):
    # g = sum_i sum(gx_i * v_i), where gx_i is recorded with create_graph=True.
    xs = [Variable(a) for a in arrays]
    gy_var = Variable(gy.copy())
    y = as_variable(f(*xs))
    y.grad = gy_var
    y.backward(create_graph=True)
    gxs = [x.grad for x in xs]
    for x in xs:
        x.cleargrad()
    g = None
    for gx, v in zip(gxs, vs):
        if gx is None:
            continue
        term = (gx * v).sum()
        g = term if g is None else g + term
    if g is None:
        _fail(name, 'double backward', shapes, 'no input got a gradient')
    g.backward()

    def h(point, upstream=gy):
        grads = _grads(f, point, upstream)
        return float(sum(np.sum(gr * v) for gr, v in zip(grads, vs)))

    for i, x in enumerate(xs):
        actual = np.zeros_like(arrays[i]) if x.grad is None else x.grad.data
        expected = _numerical(h, list(arrays), i, eps)
        ok, error = _largest_error(actual, expected, rtol * 10, atol * 10)
        if not ok:
            _fail(name, f'second derivative of input {i} against central differences',
                  shapes, f'largest error {error:.3g}')
    actual = np.zeros_like(gy) if gy_var.grad is None else gy_var.grad.data
    expected = _numerical(lambda point: h(list(arrays), point[0]), [gy], 0, eps)
    ok, error = _largest_error(actual, expected, rtol * 10, atol * 10)
    if not ok:
        _fail(name, 'double backward with respect to the upstream gradient', shapes,
              f'largest error {error:.3g}')
