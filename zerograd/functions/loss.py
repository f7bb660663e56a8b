"""Losses and accuracy (the book's steps 42, 47 and 50): mean_squared_error,
softmax_cross_entropy (each with the book's composed ``_simple`` version as its oracle),
sigmoid_cross_entropy, binary_cross_entropy, and accuracy. The shapes and labels are
checked at the boundary: no silent broadcasting of (N,) against (N, 1), class ids in
[0, C), targets in [0, 1].
"""
from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from zerograd.core import Function, Variable, _config, _result, as_array, as_variable
from zerograd.cuda import get_array_module
from zerograd.functions.activation import Softmax, _log_softmax, sigmoid, softmax
from zerograd.functions.array import cast, reshape
from zerograd.functions.math import _floating, clip, log
from zerograd.functions.reduction import sum
from zerograd.hints import VarOrArray


def _check_batch(op: str, x: Variable) -> None:
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f'{op}: x must hold a non-empty batch, got shape {x.shape}')


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
    """y = sum((x0 - x1) ** 2) / len(x0); gx0 = gy (x0 - x1) 2 / len(x0), gx1 = -gx0.

    ``needs_gx1`` is False when x1 is data (a target array, the common case): its
    gradient is never wanted, so it is not computed (as Linear's gx for input data).
    """
    backward_reads = ('inputs',)

    def __init__(self, needs_gx1: bool = True) -> None:
        self.needs_gx1 = needs_gx1

    def forward(self, x0, x1):
        diff = x0 - x1
        return (diff * diff).sum() / diff.dtype.type(len(diff))

    def backward(self, gy):
        x0, x1 = self.inputs
        if _config.enable_backprop:  # recorded: framework ops, differentiable again
            diff = x0 - x1
            gx0 = gy * diff * (2.0 / len(diff))
            return gx0, (-gx0 if self.needs_gx1 else None)
        # Not recorded: the same products on arrays, without a Function each (a Python
        # float takes the product's dtype, as the recorded ``* (2.0 / len)`` gives it).
        diff = x0.data - x1.data
        gx0 = gy.data * diff * (2.0 / len(diff))
        return _result(gx0), (_result(-gx0) if self.needs_gx1 else None)


def mean_squared_error(x0: VarOrArray, x1: VarOrArray) -> Variable:
    """sum((x0 - x1) ** 2) / len(x0): shapes must match (no silent broadcasting)."""
    needs_gx1 = isinstance(x1, Variable)
    x0, x1 = as_variable(x0), as_variable(x1)
    x1 = _same_shape('mean_squared_error', x0, x1)
    _check_batch('mean_squared_error', x0)
    return MeanSquaredError(needs_gx1)(x0, x1)


def mean_squared_error_simple(x0: VarOrArray, x1: VarOrArray) -> Variable:
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
    of the losses and ``accuracy``. Another dtype is a TypeError; another shape or an id
    out of range, a ValueError."""
    t = t.data if isinstance(t, Variable) else t
    if not hasattr(t, 'dtype') or t.dtype.kind not in 'iu':
        kind = getattr(t, 'dtype', type(t).__name__)
        raise TypeError(f'{op}: t must hold integer class ids of shape (N,), got {kind} '
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
    backward_reads = ('inputs',)

    def forward(self, x, t):
        N = x.shape[0]
        xp = get_array_module(x)
        log_p = _log_softmax(x, axis=1)[xp.arange(N), t]
        return -log_p.sum() / x.dtype.type(N)

    def backward(self, gy):
        x, t = self.inputs
        N, C = x.shape
        xp = get_array_module(x.data)
        if not _config.enable_backprop:  # not recorded: the same numbers in one array
            return Variable(self._grad_array(xp, x.data, t.data, gy.data)), None
        # The one-hot labels in x's dtype: subtracting an int array would give float64.
        t_onehot = xp.eye(C, dtype=x.dtype)[t.data]
        y = softmax(x)
        return (y - t_onehot) * (gy / N), None

    @staticmethod
    def _grad_array(xp: Any, x: Any, t: Any, gy: Any) -> Any:
        """(softmax(x) - onehot(t)) gy / N on arrays, to the bit what the composed ops
        above give, without the one-hot matrix and two (N, C) temporaries: y - 0 is y, so
        only the labels' entries change (y - 1), in place; gy / N divides by N in gy's
        dtype, as ``gy / N`` does on a Variable."""
        N = x.shape[0]
        gx = Softmax(1).forward(x)  # what softmax(x) computes, a new array
        gx[xp.arange(N), t] -= 1
        gx *= gy / gy.dtype.type(N)
        return gx


def softmax_cross_entropy(x: VarOrArray, t: VarOrArray) -> Variable:
    """Mean over the batch of -log softmax(x)[t]. x: (N, C) scores, t: (N,) int ids."""
    x = _floating('softmax_cross_entropy', x, real=True)
    labels = _check_labels('softmax_cross_entropy', x, t)
    # A Variable t stays the op's input (an exported graph reads it from the model's input).
    return SoftmaxCrossEntropy()(x, t if isinstance(t, Variable) else labels)


def softmax_cross_entropy_simple(x: VarOrArray, t: VarOrArray) -> Variable:
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
    backward_reads = ('inputs',)

    def forward(self, x, t):
        xp = get_array_module(x)
        # log(1 + exp(x)) = max(x, 0) + log(1 + exp(-|x|)), which never overflows.
        loss = xp.maximum(x, 0) - x * t + xp.log1p(xp.exp(-xp.abs(x)))
        return loss.sum() / x.dtype.type(len(x))

    def backward(self, gy):
        x, t = self.inputs
        return (sigmoid(x) - t.data) * (gy / len(x)), None


def sigmoid_cross_entropy(x: VarOrArray, t: VarOrArray) -> Variable:
    """Binary cross-entropy of sigmoid(x) against 0/1 labels t, summed and divided by
    len(x) (the book's normalisation), computed from the scores x without overflow.
    x: (N, ...) real scores (bool/int: float64); t: targets in [0, 1] of x's shape, or (N,)
    for x of shape (N, 1)."""
    x = _floating('sigmoid_cross_entropy', x, real=True)
    _check_batch('sigmoid_cross_entropy', x)
    labels = _binary_labels('sigmoid_cross_entropy', x, t)
    if isinstance(t, Variable):  # kept as the op's input, as in softmax_cross_entropy
        if t.shape != x.shape:
            t = reshape(t, x.shape)
        labels = t if t.dtype == x.dtype else cast(t, x.dtype)
    return SigmoidCrossEntropy()(x, labels)


def binary_cross_entropy(p: VarOrArray, t: VarOrArray) -> Variable:
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


def accuracy(y: VarOrArray, t: VarOrArray) -> Variable:
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
