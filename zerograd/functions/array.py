"""Array ops (the book's steps 37-40 and 47): reshape, transpose, broadcast_to and
sum_to (each the other's gradient), get_item and embed_id (indexing, whose gradient
scatters), expand_dims, flatten, concat, stack and cast. None of them computes new
numbers: they move, repeat, pick or convert the elements of x, and their gradients move
the gradient back. Also the small helpers the other modules share (``_data``,
``_shaped``, ``_check_axis``).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from numpy.typing import DTypeLike

from zerograd import utils
from zerograd.core import _NUMERIC_KINDS, Function, Variable, as_variable
from zerograd.cuda import get_array_module, scatter_add
from zerograd.hints import VarOrArray


def _data(x: Any) -> Any:
    """The array inside x (a Variable or an array)."""
    return x.data if isinstance(x, Variable) else x


def _shaped(x: Any) -> Any:
    """x itself if it has a shape (Variable or array), else as a NumPy array."""
    return x if isinstance(x, Variable) or hasattr(x, 'shape') else np.asarray(x)


def _as_shape(shape: Any) -> tuple:
    """An int or a sequence of ints as a shape tuple."""
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(n) for n in shape)


def _check_axis(op: str, x: Variable, axis: int) -> int:
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f'{op}: axis {axis} is out of range for x of shape {x.shape}')
    return axis % x.ndim


# =============================================================================
# Shape
# =============================================================================
class Reshape(Function):
    """y = x with a new shape; gx = gy reshaped back."""
    backward_reads = ()

    def __init__(self, shape: tuple) -> None:
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return reshape(gy, self.x_shape)


def reshape(x: VarOrArray, shape: int | Sequence[int]) -> Variable:
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
    backward_reads = ()

    def __init__(self, axes: tuple | None = None) -> None:
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy):
        if self.axes is None:
            return transpose(gy)
        inverse = tuple(np.argsort(self.axes).tolist())
        return transpose(gy, inverse)


def transpose(x: VarOrArray, axes: Sequence[int] | None = None) -> Variable:
    """Permute the axes of x (axes=None reverses them)."""
    x = as_variable(x)
    if axes is not None:
        axes = tuple(int(a) % x.ndim if -x.ndim <= a < x.ndim else a for a in axes)
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(f'transpose: axes {axes} are not a permutation of the '
                             f'{x.ndim} axes of x of shape {x.shape}')
    return Transpose(axes)(x)


class BroadcastTo(Function):
    """y = x broadcast to a shape; gx = sum_to(gy, x.shape)."""
    backward_reads = ()

    def __init__(self, shape: tuple) -> None:
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return get_array_module(x).broadcast_to(x, self.shape)

    def backward(self, gy):
        return sum_to(gy, self.x_shape)


def broadcast_to(x: VarOrArray, shape: int | Sequence[int]) -> Variable:
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
    backward_reads = ()

    def __init__(self, shape: tuple) -> None:
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return utils.sum_to(x, self.shape)

    def backward(self, gy):
        return broadcast_to(gy, self.x_shape)


def sum_to(x: VarOrArray, shape: int | Sequence[int]) -> Variable:
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


def expand_dims(x: VarOrArray, axis: int) -> Variable:
    """x with a new axis of length 1 at position ``axis``."""
    x = as_variable(x)
    shape = list(x.shape)
    if not -x.ndim - 1 <= axis <= x.ndim:
        raise ValueError(f'expand_dims: axis {axis} is out of range for x of shape {x.shape}')
    shape.insert(axis % (x.ndim + 1), 1)
    return reshape(x, tuple(shape))


def flatten(x: VarOrArray) -> Variable:
    """(N, ...) -> (N, rest): keeps the first axis."""
    x = as_variable(x)
    if x.ndim == 0:
        raise ValueError('flatten: x must have at least one axis, got a 0-d array')
    rest = 1
    for n in x.shape[1:]:
        rest *= n
    return reshape(x, (x.shape[0], rest))


# =============================================================================
# Indexing
# =============================================================================
class GetItem(Function):
    """y = x[slices]; gx scatters gy back (GetItemGrad)."""
    backward_reads = ()

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
    backward_reads = ()

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


def get_item(x: VarOrArray, slices: Any) -> Variable:
    """``x[slices]`` with NumPy indexing (ints, slices, index arrays); differentiable."""
    items = slices if isinstance(slices, tuple) else (slices,)
    for s in items:
        if isinstance(s, Variable):
            raise TypeError('get_item: an index must be an int, a slice or an array, not a '
                            f'Variable (got Variable of shape {s.shape}); use index.data')
    return GetItem(slices)(x)


def embed_id(x: VarOrArray, W: VarOrArray) -> Variable:
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
    # The ids are an input of the op, not a constant inside it, so an exported graph
    # reads them from the model's input (any batch size).
    return EmbedID()(x if isinstance(x, Variable) else Variable(ids), W)


class EmbedID(Function):
    """y = W[ids] for integer ids (any shape) and W (V, D) -> ids.shape + (D,); the ids
    get no gradient, W gets gy scattered back to its rows (GetItemGrad)."""
    backward_reads = ('inputs',)

    def forward(self, ids, W):
        return W[ids]

    def backward(self, gy):
        ids, W = self.inputs
        return None, GetItemGrad(ids.data, W.shape)(gy)


# =============================================================================
# Joining
# =============================================================================
class Concat(Function):
    """y = the inputs joined along an axis; each gx is its slice of gy."""
    backward_reads = ()

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


def concat(xs: Sequence[VarOrArray], axis: int = 0) -> Variable:
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
    backward_reads = ()

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *xs):
        return get_array_module(xs[0]).stack(xs, axis=self.axis)

    def backward(self, gy):
        prefix = (slice(None),) * self.axis
        return tuple(get_item(gy, prefix + (i,)) for i in range(len(self.inputs)))


def stack(xs: Sequence[VarOrArray], axis: int = 0) -> Variable:
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
# Dtype
# =============================================================================
class Cast(Function):
    """y = x in another dtype; the gradient goes back in x's dtype."""
    backward_reads = ()

    def __init__(self, dtype: Any) -> None:
        self.dtype = dtype

    def forward(self, x):
        self.x_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return cast(gy, self.x_dtype)


def cast(x: VarOrArray, dtype: DTypeLike) -> Variable:
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
