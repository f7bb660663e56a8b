"""Differentiable functions: ``import zerograd.functions as F``.

Each op is a Function subclass (``forward`` on arrays, ``backward`` on Variables with the
functions of this module, so every backward can be differentiated again) and a lowercase
wrapper that checks its arguments and takes shortcuts.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from zerograd import utils
from zerograd.core import (Function, Variable, as_array, as_variable,  # noqa: F401
                           add, sub, rsub, mul, div, rdiv, neg, pow)
from zerograd.cuda import get_array_module


def _data(x: Any) -> Any:
    """The array inside x (a Variable or an array)."""
    return x.data if isinstance(x, Variable) else x


# =============================================================================
# Elementwise
# =============================================================================
class Sin(Function):
    def forward(self, x):
        return get_array_module(x).sin(x)

    def backward(self, gy):
        x, = self.inputs
        return gy * cos(x)


def sin(x: Any) -> Variable:
    """Sine, elementwise. x: any shape."""
    return Sin()(x)


class Cos(Function):
    def forward(self, x):
        return get_array_module(x).cos(x)

    def backward(self, gy):
        x, = self.inputs
        return gy * -sin(x)


def cos(x: Any) -> Variable:
    """Cosine, elementwise. x: any shape."""
    return Cos()(x)


class Tanh(Function):
    def forward(self, x):
        return get_array_module(x).tanh(x)

    def backward(self, gy):
        y = self.outputs[0]()  # weakref: the output is alive during backward
        return gy * (1 - y * y)


def tanh(x: Any) -> Variable:
    """Hyperbolic tangent, elementwise. x: any shape."""
    return Tanh()(x)


class Exp(Function):
    def forward(self, x):
        return get_array_module(x).exp(x)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy * y


def exp(x: Any) -> Variable:
    """e ** x, elementwise. x: any shape."""
    return Exp()(x)


class Log(Function):
    def forward(self, x):
        return get_array_module(x).log(x)

    def backward(self, gy):
        x, = self.inputs
        return gy / x


def log(x: Any) -> Variable:
    """Natural logarithm, elementwise. x: any shape, positive."""
    return Log()(x)


class Square(Function):
    def forward(self, x):
        return x * x

    def backward(self, gy):
        x, = self.inputs
        return gy * x * 2


def square(x: Any) -> Variable:
    """x ** 2, elementwise. x: any shape."""
    return Square()(x)


class Sqrt(Function):
    def forward(self, x):
        return get_array_module(x).sqrt(x)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy / (y * 2)


def sqrt(x: Any) -> Variable:
    """Square root, elementwise. x: any shape, non-negative (the gradient at 0 is inf)."""
    return Sqrt()(x)


class Abs(Function):
    def forward(self, x):
        return get_array_module(x).abs(x)

    def backward(self, gy):
        x, = self.inputs
        xp = get_array_module(x.data)
        return gy * xp.sign(x.data)  # a constant mask: the second derivative is 0


def abs(x: Any) -> Variable:
    """|x|, elementwise. x: any shape (the gradient at 0 is 0)."""
    return Abs()(x)


# =============================================================================
# Shape
# =============================================================================
class Reshape(Function):
    def __init__(self, shape: tuple) -> None:
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return reshape(gy, self.x_shape)


def reshape(x: Any, shape: Any) -> Variable:
    """x with a new shape of the same size (-1 infers one axis). Returns x itself when
    the shape already matches."""
    x = as_variable(x)
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    if x.shape == shape:
        return x
    size = x.size
    known = 1
    for n in shape:
        if n != -1:
            known *= n
    ok = (shape.count(-1) == 0 and known == size) or \
         (shape.count(-1) == 1 and known > 0 and size % known == 0)
    if not ok or any(n < -1 for n in shape):
        raise ValueError(f'reshape: cannot reshape x of shape {x.shape} (size {size}) '
                         f'into shape {shape}')
    return Reshape(shape)(x)


class Transpose(Function):
    def __init__(self, axes: tuple | None = None) -> None:
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy):
        if self.axes is None:
            return transpose(gy)
        inverse = tuple(np.argsort(self.axes).tolist())
        return transpose(gy, inverse)


def transpose(x: Any, axes: Any = None) -> Variable:
    """Permute the axes of x (axes=None reverses them)."""
    x = as_variable(x)
    if axes is not None:
        axes = tuple(int(a) % x.ndim if -x.ndim <= a < x.ndim else a for a in axes)
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(f'transpose: axes {axes} are not a permutation of the '
                             f'{x.ndim} axes of x of shape {x.shape}')
    return Transpose(axes)(x)


class BroadcastTo(Function):
    def __init__(self, shape: tuple) -> None:
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return get_array_module(x).broadcast_to(x, self.shape)

    def backward(self, gy):
        return sum_to(gy, self.x_shape)


def broadcast_to(x: Any, shape: Any) -> Variable:
    """x repeated along new or length-1 axes to ``shape`` (NumPy broadcasting)."""
    x = as_variable(x)
    shape = tuple(shape)
    if x.shape == shape:
        return x
    try:
        if np.broadcast_shapes(x.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(f'broadcast_to: x of shape {x.shape} cannot be broadcast '
                         f'to shape {shape}') from None
    return BroadcastTo(shape)(x)


class SumTo(Function):
    def __init__(self, shape: tuple) -> None:
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return utils.sum_to(x, self.shape)

    def backward(self, gy):
        return broadcast_to(gy, self.x_shape)


def sum_to(x: Any, shape: Any) -> Variable:
    """Sum x over axes so that it has ``shape`` (the reverse of broadcast_to)."""
    x = as_variable(x)
    shape = tuple(shape)
    if x.shape == shape:
        return x
    try:
        if np.broadcast_shapes(x.shape, shape) != x.shape:
            raise ValueError
    except ValueError:
        raise ValueError(f'sum_to: x of shape {x.shape} cannot be summed to '
                         f'shape {shape}') from None
    return SumTo(shape)(x)


class GetItem(Function):
    def __init__(self, slices: Any) -> None:
        self.slices = slices

    def forward(self, x):
        return x[self.slices]

    def backward(self, gy):
        x, = self.inputs
        return GetItemGrad(self.slices, x.shape)(gy)


class GetItemGrad(Function):
    """Scatter gy into zeros of the input's shape, adding where an index repeats."""

    def __init__(self, slices: Any, in_shape: tuple) -> None:
        self.slices = slices
        self.in_shape = in_shape

    def forward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.in_shape, dtype=gy.dtype)
        if _is_basic_index(self.slices):
            gx[self.slices] = gy  # no element is selected twice: plain assignment
        elif xp is np:
            np.add.at(gx, self.slices, gy)
        else:
            xp.add.at(gx, self.slices, gy)
        return gx

    def backward(self, ggx):
        return get_item(ggx, self.slices)


def _is_basic_index(slices: Any) -> bool:
    """True for ints, slices, None and Ellipsis only (each element selected at most once)."""
    items = slices if isinstance(slices, tuple) else (slices,)
    return all(isinstance(s, (int, np.integer, slice, type(None), type(Ellipsis)))
               and not isinstance(s, bool) for s in items)


def get_item(x: Any, slices: Any) -> Variable:
    """``x[slices]`` with NumPy indexing (ints, slices, index arrays); differentiable."""
    items = slices if isinstance(slices, tuple) else (slices,)
    for s in items:
        if isinstance(s, Variable):
            raise TypeError('get_item: an index must be an int, a slice or an array, not a '
                            f'Variable (got Variable of shape {s.shape}); use index.data')
    return GetItem(slices)(x)


def expand_dims(x: Any, axis: int) -> Variable:
    """x with a new axis of length 1 at position ``axis``."""
    x = as_variable(x)
    shape = list(x.shape)
    if not -x.ndim - 1 <= axis <= x.ndim:
        raise ValueError(f'expand_dims: axis {axis} is out of range for x of shape {x.shape}')
    shape.insert(axis % (x.ndim + 1), 1)
    return reshape(x, tuple(shape))


def flatten(x: Any) -> Variable:
    """(N, ...) -> (N, rest): keeps the first axis."""
    x = as_variable(x)
    return reshape(x, (x.shape[0], -1))


# =============================================================================
# Reductions
# =============================================================================
def _normalize_axis(op: str, axis: Any, ndim: int, shape: tuple) -> tuple | None:
    """An int, tuple or negative axis as a sorted tuple of non-negative axes."""
    if axis is None:
        return None
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    normalized = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise TypeError(f'{op}: axis must be an int or a tuple of ints, got {axis!r}')
        if not -ndim <= a < ndim:
            raise ValueError(f'{op}: axis {a} is out of range for x of shape {shape}')
        normalized.append(int(a) % ndim)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f'{op}: repeated axis in {axis!r}')
    return tuple(sorted(normalized))


class Sum(Function):
    def __init__(self, axis: tuple | None, keepdims: bool) -> None:
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        self.x_shape = x.shape
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        gy = utils.reshape_sum_backward(gy, self.x_shape, self.axis, self.keepdims)
        return broadcast_to(gy, self.x_shape)


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """Sum over ``axis`` (None: all; an int, a tuple, negative counts from the end)."""
    x = as_variable(x)
    return Sum(_normalize_axis('sum', axis, x.ndim, x.shape), keepdims)(x)


class Max(Function):
    def __init__(self, axis: tuple | None, keepdims: bool) -> None:
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        return x.max(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        x, = self.inputs
        y = self.outputs[0]()
        shape = utils.max_backward_shape(x, self.axis)
        # Every element equal to the maximum gets the gradient (ties included), as the book.
        mask = x.data == y.data.reshape(shape)
        gy = broadcast_to(reshape(gy, shape), x.shape)
        return gy * mask.astype(gy.dtype)


class Min(Max):
    def forward(self, x):
        return x.min(axis=self.axis, keepdims=self.keepdims)


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """Maximum over ``axis``; the gradient goes to every element equal to it."""
    x = as_variable(x)
    return Max(_normalize_axis('max', axis, x.ndim, x.shape), keepdims)(x)


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """Minimum over ``axis``; the gradient goes to every element equal to it."""
    x = as_variable(x)
    return Min(_normalize_axis('min', axis, x.ndim, x.shape), keepdims)(x)


# =============================================================================
# Linear algebra
# =============================================================================
def _swap_last_axes(x: Variable) -> Variable:
    """The matrix transpose of each matrix in a batch: (..., m, n) -> (..., n, m)."""
    if x.ndim == 2:
        return transpose(x)
    axes = list(range(x.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return transpose(x, axes)


class MatMul(Function):
    """x (..., m, k) @ W (..., k, n) -> (..., m, n), batch axes broadcast."""

    def forward(self, x, W):
        return x @ W

    def backward(self, gy):
        x, W = self.inputs
        gx = sum_to(matmul(gy, _swap_last_axes(W)), x.shape)
        gW = sum_to(matmul(_swap_last_axes(x), gy), W.shape)
        return gx, gW


def matmul(x: Any, W: Any) -> Variable:
    """Matrix product with NumPy's rules: 1-D operands are vectors, N-D are batches of
    matrices whose batch axes broadcast. x: (..., m, k), W: (..., k, n) -> (..., m, n)."""
    x, W = as_variable(x), as_variable(W)
    if x.ndim == 0 or W.ndim == 0:
        raise ValueError(f'matmul: operands must have at least 1 axis, got shapes '
                         f'{x.shape} and {W.shape}')
    k_x = x.shape[-1]
    k_W = W.shape[-2] if W.ndim >= 2 else W.shape[0]
    if k_x != k_W:
        raise ValueError(f'matmul: x has {k_x} columns but W has {k_W} rows '
                         f'(x.shape={x.shape}, W.shape={W.shape})')
    try:
        np.broadcast_shapes(x.shape[:-2], W.shape[:-2])
    except ValueError:
        raise ValueError(f'matmul: batch axes do not broadcast (x.shape={x.shape}, '
                         f'W.shape={W.shape})') from None
    if x.ndim == 1 and W.ndim == 1:
        return sum(x * W)
    if x.ndim == 1:
        y = MatMul()(reshape(x, (1, k_x)), W)
        return reshape(y, y.shape[:-2] + y.shape[-1:])
    if W.ndim == 1:
        y = MatMul()(x, reshape(W, (k_W, 1)))
        return reshape(y, y.shape[:-1])
    return MatMul()(x, W)
