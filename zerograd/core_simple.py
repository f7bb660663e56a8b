"""The engine of the book's steps 1-32 in one file, to read top to bottom beside the book.

A box for an array (step 1), functions that record their inputs (steps 2-12), a backward
loop by generation (steps 7-16), outputs held by weak reference (step 17), ``Config`` and
``no_grad`` (step 18), array-like properties (step 19) and the operators (steps 20-22).
Grads are ndarrays, as in those steps, so ``x.data -= lr * x.grad`` works (steps 28-29)::

    import zerograd
    if not zerograd.is_simple_core:
        from zerograd.core_simple import Variable, setup_variable
        setup_variable()

``zerograd.core`` is the engine zerograd runs on (grads are Variables there, so they can
be differentiated again; its backward has fast paths). The tests hold its gradients to
this file's bit for bit (tests/test_fast_paths.py); docs/steps.md says where it departs.
The places this file departs from the book's core_simple.py are marked "Fix".
"""
from __future__ import annotations

import contextlib
import heapq
import itertools
import weakref
from typing import Any, Callable, Iterator

import numpy as np

from zerograd import utils


# -- Config (step 18): one switch, read by Function.__call__ -----------------------------
class Config:
    """``Config.enable_backprop``: whether functions record the graph (default True)."""
    enable_backprop = True


@contextlib.contextmanager
def using_config(name: str, value: Any) -> Iterator[None]:
    """Set ``Config.<name>`` to ``value`` inside a ``with`` block, then restore it."""
    old_value = getattr(Config, name)
    setattr(Config, name, value)
    try:
        yield
    finally:
        setattr(Config, name, old_value)


def no_grad() -> contextlib.AbstractContextManager:
    """``with no_grad():`` computes values only; no graph is recorded."""
    return using_config('enable_backprop', False)


# -- Variable (steps 1, 7-9, 13-19) ------------------------------------------------------
class Variable:
    """A box around an ndarray (``data``) with its gradient (``grad``, an ndarray or None)
    and the Function that made it (``creator``, None for a leaf)."""
    __array_priority__ = 200  # ndarray (op) Variable calls Variable's reflected operator
    __array_ufunc__ = None    # ... and so does a NumPy scalar (np.float64(2) * x)

    def __init__(self, data: np.ndarray | None, name: str | None = None) -> None:
        if data is not None and not isinstance(data, np.ndarray):
            # Fix: the book says only "<class 'float'> is not supported".
            raise TypeError(f'Variable: data must be an ndarray or None, got {type(data)}; '
                            f'wrap it with np.array({data!r})')
        self.data = data
        self.name = name
        self.grad = None
        self.creator = None
        self.generation = 0  # step 16: one more than the creator's

    # -- step 19: a Variable looks like the array it holds
    @property
    def shape(self) -> tuple:
        """The shape of ``data``."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of dimensions of ``data``."""
        return self.data.ndim

    @property
    def size(self) -> int:
        """The number of elements of ``data``."""
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        """The dtype of ``data``."""
        return self.data.dtype

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        if self.data is None:
            return 'variable(None)'
        text = str(self.data).replace('\n', '\n' + ' ' * 9)
        return f'variable({text})'

    # -- steps 7 and 16: the link to the creator, and the generation
    def set_creator(self, func: Function) -> None:
        """Record ``func`` as the Function that made this variable, one generation after it."""
        self.creator = func
        self.generation = func.generation + 1

    def cleargrad(self) -> None:
        """Forget the gradient (step 14: otherwise the next backward adds to it)."""
        self.grad = None

    def backward(self, retain_grad: bool = False) -> None:
        """Set ``grad`` on every variable this one was computed from (step 7), by a loop
        (step 8) that runs each function once, newest generation first (step 16), and
        frees the intermediate grads unless ``retain_grad`` (step 18)."""
        if self.grad is None:
            self.grad = np.ones_like(self.data)  # step 9: dy/dy = 1
        if self.creator is None:
            return  # a leaf

        # Fix: the book sorts its list of functions on every push, which is quadratic on a
        # wide graph. A heap keyed on (-generation, insertion order) gives the newest
        # generation first, ties in the order found, with no re-sorting.
        heap = []
        seen = set()
        order = itertools.count()

        def add_func(f: Function) -> None:
            if f not in seen:
                seen.add(f)
                heapq.heappush(heap, (-f.generation, next(order), f))

        add_func(self.creator)
        while heap:
            f = heapq.heappop(heap)[2]
            # step 17: outputs are weak references; an output that is gone, or got no
            # gradient, gives None (Fix: the book fails on a dead output)
            outputs = [output() for output in f.outputs]
            gys = [None if y is None else y.grad for y in outputs]
            if all(gy is None for gy in gys):
                continue
            gxs = f.backward(*gys)
            if not isinstance(gxs, tuple):
                gxs = (gxs,)
            if len(gxs) != len(f.inputs):  # Fix: zip would drop the extra ones silently
                raise ValueError(f'{type(f).__name__}.backward returned {len(gxs)} '
                                 f'gradients for {len(f.inputs)} inputs')

            for x, gx in zip(f.inputs, gxs):
                if gx is None:
                    continue
                gx = as_array(gx)  # Fix: 0-d arithmetic gives NumPy scalars; keep arrays
                if x.grad is None:
                    x.grad = gx
                else:
                    # step 14: a variable used twice adds its gradients, into a new array:
                    # gx may be another variable's grad too (Add returns gy twice)
                    x.grad = as_array(x.grad + gx)
                if x.creator is not None:
                    add_func(x.creator)

            if not retain_grad:
                for y in outputs:
                    if y is not None:
                        y.grad = None


def as_variable(obj: Any) -> Variable:
    """A Variable passes through; an ndarray is wrapped."""
    if isinstance(obj, Variable):
        return obj
    return Variable(obj)


def as_array(x: Any) -> Any:
    """A Python or NumPy scalar becomes a 0-d ndarray (step 9); anything else passes."""
    if np.isscalar(x):
        return np.array(x)
    return x


# -- Function (steps 2, 6, 7, 11, 12, 16-18) ---------------------------------------------
class Function:
    """Base class of the ops: ``forward`` and ``backward`` both work on ndarrays."""

    def __call__(self, *inputs: Any) -> Variable | list[Variable]:
        inputs = [as_variable(as_array(x)) for x in inputs]
        xs = [x.data for x in inputs]
        ys = self.forward(*xs)
        if not isinstance(ys, tuple):
            ys = (ys,)
        outputs = [Variable(as_array(y)) for y in ys]

        if Config.enable_backprop:
            self.generation = max([x.generation for x in inputs])
            for output in outputs:
                output.set_creator(self)
            self.inputs = inputs
            # step 17: the outputs refer to this function, not the other way round, so
            # a graph is freed as soon as its last output is unreachable
            self.outputs = [weakref.ref(output) for output in outputs]
        return outputs if len(outputs) > 1 else outputs[0]

    def forward(self, *xs: np.ndarray) -> Any:
        """The outputs' arrays from the inputs' arrays ``xs`` (one array or a tuple);
        each op writes its own."""
        raise NotImplementedError(f'{type(self).__name__}.forward is not written')

    def backward(self, *gys: np.ndarray) -> Any:
        """The gradients of the inputs (one ndarray or a tuple, in the inputs' order and
        shapes) from the outputs' gradients ``gys``; each op writes its own."""
        raise NotImplementedError(f'{type(self).__name__}.backward is not written')


# -- The first functions (steps 2-4) -----------------------------------------------------
class Square(Function):
    """y = x ** 2;  gx = 2 x gy."""

    def forward(self, x):
        return x ** 2

    def backward(self, gy):
        x = self.inputs[0].data
        return 2 * x * gy


def square(x: Any) -> Variable:
    """x ** 2, elementwise."""
    return Square()(x)


class Exp(Function):
    """y = e ** x;  gx = e ** x gy."""

    def forward(self, x):
        return np.exp(x)

    def backward(self, gy):
        x = self.inputs[0].data
        return np.exp(x) * gy


def exp(x: Any) -> Variable:
    """e ** x, elementwise."""
    return Exp()(x)


def numerical_diff(f: Callable[[Variable], Variable], x: Variable,
                   eps: float = 1e-4) -> np.ndarray:
    """The central difference (f(x + eps) - f(x - eps)) / 2 eps (step 4)."""
    y0 = f(Variable(as_array(x.data - eps)))
    y1 = f(Variable(as_array(x.data + eps)))
    return (y1.data - y0.data) / (2 * eps)


# -- Arithmetic and the operators (steps 20-22) ------------------------------------------
# Python scalar types and dtype kinds, each ranked: bool < int < float < complex.
_SCALAR_RANK = {bool: 0, int: 1, float: 2, complex: 3}
_KIND_RANK = {'b': 0, 'u': 1, 'i': 1, 'f': 2, 'c': 3}


def _operand(c: Any, x: Variable) -> Any:
    """The other operand of ``x (op) c`` as an ndarray.

    Fix: a Python scalar takes x's dtype when x's kind can hold it, so ``x * 0.5`` stays
    float32 for a float32 x (NumPy 2 would widen it by np.array(0.5)'s float64).
    """
    if isinstance(c, Variable):
        return c
    dtype = as_variable(as_array(x)).dtype
    rank = _SCALAR_RANK.get(type(c))
    if rank is not None and rank <= _KIND_RANK.get(dtype.kind, -1):
        return np.array(c, dtype=dtype)
    return as_array(c)


def sum_to(gx: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a broadcast gradient back to an input's shape with the book's ``utils.sum_to``
    (step 40; Fix: the book's operators here hand a broadcast input a gradient of the
    wrong shape)."""
    return gx if gx.shape == shape else utils.sum_to(gx, shape)


class Add(Function):
    """y = x0 + x1, broadcasting."""

    def forward(self, x0, x1):
        self.x0_shape, self.x1_shape = x0.shape, x1.shape
        return x0 + x1

    def backward(self, gy):
        return sum_to(gy, self.x0_shape), sum_to(gy, self.x1_shape)


def add(x0: Any, x1: Any) -> Variable:
    """x0 + x1 (x0 is the Variable; x1 may be a number or an array)."""
    return Add()(x0, _operand(x1, x0))


class Mul(Function):
    """y = x0 x1, broadcasting;  gx0 = gy x1, gx1 = gy x0."""

    def forward(self, x0, x1):
        return x0 * x1

    def backward(self, gy):
        x0, x1 = self.inputs[0].data, self.inputs[1].data
        return sum_to(gy * x1, x0.shape), sum_to(gy * x0, x1.shape)


def mul(x0: Any, x1: Any) -> Variable:
    """x0 * x1."""
    return Mul()(x0, _operand(x1, x0))


class Neg(Function):
    """y = -x."""

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


def neg(x: Any) -> Variable:
    """-x."""
    return Neg()(x)


class Sub(Function):
    """y = x0 - x1, broadcasting."""

    def forward(self, x0, x1):
        self.x0_shape, self.x1_shape = x0.shape, x1.shape
        return x0 - x1

    def backward(self, gy):
        return sum_to(gy, self.x0_shape), sum_to(-gy, self.x1_shape)


def sub(x0: Any, x1: Any) -> Variable:
    """x0 - x1."""
    return Sub()(x0, _operand(x1, x0))


def rsub(x0: Any, x1: Any) -> Variable:
    """x1 - x0, for ``2.0 - x`` (x0 is the Variable)."""
    return Sub()(_operand(x1, x0), x0)


class Div(Function):
    """y = x0 / x1, broadcasting;  gx0 = gy / x1, gx1 = -gy x0 / x1 ** 2."""

    def forward(self, x0, x1):
        return x0 / x1

    def backward(self, gy):
        x0, x1 = self.inputs[0].data, self.inputs[1].data
        gx0 = gy / x1
        gx1 = gy * (-x0 / x1 ** 2)
        return sum_to(gx0, x0.shape), sum_to(gx1, x1.shape)


def div(x0: Any, x1: Any) -> Variable:
    """x0 / x1."""
    return Div()(x0, _operand(x1, x0))


def rdiv(x0: Any, x1: Any) -> Variable:
    """x1 / x0, for ``1.0 / x`` (x0 is the Variable)."""
    return Div()(_operand(x1, x0), x0)


class Pow(Function):
    """y = x ** c for a constant c."""

    def __init__(self, c: Any) -> None:
        self.c = c

    def forward(self, x):
        return x ** self.c

    def backward(self, gy):
        x = self.inputs[0].data
        c = self.c
        return gy * c * x ** (c - 1)


def pow(x: Any, c: Any) -> Variable:
    """x ** c for a constant c."""
    if isinstance(c, Variable):
        raise TypeError('pow: the exponent must be a constant here (step 22); '
                        'zerograd.core differentiates x ** y for a Variable y too')
    return Pow(_operand(c, x))(x)


def setup_variable() -> None:
    """Bind the operators on Variable (step 20). This module calls it once itself, so
    ``from zerograd.core_simple import Variable`` is ready; calling it again, as the
    book's steps 23-32 do, changes nothing."""
    Variable.__add__ = add
    Variable.__radd__ = add
    Variable.__mul__ = mul
    Variable.__rmul__ = mul
    Variable.__neg__ = neg
    Variable.__sub__ = sub
    Variable.__rsub__ = rsub
    Variable.__truediv__ = div
    Variable.__rtruediv__ = rdiv
    Variable.__pow__ = pow


setup_variable()
