"""Activations (the book's steps 43, 47 and 51): sigmoid (with the book's composed
``sigmoid_simple``), relu, leaky_relu, softmax (with ``softmax_simple``) and log_softmax.
Sigmoid's gradient is the fused ``SigmoidGrad`` of ``fused``.
"""
from __future__ import annotations

from typing import Any

from zerograd import workspace
from zerograd.core import Function, Variable, _config, as_array
from zerograd.cuda import get_array_module
from zerograd.functions.array import _check_axis
from zerograd.functions.fused import SigmoidGrad
from zerograd.functions.math import _floating, exp
from zerograd.functions.reduction import sum
from zerograd.hints import VarOrArray


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x)); gx = gy y (1 - y)."""
    backward_reads = ('outputs',)

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


def sigmoid(x: VarOrArray) -> Variable:
    """1 / (1 + exp(-x)), elementwise, without overflow warnings. x: any shape (bool/int:
    computed in float64)."""
    return Sigmoid()(_floating('sigmoid', x))


def sigmoid_simple(x: VarOrArray) -> Variable:
    """The book's composed sigmoid, 1 / (1 + exp(-x)): the oracle of ``sigmoid``
    (bool/int: computed in float64, before -x could wrap around)."""
    x = _floating('sigmoid_simple', x)
    return 1 / (1 + exp(-x))


class ReLU(Function):
    """y = max(x, 0); gx = gy where x > 0."""
    backward_reads = ('inputs',)

    def forward(self, x):
        xp = get_array_module(x)
        if x.dtype.kind != 'f':  # an integer's or bool's maximum with 0: NumPy's dtype
            return xp.maximum(x, 0)
        return xp.maximum(x, 0, out=workspace.empty_like(x))

    def backward(self, gy):
        x, = self.inputs
        if not _config.enable_backprop:  # not recorded: the same product, no Function
            gy, mask = gy.data, x.data > 0
            if gy.ndim == 0 or gy.dtype.kind != 'f':
                return Variable(as_array(gy * mask))  # 0-d: NumPy gives a scalar
            xp = get_array_module(gy)
            return Variable(xp.multiply(gy, mask, out=workspace.empty_like(gy)))
        return gy * (x.data > 0)  # a constant mask


def relu(x: VarOrArray) -> Variable:
    """max(x, 0), elementwise. x: any shape."""
    return ReLU()(x)


class LeakyReLU(Function):
    """y = x if x > 0 else slope x."""
    backward_reads = ('inputs',)

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


def leaky_relu(x: VarOrArray, slope: float = 0.2) -> Variable:
    """x where x > 0, else slope x. x: any shape (bool/int: computed in float64)."""
    return LeakyReLU(slope)(_floating('leaky_relu', x))


# =============================================================================
# Softmax
# =============================================================================
class Softmax(Function):
    """y = softmax(x) along an axis; gx = y gy - y sum(y gy)."""
    backward_reads = ('outputs',)

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


def softmax(x: VarOrArray, axis: int = 1) -> Variable:
    """exp(x) / sum(exp(x)) along ``axis``, computed without overflow. x: real (bool/int:
    computed in float64)."""
    x = _floating('softmax', x, real=True)
    return Softmax(_check_axis('softmax', x, axis))(x)


def softmax_simple(x: VarOrArray, axis: int = 1) -> Variable:
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
    backward_reads = ('outputs',)

    def __init__(self, axis: int = 1) -> None:
        self.axis = axis

    def forward(self, x):
        return _log_softmax(x, self.axis)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy - exp(y) * sum(gy, axis=self.axis, keepdims=True)


def log_softmax(x: VarOrArray, axis: int = 1) -> Variable:
    """log(softmax(x)) along ``axis``, by log-sum-exp (no log(0)). x: real (bool/int:
    computed in float64)."""
    x = _floating('log_softmax', x, real=True)
    return LogSoftmax(_check_axis('log_softmax', x, axis))(x)
