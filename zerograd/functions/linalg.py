"""Linear algebra (the book's steps 41 and 43): matmul, and linear = x W + b, with the
book's composed ``linear_simple`` as its oracle; ``linear_pair`` is an RNN's
x W + b + h U as one op. Linear's gradients are the fused ``LinearGradX`` and
``LinearGradW`` of ``fused``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from zerograd.core import Function, Variable, _config, as_variable
from zerograd.functions.array import _shaped, reshape, sum_to, transpose
from zerograd.functions.fused import (LinearGradW, LinearGradX, LinearPair, _linear_grads,
                                      _matmul_2d)
from zerograd.functions.reduction import sum
from zerograd.hints import VarOrArray


def _swap_last_axes(x: Variable) -> Variable:
    """The matrix transpose of each matrix in a batch: (..., m, n) -> (..., n, m)."""
    if x.ndim == 2:
        return transpose(x)
    axes = list(range(x.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return transpose(x, axes)


class MatMul(Function):
    """x (..., m, k) @ W (..., k, n) -> (..., m, n), batch axes broadcast."""
    backward_reads = ('inputs',)

    def forward(self, x, W):
        return _matmul_2d(x, W)

    def backward(self, gy):
        x, W = self.inputs
        gx = sum_to(matmul(gy, _swap_last_axes(W)), x.shape)
        gW = sum_to(matmul(_swap_last_axes(x), gy), W.shape)
        return gx, gW


def matmul(x: VarOrArray, W: VarOrArray) -> Variable:
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


class Linear(Function):
    """y = x W + b for x (N, in), W (in, out), b (out,) or None.

    ``needs_gx`` is False when x is input data (a plain array): its gradient is never
    wanted, which saves one matrix product per step (a seventh of an MLP's work).
    """
    backward_reads = ('inputs',)

    def __init__(self, needs_gx: bool = True) -> None:
        self.needs_gx = needs_gx

    def forward(self, x, W, b=None):
        y = _matmul_2d(x, W)
        if b is not None:
            y += b
        return y

    def backward(self, gy):
        inputs = self.inputs
        x, W, with_b = inputs[0], inputs[1], len(inputs) == 3
        if not _config.enable_backprop:  # not recorded: the same products on arrays
            return _linear_grads(x.data, W.data, gy.data, self.needs_gx, with_b)
        gx = LinearGradX()(gy, W) if self.needs_gx else None
        gW = LinearGradW()(x, gy)
        if not with_b:
            return gx, gW
        gb = sum(gy, axis=0)
        return gx, gW, gb


def _check_linear(op: str, x: Any, W: Any, b: Any) -> None:
    if x.ndim != 2 or W.ndim != 2:
        raise ValueError(f'{op}: x and W must be 2-D, got x.shape={x.shape}, W.shape={W.shape}')
    if x.shape[1] != W.shape[0]:
        raise ValueError(f'{op}: input has {x.shape[1]} features but W expects {W.shape[0]} '
                         f'(x.shape={x.shape}, W.shape={W.shape})')
    if b is not None and b.shape != (W.shape[1],):
        raise ValueError(f'{op}: b must have shape ({W.shape[1]},), got {b.shape}')


def linear(x: VarOrArray, W: VarOrArray, b: VarOrArray | None = None) -> Variable:
    """x W + b. x: (N, in), W: (in, out), b: (out,) or None -> (N, out)."""
    _check_linear('linear', _shaped(x), _shaped(W), None if b is None else _shaped(b))
    needs_gx = isinstance(x, Variable)
    if b is None:
        return Linear(needs_gx)(x, W)
    return Linear(needs_gx)(x, W, b)


def linear_simple(x: VarOrArray, W: VarOrArray, b: VarOrArray | None = None) -> Variable:
    """The book's composed linear: matmul, then add b."""
    _check_linear('linear_simple', _shaped(x), _shaped(W), None if b is None else _shaped(b))
    t = matmul(x, W)
    if b is None:
        return t
    return t + b


def linear_pair(x: VarOrArray, W: VarOrArray, b: VarOrArray, h: VarOrArray,
                U: VarOrArray) -> Variable:
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
