"""The arithmetic behind ``+ - * / **`` (the book's steps 20-22), and ``setup_variable``,
which binds them to Variable.

An operand that is not a Variable (a Python or NumPy scalar, an ndarray) is a constant:
it gets no gradient, so it is stored in the Function instead of being an input, as
Chainer does. That halves the work of ``y * 1.0001`` in backward. A Python scalar takes
the Variable's dtype, so ``x * 2`` keeps float32 float32 (the book's code widens it).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

import zerograd  # for zerograd.functions / zerograd.cuda at call time (they import this)
from zerograd.core import (_NUMERIC_KINDS, Function, _config, Variable, _is_array, _no_data,
                           _not_numeric, _result, as_array)

# Python scalar types and the dtype kind each belongs to (bool < int < float < complex).
_SCALAR_KINDS = {bool: 0, int: 1, float: 2, complex: 3}
_DTYPE_KINDS = {'b': 0, 'u': 1, 'i': 1, 'f': 2, 'c': 3}
_CONSTANTS: dict = {}  # (Python float, float dtype) -> a read-only 0-d array of it


def _as_constant(c: Any, x: Variable, op: str) -> Any:
    """The constant operand of ``x (op) c`` as an array.

    A Python or NumPy scalar takes x's dtype when it fits in x's kind (an int or a float
    with a float32 x gives float32), so a scalar never widens float32 to float64, on
    NumPy 1.x and 2.x alike. Arrays pass through and keep NumPy's promotion rules.
    op names the operation in errors. A Python float with a float x, the common case, is
    made once per value and dtype, read-only, and reused (``_CONSTANTS``: a chain's
    ``y * 1.0001`` saves 0.5 us an op; at most 256 kept; 0.0, -0.0, NaN and inf never).
    """
    data = x.data
    if type(c) is float and type(data) is np.ndarray and data.dtype.kind == 'f':
        key = (c, data.dtype)
        constant = _CONSTANTS.get(key)
        if constant is None:
            constant = np.array(c, dtype=data.dtype)
            # Not 0.0 and -0.0 (equal keys), nor NaN (never equal), nor a value that
            # overflows the dtype (its warning, or error under np.errstate, every time).
            if c != 0 and np.isfinite(constant):
                constant.flags.writeable = False
                constant = constant.view()  # a view of a read-only array stays read-only
                if len(_CONSTANTS) >= 256:
                    _CONSTANTS.clear()
                _CONSTANTS[key] = constant
        return constant
    if data is None:
        raise _no_data(op)
    kind = _SCALAR_KINDS.get(type(c))  # a Python scalar, the next most common, first
    if kind is None:
        if type(c) is np.ndarray or _is_array(c):
            if c.dtype.kind not in _NUMERIC_KINDS:  # an object or string array operand
                raise _not_numeric(op, c.dtype, 'operands')
            return c
        if not isinstance(c, np.generic):
            raise TypeError(f'{op}: unsupported operand of type {type(c).__name__} for a '
                            f'Variable of dtype {data.dtype}')
        kind = _DTYPE_KINDS.get(c.dtype.kind)
        if kind is None:
            raise _not_numeric(op, c.dtype, 'operands')
    xp = np if type(data) is np.ndarray else zerograd.cuda.get_array_module(data)
    if kind <= _DTYPE_KINDS.get(data.dtype.kind, -1):
        if xp is not np:  # a NumPy scalar of x's dtype: no host-to-GPU copy for every op
            return data.dtype.type(c)
        return xp.array(c, dtype=data.dtype)
    return xp.array(c)


def _sum_to(gx: Variable, shape: tuple) -> Variable:
    """Sum a broadcast gradient back to its input's shape."""
    if gx.data.shape != shape:
        gx = zerograd.functions.sum_to(gx, shape)
    return gx


class _Arithmetic(Function):
    """An op behind an operator. When its forward raises a ValueError and the operands do
    not broadcast, ``_explain_failure`` raises one naming ``op`` and both shapes."""
    op = ''

    def operands(self, x0: Any, x1: Any) -> tuple:
        return x0, x1


class Add(_Arithmetic):
    """y = x0 + x1, broadcasting; the gradients are summed back to each shape."""
    backward_reads = ()
    op = 'add'

    def forward(self, x0, x1):
        self.x0_shape, self.x1_shape = x0.shape, x1.shape
        return x0 + x1

    def backward(self, gy):
        return _sum_to(gy, self.x0_shape), _sum_to(gy, self.x1_shape)


class Sub(_Arithmetic):
    """y = x0 - x1, broadcasting."""
    backward_reads = ()
    op = 'sub'

    def forward(self, x0, x1):
        self.x0_shape, self.x1_shape = x0.shape, x1.shape
        return x0 - x1

    def backward(self, gy):
        return _sum_to(gy, self.x0_shape), _sum_to(-gy, self.x1_shape)


class Mul(_Arithmetic):
    """y = x0 * x1, broadcasting: gx0 = gy x1, gx1 = gy x0."""
    backward_reads = ('inputs',)
    op = 'mul'

    def forward(self, x0, x1):
        return x0 * x1

    def backward(self, gy):
        x0, x1 = self.inputs
        return _sum_to(gy * x1, x0.data.shape), _sum_to(gy * x0, x1.data.shape)


class Div(_Arithmetic):
    """y = x0 / x1, broadcasting: gx0 = gy / x1, gx1 = -gy x0 / x1 ** 2."""
    backward_reads = ('inputs',)
    op = 'div'

    def forward(self, x0, x1):
        return x0 / x1

    def backward(self, gy):
        x0, x1 = self.inputs
        gx0 = gy / x1
        gx1 = gy * (-x0 / (x1 * x1))
        return _sum_to(gx0, x0.data.shape), _sum_to(gx1, x1.data.shape)


class Neg(Function):
    """y = -x."""
    backward_reads = ()

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class PowVariable(_Arithmetic):
    """y = x0 ** x1 with a Variable exponent: dy/dx0 = x1 x0 ** (x1 - 1),
    dy/dx1 = y log(x0) (defined for x0 > 0)."""
    op = 'pow'

    def forward(self, x0, x1):
        return x0 ** x1

    def backward(self, gy):
        x0, x1 = self.inputs
        y = self.outputs[0]()
        gx0 = gy * x1 * x0 ** (x1 - 1)
        gx1 = gy * y * zerograd.functions.log(x0)
        return _sum_to(gx0, x0.data.shape), _sum_to(gx1, x1.data.shape)


class _WithConstant(_Arithmetic):
    """A one-input op with a constant operand c (a scalar or a broadcastable array).
    constant_first: c was written first (``c - x``, ``2 * x``), so errors name its shape
    first; the wrappers below pass it."""

    def __init__(self, c: Any, constant_first: bool = False) -> None:
        self.c = c
        self.constant_first = constant_first

    def operands(self, x: Any) -> tuple:
        if self.constant_first:
            return self.c, x
        return x, self.c


class AddConstant(_WithConstant):
    """y = x + c (also c + x)."""
    backward_reads = ()
    op = 'add'

    def forward(self, x):
        self.x_shape = x.shape
        return x + self.c

    def backward(self, gy):
        return _sum_to(gy, self.x_shape)


class SubConstant(_WithConstant):
    """y = x - c."""
    backward_reads = ()
    op = 'sub'

    def forward(self, x):
        self.x_shape = x.shape
        return x - self.c

    def backward(self, gy):
        return _sum_to(gy, self.x_shape)


class SubFromConstant(_WithConstant):
    """y = c - x."""
    backward_reads = ()
    op = 'sub'

    def forward(self, x):
        self.x_shape = x.shape
        return self.c - x

    def backward(self, gy):
        return _sum_to(-gy, self.x_shape)


class MulConstant(_WithConstant):
    """y = x * c (also c * x)."""
    backward_reads = ()
    op = 'mul'

    def forward(self, x):
        self.x_shape = x.shape
        return x * self.c

    def backward(self, gy):
        if not _config.enable_backprop:  # not recorded: the same product, no Function
            return _sum_to(_result(gy.data * self.c), self.x_shape)
        return _sum_to(gy * self.c, self.x_shape)


class DivConstant(_WithConstant):
    """y = x / c."""
    backward_reads = ()
    op = 'div'

    def forward(self, x):
        self.x_shape = x.shape
        return x / self.c

    def backward(self, gy):
        return _sum_to(gy / self.c, self.x_shape)


class DivFromConstant(_WithConstant):
    """y = c / x;  dy/dx = -c / x ** 2."""
    backward_reads = ('inputs',)
    op = 'div'

    def forward(self, x):
        self.x_shape = x.shape
        return self.c / x

    def backward(self, gy):
        x, = self.inputs
        # -(gy (c / x^2)) is gy (-c / x^2) to the bit (negation is exact), as Div computes
        # it, without negating c (an unsigned c would wrap around)
        return _sum_to(-(gy * (self.c / (x * x))), self.x_shape)


class Pow(_WithConstant):
    """y = x ** c for a constant exponent c (the book's Pow);  dy/dx = c x ** (c - 1)."""
    backward_reads = ('inputs',)
    op = 'pow'

    def forward(self, x):
        self.x_shape = x.shape
        return x ** self.c

    def backward(self, gy):
        x, = self.inputs
        c = self.c
        return _sum_to(gy * c * x ** (c - 1), self.x_shape)


class ConstantPow(_WithConstant):
    """y = c ** x for a constant base c;  dy/dx = y log(c)."""
    backward_reads = ('outputs',)
    op = 'pow'

    def forward(self, x):
        self.x_shape = x.shape
        return self.c ** x

    def backward(self, gy):
        y = self.outputs[0]()
        xp = zerograd.cuda.get_array_module(y.data)
        log_c = xp.log(xp.asarray(self.c, dtype=y.dtype))  # in y's dtype, not an int's
        return _sum_to(gy * y * log_c, self.x_shape)


def _binary(op: str, Both: type, WithConstant: type, ConstantFirst: type,
            doc: str) -> Callable[[Any, Any], Variable]:
    """The function ``x0 (op) x1``: ``Both()(x0, x1)`` for two Variables, else the
    constant form: ``WithConstant(x1)(x0)``, or ``ConstantFirst(x0)(x1)`` when only x1 is a
    Variable (a plain x0 with a plain x1 is made a Variable, so ``add(2, 3)`` works)."""
    def binary(x0: Any, x1: Any) -> Variable:
        if not isinstance(x1, Variable):
            if not isinstance(x0, Variable):
                x0 = Variable(as_array(x0))
            return WithConstant(_as_constant(x1, x0, op))(x0)
        if not isinstance(x0, Variable):
            return ConstantFirst(_as_constant(x0, x1, op), constant_first=True)(x1)
        return Both()(x0, x1)
    binary.__name__ = binary.__qualname__ = op
    binary.__doc__ = doc
    return binary


add = _binary('add', Add, AddConstant, AddConstant,
              'x0 + x1, broadcasting. Either may be a Variable, an ndarray or a scalar.')
sub = _binary('sub', Sub, SubConstant, SubFromConstant, 'x0 - x1, broadcasting.')
mul = _binary('mul', Mul, MulConstant, MulConstant, 'x0 * x1, broadcasting.')
div = _binary('div', Div, DivConstant, DivFromConstant, 'x0 / x1, broadcasting.')
pow = _binary('pow', PowVariable, Pow, ConstantPow,
              "x0 ** x1. A constant x1 is the book's Pow; a Variable x1 is differentiated too.")


def neg(x: Any) -> Variable:
    """-x."""
    return Neg()(x)


# The reflected forms (``2 - x`` calls ``x.__rsub__(2)``) put the operands back in the
# order they were written, so errors name them in that order.
def radd(x0: Any, x1: Any) -> Variable:
    """x1 + x0 (for ``scalar + variable``)."""
    return add(x1, x0)


def rsub(x0: Any, x1: Any) -> Variable:
    """x1 - x0 (for ``scalar - variable``)."""
    return sub(x1, x0)


def rmul(x0: Any, x1: Any) -> Variable:
    """x1 * x0 (for ``scalar * variable``)."""
    return mul(x1, x0)


def rdiv(x0: Any, x1: Any) -> Variable:
    """x1 / x0 (for ``scalar / variable``)."""
    return div(x1, x0)


def rpow(x0: Any, x1: Any) -> Variable:
    """x1 ** x0 (for ``2 ** variable``)."""
    return pow(x1, x0)


def _matmul(x0: Any, x1: Any) -> Variable:
    return zerograd.functions.matmul(x0, x1)


def _rmatmul(x0: Any, x1: Any) -> Variable:
    return zerograd.functions.matmul(x1, x0)


def _get_item(x: Variable, slices: Any) -> Variable:
    return zerograd.functions.get_item(x, slices)


# Every operator of Variable, in one table, bound by setup_variable as in the book's step 20:
# plain functions, no method call in between.
_OPERATORS = {
    '__add__': add, '__radd__': radd, '__sub__': sub, '__rsub__': rsub,
    '__mul__': mul, '__rmul__': rmul, '__truediv__': div, '__rtruediv__': rdiv,
    '__pow__': pow, '__rpow__': rpow, '__neg__': neg,
    '__matmul__': _matmul, '__rmatmul__': _rmatmul, '__getitem__': _get_item,
}


def setup_variable() -> None:
    """Bind the operators of ``_OPERATORS`` to Variable (``zerograd/__init__.py`` calls it
    once, as the book's ``dezero/__init__.py`` does)."""
    for name, function in _OPERATORS.items():
        setattr(Variable, name, function)
