"""Elementwise math (the book's steps 2-3, 27 and 33-36): sin, cos, tanh, exp, log,
square, sqrt, abs and clip. (``+ - * / **`` and unary minus are in ``core``, re-exported by
``zerograd.functions``.)

The dtype rule of functions that compute in floating point (``exp, log, sin, cos, tanh,
sqrt, sigmoid, leaky_relu, softmax, log_softmax``, the losses, ``dropout``, ``batch_norm``,
``lstm_cell``): a bool or integer input is computed in float64, NumPy's default float (what
the book's code got for its int64 arrays, e.g. step 37's ``F.sin`` of ``[[1, 2, 3], [4, 5,
6]]``; PyTorch does the same with its default float), never in float16; the input's
gradient is float64 too. Float inputs keep their dtype (float32 stays float32). Complex
inputs are accepted by the elementwise ones; softmax, the losses and the normalisations
need real numbers (TypeError). Functions that stay exact on integers (``+``, ``*``,
``relu``, ``abs``, ``square``, ``sum``, ``matmul``, ...) keep the input's dtype, as NumPy
does. The rule lives in one place, ``_floating``, here.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from zerograd.core import (_NUMERIC_KINDS, Function, Variable, _config, _no_data, _not_numeric,
                           _result, as_array)
from zerograd.cuda import get_array_module
from zerograd.functions.fused import TanhGrad
from zerograd.hints import VarOrArray


# =============================================================================
# The dtype rule of the float functions (see the module docstring)
# =============================================================================
class _ToFloat(Function):
    """y = x (bool or integer) as float64; the gradient passes through as it is, so the
    input gets a float gradient (as the engine gives every integer input)."""
    backward_reads = ()

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
    backward_reads = ('inputs',)

    def forward(self, x):
        return get_array_module(x).sin(x)

    def backward(self, gy):
        x, = self.inputs
        if not _config.enable_backprop:  # not recorded: the same product, no Function
            return _result(gy.data * get_array_module(x.data).cos(x.data))
        return gy * cos(x)


def sin(x: VarOrArray) -> Variable:
    """Sine, elementwise. x: any shape (bool/int: computed in float64, the module's rule)."""
    return Sin()(_floating('sin', x))


class Cos(Function):
    """y = cos(x); gx = -gy sin(x)."""
    backward_reads = ('inputs',)

    def forward(self, x):
        return get_array_module(x).cos(x)

    def backward(self, gy):
        x, = self.inputs
        return gy * -sin(x)


def cos(x: VarOrArray) -> Variable:
    """Cosine, elementwise. x: any shape (bool/int: computed in float64)."""
    return Cos()(_floating('cos', x))


class Tanh(Function):
    """y = tanh(x); gx = gy (1 - y ** 2)."""
    backward_reads = ('outputs',)

    def forward(self, x):
        return get_array_module(x).tanh(x)

    def backward(self, gy):
        y = self.outputs[0]()  # weakref: the output is alive during backward
        return TanhGrad()(y, gy)


def tanh(x: VarOrArray) -> Variable:
    """Hyperbolic tangent, elementwise. x: any shape (bool/int: computed in float64)."""
    return Tanh()(_floating('tanh', x))


class Exp(Function):
    """y = exp(x); gx = gy y."""
    backward_reads = ('outputs',)

    def forward(self, x):
        return get_array_module(x).exp(x)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy * y


def exp(x: VarOrArray) -> Variable:
    """e ** x, elementwise. x: any shape (bool/int: computed in float64)."""
    return Exp()(_floating('exp', x))


class Log(Function):
    """y = log(x); gx = gy / x."""
    backward_reads = ('inputs',)

    def forward(self, x):
        return get_array_module(x).log(x)

    def backward(self, gy):
        x, = self.inputs
        return gy / x


def log(x: VarOrArray) -> Variable:
    """Natural logarithm, elementwise. x: any shape, positive (bool/int: computed in
    float64)."""
    return Log()(_floating('log', x))


class Square(Function):
    """y = x ** 2; gx = 2 x gy."""
    backward_reads = ('inputs',)

    def forward(self, x):
        return x * x

    def backward(self, gy):
        x, = self.inputs
        return gy * x * 2


def square(x: VarOrArray) -> Variable:
    """x ** 2, elementwise. x: any shape."""
    return Square()(x)


class Sqrt(Function):
    """y = sqrt(x); gx = gy / (2 y)."""
    backward_reads = ('outputs',)

    def forward(self, x):
        return get_array_module(x).sqrt(x)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy / (y * 2)


def sqrt(x: VarOrArray) -> Variable:
    """Square root, elementwise. x: any shape, non-negative (the gradient at 0 is inf;
    bool/int: computed in float64)."""
    return Sqrt()(_floating('sqrt', x))


class Abs(Function):
    """y = ``|x|``; gx = gy sign(x)."""
    backward_reads = ('inputs',)

    def forward(self, x):
        return get_array_module(x).abs(x)

    def backward(self, gy):
        x, = self.inputs
        xp = get_array_module(x.data)
        return gy * xp.sign(x.data)  # a constant mask: the second derivative is 0


def abs(x: VarOrArray) -> Variable:
    """``|x|``, elementwise. x: any shape (the gradient at 0 is 0)."""
    return Abs()(x)


class Clip(Function):
    """y = clip(x, x_min, x_max); gx = gy where x is inside."""
    backward_reads = ('inputs',)

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


def clip(x: VarOrArray, x_min: float, x_max: float) -> Variable:
    """x limited to [x_min, x_max]; the gradient is 0 outside. x: any shape."""
    if x_min > x_max:
        raise ValueError(f'clip: x_min {x_min} is greater than x_max {x_max}')
    return Clip(x_min, x_max)(x)
