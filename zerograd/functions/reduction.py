"""Reductions (the book's step 39 and after): sum, max, min, and average (alias mean)
over one axis, several, or all. Each gradient sends gy back over the reduced axes: sum's
to every element, max's and min's to the elements equal to the result.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from zerograd import utils
from zerograd.core import Function, Variable, as_variable
from zerograd.functions.array import broadcast_to, reshape
from zerograd.hints import VarOrArray

Axis = int | tuple[int, ...] | None  # None: all axes; negative counts from the end


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
    backward_reads = ()

    def __init__(self, axis: tuple | None, keepdims: bool) -> None:
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        self.x_shape = x.shape
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        gy = utils.reshape_sum_backward(gy, self.x_shape, self.axis, self.keepdims)
        return broadcast_to(gy, self.x_shape)


def sum(x: VarOrArray, axis: Axis = None, keepdims: bool = False) -> Variable:
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


def max(x: VarOrArray, axis: Axis = None, keepdims: bool = False) -> Variable:
    """Maximum over ``axis``; the gradient goes to every element equal to it."""
    x = as_variable(x)
    if x.size == 0:
        raise ValueError(f'max: x of shape {x.shape} is empty: it has no maximum')
    return Max(_normalize_axis('max', axis, x.ndim, x.shape), keepdims)(x)


def min(x: VarOrArray, axis: Axis = None, keepdims: bool = False) -> Variable:
    """Minimum over ``axis``; the gradient goes to every element equal to it."""
    x = as_variable(x)
    if x.size == 0:
        raise ValueError(f'min: x of shape {x.shape} is empty: it has no minimum')
    return Min(_normalize_axis('min', axis, x.ndim, x.shape), keepdims)(x)


class Average(Function):
    """y = the sum over ``axis`` divided by ``count``, the elements per output; one op
    (not sum, then a division by a number) so an exported graph averages over the sizes
    it is given, not the traced ones."""
    backward_reads = ()

    def __init__(self, axis: tuple | None, keepdims: bool, count: int) -> None:
        self.axis = axis
        self.keepdims = keepdims
        self.count = count

    def forward(self, x):
        self.x_shape = x.shape
        y = x.sum(axis=self.axis, keepdims=self.keepdims)
        if y.dtype.kind == 'f':  # the count in y's dtype: float32 stays float32
            return y / y.dtype.type(self.count)
        return y / self.count  # bool and int: a float64 mean, as NumPy's

    def backward(self, gy):
        gy = utils.reshape_sum_backward(gy, self.x_shape, self.axis, self.keepdims)
        return broadcast_to(gy / self.count, self.x_shape)


def average(x: VarOrArray, axis: Axis = None, keepdims: bool = False) -> Variable:
    """Mean over ``axis`` (None: all). Alias ``mean``."""
    x = as_variable(x)
    axis = _normalize_axis('average', axis, x.ndim, x.shape)
    count = 1  # elements averaged per output
    for i in (range(x.ndim) if axis is None else axis):
        count *= x.shape[i]
    if x.size == 0:
        raise ValueError(f'average: nothing to average over axis {axis} of x of shape '
                         f'{x.shape}')
    return Average(axis, keepdims, count)(x)


mean = average
