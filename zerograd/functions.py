"""Differentiable functions: ``import zerograd.functions as F``.

Each op is a Function subclass (``forward`` on arrays, ``backward`` on Variables with the
functions of this module, so every backward can be differentiated again) and a lowercase
wrapper that checks its arguments and takes shortcuts.

The dtype rule of functions that compute in floating point (``exp, log, sin, cos, tanh,
sqrt, sigmoid, leaky_relu, softmax, log_softmax``, the losses, ``dropout``, ``batch_norm``,
``lstm_cell``): a bool or integer input is computed in float64, NumPy's default float (what
the book's code got for its int64 arrays, e.g. step 37's ``F.sin`` of ``[[1, 2, 3], [4, 5,
6]]``; PyTorch does the same with its default float), never in float16; the input's
gradient is float64 too. Float inputs keep their dtype (float32 stays float32). Complex
inputs are accepted by the elementwise ones; softmax, the losses and the normalisations
need real numbers (TypeError). Functions that stay exact on integers (``+``, ``*``,
``relu``, ``abs``, ``square``, ``sum``, ``matmul``, ...) keep the input's dtype, as NumPy
does. The rule lives in one place, ``_floating``.
"""
from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from zerograd import utils
from zerograd.core import (Config, Function, Variable, as_array, as_variable,  # noqa: F401
                           add, sub, rsub, mul, div, rdiv, neg, pow)
from zerograd.core import _NUMERIC_KINDS, _no_data, _not_numeric
from zerograd.cuda import get_array_module, scatter_add


def _data(x: Any) -> Any:
    """The array inside x (a Variable or an array)."""
    return x.data if isinstance(x, Variable) else x


# =============================================================================
# The dtype rule of the float functions (see the module docstring)
# =============================================================================
class _ToFloat(Function):
    """y = x (bool or integer) as float64; the gradient passes through as it is, so the
    input gets a float gradient (as the engine gives every integer input)."""

    def forward(self, x):
        return x.astype(np.float64)

    def backward(self, gy):
        return gy


def _floating(op: str, x: Any, real: bool = False) -> Variable:
    """x as a Variable that a float function computes on: float (and complex unless
    ``real``) as it is, bool and integer as float64; anything else a TypeError naming op."""
    if not isinstance(x, Variable):
        data = as_array(x)
        dtype = getattr(data, 'dtype', None)
        if isinstance(dtype, np.dtype) and dtype.kind not in _NUMERIC_KINDS:
            raise _not_numeric(op, dtype, 'x')
        x = Variable(data)
    elif x.data is None:
        raise _no_data(op)
    kind = x.data.dtype.kind
    if kind == 'f' or (kind == 'c' and not real):
        return x
    if kind in 'biu':
        return _ToFloat()(x)
    raise TypeError(f'{op}: x must hold real numbers, got {x.data.dtype} (take the real part '
                    'or the magnitude first)')


# =============================================================================
# Elementwise
# =============================================================================
class Sin(Function):
    """y = sin(x); gx = gy cos(x)."""

    def forward(self, x):
        return get_array_module(x).sin(x)

    def backward(self, gy):
        x, = self.inputs
        return gy * cos(x)


def sin(x: Any) -> Variable:
    """Sine, elementwise. x: any shape (bool/int: computed in float64, the module's rule)."""
    return Sin()(_floating('sin', x))


class Cos(Function):
    """y = cos(x); gx = -gy sin(x)."""

    def forward(self, x):
        return get_array_module(x).cos(x)

    def backward(self, gy):
        x, = self.inputs
        return gy * -sin(x)


def cos(x: Any) -> Variable:
    """Cosine, elementwise. x: any shape (bool/int: computed in float64)."""
    return Cos()(_floating('cos', x))


class Tanh(Function):
    """y = tanh(x); gx = gy (1 - y ** 2)."""

    def forward(self, x):
        return get_array_module(x).tanh(x)

    def backward(self, gy):
        y = self.outputs[0]()  # weakref: the output is alive during backward
        return TanhGrad()(y, gy)


class TanhGrad(Function):
    """Tanh's gradient as one op, gx = gy (1 - y ** 2), instead of three (one Function
    call instead of three per tanh in every backward, which an LSTM step does twice).
    Differentiable again: d/dy = -2 gy y, d/dgy = 1 - y ** 2."""

    def forward(self, y, gy):
        return gy * (1 - y * y)

    def backward(self, ggx):
        y, gy = self.inputs
        return ggx * gy * (-2 * y), ggx * (1 - y * y)


def tanh(x: Any) -> Variable:
    """Hyperbolic tangent, elementwise. x: any shape (bool/int: computed in float64)."""
    return Tanh()(_floating('tanh', x))


class Exp(Function):
    """y = exp(x); gx = gy y."""

    def forward(self, x):
        return get_array_module(x).exp(x)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy * y


def exp(x: Any) -> Variable:
    """e ** x, elementwise. x: any shape (bool/int: computed in float64)."""
    return Exp()(_floating('exp', x))


class Log(Function):
    """y = log(x); gx = gy / x."""

    def forward(self, x):
        return get_array_module(x).log(x)

    def backward(self, gy):
        x, = self.inputs
        return gy / x


def log(x: Any) -> Variable:
    """Natural logarithm, elementwise. x: any shape, positive (bool/int: computed in
    float64)."""
    return Log()(_floating('log', x))


class Square(Function):
    """y = x ** 2; gx = 2 x gy."""

    def forward(self, x):
        return x * x

    def backward(self, gy):
        x, = self.inputs
        return gy * x * 2


def square(x: Any) -> Variable:
    """x ** 2, elementwise. x: any shape."""
    return Square()(x)


class Sqrt(Function):
    """y = sqrt(x); gx = gy / (2 y)."""

    def forward(self, x):
        return get_array_module(x).sqrt(x)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy / (y * 2)


def sqrt(x: Any) -> Variable:
    """Square root, elementwise. x: any shape, non-negative (the gradient at 0 is inf;
    bool/int: computed in float64)."""
    return Sqrt()(_floating('sqrt', x))


class Abs(Function):
    """y = |x|; gx = gy sign(x)."""

    def forward(self, x):
        return get_array_module(x).abs(x)

    def backward(self, gy):
        x, = self.inputs
        xp = get_array_module(x.data)
        return gy * xp.sign(x.data)  # a constant mask: the second derivative is 0


def abs(x: Any) -> Variable:
    """|x|, elementwise. x: any shape (the gradient at 0 is 0)."""
    return Abs()(x)


class Cast(Function):
    """y = x in another dtype; the gradient goes back in x's dtype."""

    def __init__(self, dtype: Any) -> None:
        self.dtype = dtype

    def forward(self, x):
        self.x_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return cast(gy, self.x_dtype)


def cast(x: Any, dtype: Any) -> Variable:
    """x converted to ``dtype`` (a numeric one: bool, int, uint, float, complex); the
    gradient is converted back to x's dtype."""
    x = as_variable(x)
    dtype = np.dtype(dtype)
    if dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(f'cast: dtype must be numeric (bool, int, uint, float or complex), '
                        f'got {dtype}')
    if x.dtype == dtype:
        return x
    return Cast(dtype)(x)


# =============================================================================
# Shape
# =============================================================================
class Reshape(Function):
    """y = x with a new shape; gx = gy reshaped back."""

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
    """y = x with permuted axes; gx = gy with the inverse permutation."""

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


def _as_shape(shape: Any) -> tuple:
    """An int or a sequence of ints as a shape tuple."""
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(n) for n in shape)


class BroadcastTo(Function):
    """y = x broadcast to a shape; gx = sum_to(gy, x.shape)."""

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
    shape = _as_shape(shape)
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
    """y = x summed to a shape; gx = broadcast_to(gy, x.shape)."""

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
    shape = _as_shape(shape)
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
    """y = x[slices]; gx scatters gy back (GetItemGrad)."""

    def __init__(self, slices: Any) -> None:
        self.slices = slices

    def forward(self, x):
        try:
            return x[self.slices]
        except IndexError as error:
            raise IndexError(f'get_item: {error} (x.shape={x.shape})') from None

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
        else:
            scatter_add(gx, self.slices, gy)  # np.add.at, or cupyx.scatter_add on a GPU
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
    if x.ndim == 0:
        raise ValueError('flatten: x must have at least one axis, got a 0-d array')
    rest = 1
    for n in x.shape[1:]:
        rest *= n
    return reshape(x, (x.shape[0], rest))


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
    """y = sum of x over axes; gx = gy broadcast back to x's shape."""

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
    """y = max of x over axes; gx goes to every element equal to the maximum."""

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
    """y = min of x over axes; gx goes to every element equal to the minimum."""

    def forward(self, x):
        return x.min(axis=self.axis, keepdims=self.keepdims)


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """Maximum over ``axis``; the gradient goes to every element equal to it."""
    x = as_variable(x)
    if x.size == 0:
        raise ValueError(f'max: x of shape {x.shape} is empty: it has no maximum')
    return Max(_normalize_axis('max', axis, x.ndim, x.shape), keepdims)(x)


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """Minimum over ``axis``; the gradient goes to every element equal to it."""
    x = as_variable(x)
    if x.size == 0:
        raise ValueError(f'min: x of shape {x.shape} is empty: it has no minimum')
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


def _matmul_2d(a: Any, b: Any) -> Any:
    """a @ b; for k = 1 (an outer product, as in a batch-1 weight gradient) the broadcast
    product a * b, which gives the same numbers (one product each) several times faster
    (0.2 ms against 0.9 ms for (784, 1) @ (1, 1000) in NumPy 2.4 with OpenBLAS)."""
    if a.ndim == 2 and b.ndim == 2 and a.shape[1] == 1 and b.shape[0] == 1:
        return a * b
    return a @ b


class MatMul(Function):
    """x (..., m, k) @ W (..., k, n) -> (..., m, n), batch axes broadcast."""

    def forward(self, x, W):
        return _matmul_2d(x, W)

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
    if x.ndim > 2 or W.ndim > 2:  # batches of matrices (checked only then: it is slow)
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


def average(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """Mean over ``axis`` (None: all). Alias ``mean``."""
    x = as_variable(x)
    y = sum(x, axis, keepdims)
    count = x.data.size // builtins.max(y.data.size, 1)  # elements averaged per output
    if count == 0:
        raise ValueError(f'average: nothing to average over axis {axis} of x of shape '
                         f'{x.shape}')
    return y / count


mean = average


# =============================================================================
# Activations
# =============================================================================
class Sigmoid(Function):
    """y = 1 / (1 + exp(-x)); gx = gy y (1 - y)."""

    def forward(self, x):
        return _sigmoid_array(x)

    def backward(self, gy):
        y = self.outputs[0]()
        return SigmoidGrad()(y, gy)


def _sigmoid_array(x: Any) -> Any:
    """sigmoid on an array: 0.5 tanh(0.5 x) + 0.5 equals 1 / (1 + exp(-x)) and never
    overflows."""
    y = get_array_module(x).tanh(x * 0.5)
    y *= 0.5
    y += 0.5
    return y


class SigmoidGrad(Function):
    """Sigmoid's gradient as one op, gx = gy y (1 - y), instead of three.
    Differentiable again: d/dy = gy (1 - 2 y), d/dgy = y (1 - y)."""

    def forward(self, y, gy):
        return gy * y * (1 - y)

    def backward(self, ggx):
        y, gy = self.inputs
        return ggx * gy * (1 - 2 * y), ggx * y * (1 - y)


def sigmoid(x: Any) -> Variable:
    """1 / (1 + exp(-x)), elementwise, without overflow warnings. x: any shape (bool/int:
    computed in float64)."""
    return Sigmoid()(_floating('sigmoid', x))


def sigmoid_simple(x: Any) -> Variable:
    """The book's composed sigmoid, 1 / (1 + exp(-x)): the oracle of ``sigmoid``
    (bool/int: computed in float64, before -x could wrap around)."""
    x = _floating('sigmoid_simple', x)
    return 1 / (1 + exp(-x))


class ReLU(Function):
    """y = max(x, 0); gx = gy where x > 0."""

    def forward(self, x):
        return get_array_module(x).maximum(x, 0)

    def backward(self, gy):
        x, = self.inputs
        return gy * (x.data > 0)  # a constant mask


def relu(x: Any) -> Variable:
    """max(x, 0), elementwise. x: any shape."""
    return ReLU()(x)


class LeakyReLU(Function):
    """y = x if x > 0 else slope x."""

    def __init__(self, slope: float) -> None:
        self.slope = slope

    def forward(self, x):
        xp = get_array_module(x)
        return xp.where(x > 0, x, x * x.dtype.type(self.slope))

    def backward(self, gy):
        x, = self.inputs
        xp = get_array_module(x.data)
        mask = xp.where(x.data > 0, 1, self.slope).astype(gy.dtype)
        return gy * mask


def leaky_relu(x: Any, slope: float = 0.2) -> Variable:
    """x where x > 0, else slope x. x: any shape (bool/int: computed in float64)."""
    return LeakyReLU(slope)(_floating('leaky_relu', x))


class Clip(Function):
    """y = clip(x, x_min, x_max); gx = gy where x is inside."""

    def __init__(self, x_min: float, x_max: float) -> None:
        self.x_min = x_min
        self.x_max = x_max

    def forward(self, x):
        xp = get_array_module(x)
        if x.dtype.kind == 'f':  # bounds in x's dtype: a NumPy float64 bound keeps float32
            return xp.clip(x, x.dtype.type(self.x_min), x.dtype.type(self.x_max))
        return xp.clip(x, self.x_min, self.x_max)

    def backward(self, gy):
        x, = self.inputs
        mask = (x.data >= self.x_min) & (x.data <= self.x_max)
        return gy * mask


def clip(x: Any, x_min: float, x_max: float) -> Variable:
    """x limited to [x_min, x_max]; the gradient is 0 outside. x: any shape."""
    if x_min > x_max:
        raise ValueError(f'clip: x_min {x_min} is greater than x_max {x_max}')
    return Clip(x_min, x_max)(x)


# =============================================================================
# Linear layers
# =============================================================================
class Linear(Function):
    """y = x W + b for x (N, in), W (in, out), b (out,) or None.

    ``needs_gx`` is False when x is input data (a plain array): its gradient is never
    wanted, which saves one matrix product per step (a seventh of an MLP's work).
    """

    def __init__(self, needs_gx: bool = True) -> None:
        self.needs_gx = needs_gx

    def forward(self, x, W, b=None):
        y = _matmul_2d(x, W)
        if b is not None:
            y += b
        return y

    def backward(self, gy):
        x, W = self.inputs[:2]
        gx = LinearGradX()(gy, W) if self.needs_gx else None
        gW = LinearGradW()(x, gy)
        if len(self.inputs) == 2:
            return gx, gW
        gb = sum(gy, axis=0)
        return gx, gW, gb


# Linear's two gradients as one op each, instead of a transpose and a matmul each (two
# Function calls fewer per Linear in every backward). Both are bilinear, so their own
# gradients are matrix products again.
class LinearGradX(Function):
    """gx = gy W.T: gy (N, out), W (in, out) -> (N, in)."""

    def forward(self, gy, W):
        return gy @ W.T

    def backward(self, ggx):
        gy, W = self.inputs
        return LinearGradX()(ggx, W.T), LinearGradW()(ggx, gy)


class LinearGradW(Function):
    """gW = x.T gy: x (N, in), gy (N, out) -> (in, out)."""

    def forward(self, x, gy):
        return _matmul_2d(x.T, gy)

    def backward(self, ggW):
        x, gy = self.inputs
        return LinearGradX()(gy, ggW), matmul(x, ggW)


def _check_linear(op: str, x: Any, W: Any, b: Any) -> None:
    if x.ndim != 2 or W.ndim != 2:
        raise ValueError(f'{op}: x and W must be 2-D, got x.shape={x.shape}, W.shape={W.shape}')
    if x.shape[1] != W.shape[0]:
        raise ValueError(f'{op}: input has {x.shape[1]} features but W expects {W.shape[0]} '
                         f'(x.shape={x.shape}, W.shape={W.shape})')
    if b is not None and b.shape != (W.shape[1],):
        raise ValueError(f'{op}: b must have shape ({W.shape[1]},), got {b.shape}')


def linear(x: Any, W: Any, b: Any = None) -> Variable:
    """x W + b. x: (N, in), W: (in, out), b: (out,) or None -> (N, out)."""
    _check_linear('linear', _shaped(x), _shaped(W), None if b is None else _shaped(b))
    needs_gx = isinstance(x, Variable)
    if b is None:
        return Linear(needs_gx)(x, W)
    return Linear(needs_gx)(x, W, b)


def _shaped(x: Any) -> Any:
    return x if isinstance(x, Variable) or hasattr(x, 'shape') else np.asarray(x)


class LinearPair(Function):
    """y = x W + b + h U as one op: x (N, in), W (in, out), b (out,), h (N, H), U (H, out)
    -> (N, out). An RNN gate's x2*(x) + h2*(h) is three ops composed (two Linears and an
    add) and this one, with the same numbers to the bit (the same products and sums in the
    same order). gx is skipped when x is input data, as in Linear."""

    def __init__(self, needs_gx: bool = True) -> None:
        self.needs_gx = needs_gx

    def forward(self, x, W, b, h, U):
        y = _matmul_2d(x, W)
        y += b
        return y + _matmul_2d(h, U)

    def backward(self, gy):
        x, W, b, h, U = self.inputs
        gx = LinearGradX()(gy, W) if self.needs_gx else None
        return (gx, LinearGradW()(x, gy), sum(gy, axis=0),
                LinearGradX()(gy, U), LinearGradW()(h, gy))


def linear_pair(x: Any, W: Any, b: Any, h: Any, U: Any) -> Variable:
    """x W + b + h U as one op (``LinearPair``): ``linear(x, W, b) + linear(h, U)``, as an
    RNN's ``x2h(x) + h2h(h)``. x (N, in), W (in, out), b (out,), h (N, H), U (H, out)
    -> (N, out)."""
    x_, h_ = _shaped(x), _shaped(h)
    _check_linear('linear_pair', x_, _shaped(W), _shaped(b))
    _check_linear('linear_pair', h_, _shaped(U), None)
    if len(x_) != len(h_) or W.shape[1] != U.shape[1]:
        raise ValueError(f'linear_pair: x W and h U must have the same shape, got x.shape='
                         f'{x_.shape}, W.shape={W.shape}, h.shape={h_.shape}, U.shape={U.shape}')
    return LinearPair(isinstance(x, Variable))(x, W, b, h, U)


def linear_simple(x: Any, W: Any, b: Any = None) -> Variable:
    """The book's composed linear: matmul, then add b."""
    _check_linear('linear_simple', _shaped(x), _shaped(W), None if b is None else _shaped(b))
    t = matmul(x, W)
    if b is None:
        return t
    return t + b


# =============================================================================
# Softmax and losses
# =============================================================================
def _check_batch(op: str, x: Variable) -> None:
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f'{op}: x must hold a non-empty batch, got shape {x.shape}')

class Softmax(Function):
    """y = softmax(x) along an axis; gx = y gy - y sum(y gy)."""

    def __init__(self, axis: int = 1) -> None:
        self.axis = axis

    def forward(self, x):
        xp = get_array_module(x)
        y = x - x.max(axis=self.axis, keepdims=True)
        xp.exp(y, out=y)
        y /= y.sum(axis=self.axis, keepdims=True)
        return y

    def backward(self, gy):
        y = self.outputs[0]()
        gx = y * gy
        return gx - y * sum(gx, axis=self.axis, keepdims=True)


def _check_axis(op: str, x: Variable, axis: int) -> int:
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f'{op}: axis {axis} is out of range for x of shape {x.shape}')
    return axis % x.ndim


def softmax(x: Any, axis: int = 1) -> Variable:
    """exp(x) / sum(exp(x)) along ``axis``, computed without overflow. x: real (bool/int:
    computed in float64)."""
    x = _floating('softmax', x, real=True)
    return Softmax(_check_axis('softmax', x, axis))(x)


def softmax_simple(x: Any, axis: int = 1) -> Variable:
    """The book's composed softmax: the oracle of ``softmax`` (bool/int: float64)."""
    x = _floating('softmax_simple', x, real=True)
    y = exp(x)
    sum_y = sum(y, axis=axis, keepdims=True)
    return y / sum_y


def _log_softmax(x: Any, axis: int) -> Any:
    """log softmax of the array x as (x - max) - log(sum(exp(x - max))): subtracting the
    maximum first keeps float32 exact for large scores (x - logsumexp(x) would round the
    log-sum-exp to the spacing of numbers near the maximum)."""
    xp = get_array_module(x)
    y = x - x.max(axis=axis, keepdims=True)
    y -= xp.log(xp.exp(y).sum(axis=axis, keepdims=True))
    return y


class LogSoftmax(Function):
    """y = log softmax(x) along an axis; gx = gy - softmax(x) sum(gy)."""

    def __init__(self, axis: int = 1) -> None:
        self.axis = axis

    def forward(self, x):
        return _log_softmax(x, self.axis)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy - exp(y) * sum(gy, axis=self.axis, keepdims=True)


def log_softmax(x: Any, axis: int = 1) -> Variable:
    """log(softmax(x)) along ``axis``, by log-sum-exp (no log(0)). x: real (bool/int:
    computed in float64)."""
    x = _floating('log_softmax', x, real=True)
    return LogSoftmax(_check_axis('log_softmax', x, axis))(x)


def _same_shape(op: str, x0: Variable, x1: Variable) -> Variable:
    """x1, with x0's shape. Shapes that differ only by length-1 axes with the same elements
    (the book's (1, 1) prediction against a (1,) target) are aligned; shapes that would
    broadcast to more elements, like (N,) against (N, 1), are an error (NumPy would
    silently compare every pair)."""
    if x0.shape == x1.shape:
        return x1
    try:
        grows = builtins.max(x0.size, x1.size) != \
            int(np.prod(np.broadcast_shapes(x0.shape, x1.shape)))
    except ValueError:
        grows = True
    if x0.size == x1.size and not grows:
        return reshape(x1, x0.shape)
    raise ValueError(f'{op}: x0 and x1 must have the same shape, got {x0.shape} and '
                     f'{x1.shape} (reshape one so they match, e.g. t.reshape(y.shape))')


class MeanSquaredError(Function):
    """y = sum((x0 - x1) ** 2) / len(x0)."""

    def forward(self, x0, x1):
        diff = x0 - x1
        return (diff * diff).sum() / diff.dtype.type(len(diff))

    def backward(self, gy):
        x0, x1 = self.inputs
        diff = x0 - x1
        gx0 = gy * diff * (2.0 / len(diff))
        return gx0, -gx0


def mean_squared_error(x0: Any, x1: Any) -> Variable:
    """sum((x0 - x1) ** 2) / len(x0): shapes must match (no silent broadcasting)."""
    x0, x1 = as_variable(x0), as_variable(x1)
    x1 = _same_shape('mean_squared_error', x0, x1)
    _check_batch('mean_squared_error', x0)
    return MeanSquaredError()(x0, x1)


def mean_squared_error_simple(x0: Any, x1: Any) -> Variable:
    """The book's composed mean squared error."""
    x0, x1 = as_variable(x0), as_variable(x1)
    x1 = _same_shape('mean_squared_error_simple', x0, x1)
    _check_batch('mean_squared_error_simple', x0)
    diff = x0 - x1
    return sum(diff ** 2) / len(diff)


def _check_labels(op: str, x: Variable, t: Any) -> np.ndarray:
    """Integer class ids of shape (N,) in [0, C) for scores x of shape (N, C)."""
    if x.ndim != 2:
        raise ValueError(f'{op}: x must be scores of shape (N, C), got {x.shape}')
    _check_batch(op, x)
    return _check_class_ids(op, t, x.shape[0], x.shape[1])


def _check_class_ids(op: str, t: Any, N: int, C: int) -> np.ndarray:
    """t (array or Variable) as an array of N integer class ids in [0, C): the one check
    of the losses and ``accuracy``."""
    t = t.data if isinstance(t, Variable) else t
    if not hasattr(t, 'dtype') or t.dtype.kind not in 'iu':
        kind = getattr(t, 'dtype', type(t).__name__)
        raise ValueError(f'{op}: t must hold integer class ids of shape (N,), got {kind} '
                         f'{getattr(t, "shape", "")}')
    if t.shape != (N,):
        raise ValueError(f'{op}: t must hold integer class ids of shape (N,) = '
                         f'({N},), got {t.dtype} {t.shape}')
    if t.size and (int(t.min()) < 0 or int(t.max()) >= C):
        raise ValueError(f'{op}: class ids must be in [0, {C}), got values from '
                         f'{int(t.min())} to {int(t.max())}')
    return t


class SoftmaxCrossEntropy(Function):
    """y = mean over the batch of -log softmax(x)[t]; gx = (softmax(x) - onehot(t)) gy / N."""

    def forward(self, x, t):
        N = x.shape[0]
        xp = get_array_module(x)
        log_p = _log_softmax(x, axis=1)[xp.arange(N), t]
        return -log_p.sum() / x.dtype.type(N)

    def backward(self, gy):
        x, t = self.inputs
        N, C = x.shape
        xp = get_array_module(x.data)
        # The one-hot labels in x's dtype: subtracting an int array would give float64.
        t_onehot = xp.eye(C, dtype=x.dtype)[t.data]
        y = softmax(x)
        return (y - t_onehot) * (gy / N), None


def softmax_cross_entropy(x: Any, t: Any) -> Variable:
    """Mean over the batch of -log softmax(x)[t]. x: (N, C) scores, t: (N,) int ids."""
    x = _floating('softmax_cross_entropy', x, real=True)
    t = _check_labels('softmax_cross_entropy', x, t)
    return SoftmaxCrossEntropy()(x, t)


def softmax_cross_entropy_simple(x: Any, t: Any) -> Variable:
    """The book's composed softmax cross-entropy (softmax, clip, log, pick, mean)."""
    x = _floating('softmax_cross_entropy_simple', x, real=True)
    t = _check_labels('softmax_cross_entropy_simple', x, t)
    N = x.shape[0]
    p = softmax(x)
    p = clip(p, 1e-15, 1.0)
    log_p = log(p)
    tlog_p = log_p[get_array_module(x.data).arange(N), t]
    return -1 * sum(tlog_p) / N


def _binary_labels(op: str, x: Variable, t: Any) -> Any:
    """Targets t in [0, 1] of x's shape (or (N,) for x (N, 1)), as an array in x's dtype."""
    t = t.data if isinstance(t, Variable) else t
    if not hasattr(t, 'shape'):  # a list or a scalar: an array on x's device
        t = get_array_module(x.data).asarray(t)
    if t.dtype.kind not in 'biuf':
        raise TypeError(f'{op}: t must hold real targets in [0, 1], got {t.dtype}')
    if t.shape != x.shape:
        if x.ndim == 2 and x.shape[1] == 1 and t.shape == (x.shape[0],):
            t = t.reshape(x.shape)  # (N,) labels for (N, 1) scores, as the book allows
        else:
            raise ValueError(f'{op}: t must have the shape of x {x.shape} (or (N,) for '
                             f'scores of shape (N, 1)), got {t.shape}')
    _check_unit_interval(op, 't', t, 'targets')
    return t.astype(x.dtype)


def _check_unit_interval(op: str, name: str, a: Any, what: str) -> None:
    """Every value of the array a in [0, 1] (NaN is not), else ValueError naming op, the
    argument and the offending minimum and maximum."""
    if a.size == 0:
        return
    low, high = float(a.min()), float(a.max())  # NaN propagates into both
    if not (0.0 <= low and high <= 1.0):
        raise ValueError(f'{op}: {name} must hold {what} in [0, 1], got values from {low} '
                         f'to {high}')


class SigmoidCrossEntropy(Function):
    """y = sum(log(1 + exp(x)) - t x) / len(x); gx = (sigmoid(x) - t) gy / len(x)."""

    def forward(self, x, t):
        xp = get_array_module(x)
        # log(1 + exp(x)) = max(x, 0) + log(1 + exp(-|x|)), which never overflows.
        loss = xp.maximum(x, 0) - x * t + xp.log1p(xp.exp(-xp.abs(x)))
        return loss.sum() / x.dtype.type(len(x))

    def backward(self, gy):
        x, t = self.inputs
        return (sigmoid(x) - t.data) * (gy / len(x)), None


def sigmoid_cross_entropy(x: Any, t: Any) -> Variable:
    """Binary cross-entropy of sigmoid(x) against 0/1 labels t, summed and divided by
    len(x) (the book's normalisation), computed from the scores x without overflow.
    x: (N, ...) real scores (bool/int: float64); t: targets in [0, 1] of x's shape, or (N,)
    for x of shape (N, 1)."""
    x = _floating('sigmoid_cross_entropy', x, real=True)
    _check_batch('sigmoid_cross_entropy', x)
    t = _binary_labels('sigmoid_cross_entropy', x, t)
    return SigmoidCrossEntropy()(x, t)


def binary_cross_entropy(p: Any, t: Any) -> Variable:
    """-(t log p + (1 - t) log(1 - p)), summed and divided by len(p), for probabilities p;
    p is clipped away from 0 and 1 (by the dtype's resolution) so no log(0) occurs.
    p: (N, ...) probabilities in [0, 1] (bool/int: float64); t: targets in [0, 1] of p's
    shape, or (N,) for p of shape (N, 1)."""
    p = _floating('binary_cross_entropy', p, real=True)
    _check_unit_interval('binary_cross_entropy', 'p', p.data, 'probabilities')
    t = _binary_labels('binary_cross_entropy', p, t)
    _check_batch('binary_cross_entropy', p)
    eps = builtins.max(float(np.finfo(p.dtype).eps), 1e-15)  # 1 - eps must not round to 1
    p = clip(p, eps, 1 - eps)
    tlog_p = t * log(p) + (1 - t) * log(1 - p)
    return -1 * sum(tlog_p) / len(p)


def accuracy(y: Any, t: Any) -> Variable:
    """Fraction of rows of y (N, C) whose largest score is at the label t (N,), integer
    class ids in [0, C) as ``softmax_cross_entropy`` requires.
    A Variable with no creator (not differentiable)."""
    y = y.data if isinstance(y, Variable) else y
    t = t.data if isinstance(t, Variable) else t
    if y.ndim != 2 or t.shape != (len(y),) or len(y) == 0:
        raise ValueError(f'accuracy: y must be scores of shape (N, C) with N > 0 and t labels '
                         f'of shape (N,), got {y.shape} and {t.shape}')
    t = _check_class_ids('accuracy', t, y.shape[0], y.shape[1])  # as the losses check t
    pred = y.argmax(axis=1)
    result = (pred == t).mean()
    return Variable(as_array(result))


# =============================================================================
# The LSTM cell
# =============================================================================
class LSTMState(Function):
    """The LSTM cell update as one op: c = sigmoid(af) c_prev + sigmoid(ai) tanh(au),
    from c_prev and the pre-activations of the forget and input gates and of the update,
    all (N, H). Composed of sigmoid, tanh, * and +, it is 6 ops forward and about 11
    backward.

    The backward computes on arrays with the gates kept from forward; when the backward
    is recorded (``create_graph=True``) it runs the same formulas as framework ops, so it
    can be differentiated again (the fast path is tested against that one, to the bit).
    """

    def forward(self, c_prev, af, ai, au):
        f, i = _sigmoid_array(af), _sigmoid_array(ai)
        u = get_array_module(au).tanh(au)
        self.gates = (f, i, u)
        return f * c_prev + i * u

    def backward(self, gc):
        if Config.enable_backprop:  # recorded: the composed ops, differentiable again
            c_prev, af, ai, au = self.inputs
            return self._grads(c_prev, sigmoid(af), sigmoid(ai), tanh(au), gc)
        f, i, u = self.gates
        grads = self._grads(self.inputs[0].data, f, i, u, gc.data)
        return tuple(Variable(as_array(g)) for g in grads)  # 0-d: NumPy gives scalars

    @staticmethod
    def _grads(c_prev, f, i, u, gc):
        """(gc_prev, gaf, gai, gau) by the chain rule; on arrays or Variables alike."""
        return (gc * f,
                gc * c_prev * f * (1 - f),
                gc * u * i * (1 - i),
                gc * i * (1 - u * u))


class LSTMOutput(Function):
    """The LSTM output as one op: h = sigmoid(ao) tanh(c), c and ao (N, H); 3 ops
    forward and about 7 backward when composed. Backward as in ``LSTMState``."""

    def forward(self, c, ao):
        o = _sigmoid_array(ao)
        tc = get_array_module(c).tanh(c)
        self.gates = (o, tc)
        return o * tc

    def backward(self, gh):
        if Config.enable_backprop:
            c, ao = self.inputs
            return self._grads(sigmoid(ao), tanh(c), gh)
        o, tc = self.gates
        return tuple(Variable(as_array(g)) for g in self._grads(o, tc, gh.data))

    @staticmethod
    def _grads(o, tc, gh):
        """(gc, gao); on arrays or Variables alike."""
        return gh * o * (1 - tc * tc), gh * tc * o * (1 - o)


def lstm_cell(c_prev: Any, af: Any, ai: Any, ao: Any, au: Any) -> tuple[Variable, Variable]:
    """The LSTM update (c, h) from the previous cell c_prev and the pre-activations of
    the forget, input and output gates and of the update (af, ai, ao, au), all (N, H):
    c = sigmoid(af) c_prev + sigmoid(ai) tanh(au), h = sigmoid(ao) tanh(c).
    Two ops (``LSTMState``, ``LSTMOutput``) instead of nine; c is h's input, as when
    composed, so ``unchain_backward`` cuts the same graph. ``layers.LSTM`` uses it from
    the second step on."""
    args = [_floating('lstm_cell', a, real=True) for a in (c_prev, af, ai, ao, au)]
    for name, a in zip(('c_prev', 'af', 'ai', 'ao', 'au'), args):
        if a.shape != args[0].shape:
            raise ValueError(f'lstm_cell: {name} must have the shape of c_prev '
                             f'{args[0].shape}, got {a.shape}')
    c_prev, af, ai, ao, au = args
    c = LSTMState()(c_prev, af, ai, au)
    return c, LSTMOutput()(c, ao)


# =============================================================================
# Regularisation and normalisation
# =============================================================================
def dropout(x: Any, dropout_ratio: float = 0.5) -> Variable:
    """Inverted dropout: in training, zero each element with probability dropout_ratio and
    scale the rest by 1 / (1 - ratio); under ``test_mode()`` x unchanged. The mask is drawn
    from NumPy's global generator as the book does (``rand(*x.shape) > ratio``)."""
    if not 0.0 <= dropout_ratio < 1.0:
        raise ValueError(f'dropout: dropout_ratio must be in [0, 1), got {dropout_ratio}')
    x = _floating('dropout', x, real=True)
    if not Config.train:
        return x
    xp = get_array_module(x.data)
    mask = xp.random.rand(*x.shape) > dropout_ratio
    scale = xp.array(1.0 - dropout_ratio).astype(x.dtype)
    return x * mask / scale


def _batch_axes(x: Any) -> tuple:
    return (0,) if x.ndim == 2 else (0, 2, 3)


def _channel_shape(x: Any) -> tuple:
    return (1, -1) if x.ndim == 2 else (1, -1, 1, 1)


class BatchNorm(Function):
    """Batch normalisation over the batch (and spatial) axes of x (N, C) or (N, C, H, W).

    In training it normalises by the batch statistics and updates the running ``mean`` and
    ``var`` arrays in place; under ``test_mode()`` it uses them instead.
    """

    def __init__(self, mean: Any, var: Any, decay: float, eps: float) -> None:
        self.avg_mean = mean
        self.avg_var = var
        self.decay = decay
        self.eps = eps

    def forward(self, x, gamma, beta):
        axes = _batch_axes(x)
        shape = _channel_shape(x)
        xp = get_array_module(x)
        if Config.train:
            mu = x.mean(axis=axes)
            var = x.var(axis=axes)
            m = x.size // gamma.size
            adjust = m / (m - 1.0) if m > 1 else 1.0  # the running variance is unbiased
            self.avg_mean *= self.decay
            self.avg_mean += (1 - self.decay) * mu
            self.avg_var *= self.decay
            self.avg_var += (1 - self.decay) * adjust * var
        else:
            mu = self.avg_mean
            var = self.avg_var
        self.train = Config.train
        inv_std = 1 / xp.sqrt(var + self.eps)
        xhat = (x - mu.reshape(shape)) * inv_std.reshape(shape).astype(x.dtype)
        return (gamma.reshape(shape) * xhat + beta.reshape(shape)).astype(x.dtype)

    def backward(self, gy):
        x, gamma, beta = self.inputs
        axes = _batch_axes(x)
        shape = _channel_shape(x)
        if self.train:
            # Recompute the normalisation with framework functions, so that the
            # gradient can be differentiated again (double backward).
            m = x.size // gamma.size
            mu = sum(x, axis=axes, keepdims=True) / m
            xc = x - mu
            var = sum(xc * xc, axis=axes, keepdims=True) / m
            inv_std = (var + self.eps) ** -0.5
            xhat = xc * inv_std
            gbeta = sum(gy, axis=axes)
            ggamma = sum(xhat * gy, axis=axes)
            gxhat = gy * reshape(gamma, shape)
            gx = inv_std * (gxhat - sum(gxhat, axis=axes, keepdims=True) / m
                            - xhat * sum(gxhat * xhat, axis=axes, keepdims=True) / m)
        else:
            xp = get_array_module(x.data)
            inv_std = (1 / xp.sqrt(self.avg_var + self.eps)).astype(x.dtype).reshape(shape)
            xhat = (x - self.avg_mean.reshape(shape).astype(x.dtype)) * inv_std
            gbeta = sum(gy, axis=axes)
            ggamma = sum(xhat * gy, axis=axes)
            gx = gy * reshape(gamma, shape) * inv_std
        return gx, ggamma, gbeta


def batch_norm(x: Any, gamma: Any, beta: Any, mean: Any, var: Any, decay: float = 0.9,
               eps: float = 2e-5) -> Variable:
    """Batch normalisation. x: (N, C) or (N, C, H, W), real (bool/int: float64); gamma,
    beta, mean, var: (C,). ``mean`` and ``var`` are arrays updated in place in training,
    which needs more than one value per channel (N H W > 1), as in PyTorch."""
    x = _floating('batch_norm', x, real=True)
    _check_batch_norm_x('batch_norm', x)
    C = x.shape[1]
    for name, value in (('gamma', gamma), ('beta', beta), ('mean', mean), ('var', var)):
        if _data(value).shape != (C,):
            raise ValueError(f'batch_norm: {name} must have shape ({C},) for x of shape '
                             f'{x.shape}, got {_data(value).shape}')
    return BatchNorm(_data(mean), _data(var), decay, eps)(x, gamma, beta)


batch_nrom = batch_norm  # the book's spelling


def _check_batch_norm_x(op: str, x: Any) -> None:
    """x (N, C) or (N, C, H, W), non-empty, and in training more than one value per channel:
    the variance of one value is 0, so the output would be all zeros (beta) and the running
    variance would be corrupted. Nothing is changed before this check."""
    if x.ndim not in (2, 4):
        raise ValueError(f'{op}: x must be (N, C) or (N, C, H, W), got {x.shape}')
    if x.size == 0:
        raise ValueError(f'{op}: x of shape {x.shape} is empty: no statistics to take')
    if Config.train and x.size // x.shape[1] == 1:
        raise ValueError(f'{op}: expected more than 1 value per channel when training, got '
                         f'x of shape {x.shape} (use a batch of 2 or more, or test_mode())')


def embed_id(x: Any, W: Any) -> Variable:
    """Rows of W (V, D) picked by the integer ids x (an integer ndarray or Variable, any
    shape) -> x.shape + (D,)."""
    ids = _data(x)
    if not hasattr(ids, 'dtype'):
        raise TypeError(f'embed_id: x must be an integer ndarray or Variable of ids, got a '
                        f'Python {type(ids).__name__}; wrap it with np.array(...)')
    if ids.dtype.kind not in 'iu':
        raise TypeError(f'embed_id: x must be an integer ndarray or Variable of ids, got an '
                        f'array of {ids.dtype}')
    V = _data(W).shape[0]
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= V):
        raise ValueError(f'embed_id: ids must be in [0, {V}) for W of shape {_data(W).shape}, '
                         f'got values from {int(ids.min())} to {int(ids.max())}')
    return get_item(W, ids)


# =============================================================================
# Joining
# =============================================================================
class Concat(Function):
    """y = the inputs joined along an axis; each gx is its slice of gy."""

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *xs):
        return get_array_module(xs[0]).concatenate(xs, axis=self.axis)

    def backward(self, gy):
        gxs = []
        start = 0
        for x in self.inputs:
            end = start + x.shape[self.axis]
            index = (slice(None),) * self.axis + (slice(start, end),)
            gxs.append(get_item(gy, index))
            start = end
        return tuple(gxs)


def concat(xs: Any, axis: int = 0) -> Variable:
    """Join Variables or arrays along an existing axis."""
    xs = [as_variable(x) for x in xs]
    if not xs:
        raise ValueError('concat: needs at least one input')
    axis = _check_axis('concat', xs[0], axis)
    for x in xs[1:]:
        if x.ndim != xs[0].ndim or x.shape[:axis] + x.shape[axis + 1:] != \
                xs[0].shape[:axis] + xs[0].shape[axis + 1:]:
            raise ValueError(f'concat: shapes {[v.shape for v in xs]} differ outside axis {axis}')
    return Concat(axis)(*xs)


class Stack(Function):
    """y = the inputs stacked along a new axis; each gx is its slice of gy."""

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *xs):
        return get_array_module(xs[0]).stack(xs, axis=self.axis)

    def backward(self, gy):
        prefix = (slice(None),) * self.axis
        return tuple(get_item(gy, prefix + (i,)) for i in range(len(self.inputs)))


def stack(xs: Any, axis: int = 0) -> Variable:
    """Join Variables or arrays of one shape along a new axis."""
    xs = [as_variable(x) for x in xs]
    if not xs:
        raise ValueError('stack: needs at least one input')
    if any(x.shape != xs[0].shape for x in xs):
        raise ValueError(f'stack: all inputs must have one shape, got {[x.shape for x in xs]}')
    if not -xs[0].ndim - 1 <= axis <= xs[0].ndim:
        raise ValueError(f'stack: axis {axis} is out of range for inputs of shape {xs[0].shape}')
    return Stack(axis % (xs[0].ndim + 1))(*xs)


# =============================================================================
# Convolution and pooling: written in functions_conv, reachable as F.conv2d etc.
# =============================================================================
from zerograd.functions_conv import (  # noqa: E402,F401
    average_pooling, col2im, conv2d, conv2d_simple, deconv2d, im2col, pooling,
    pooling_simple)
