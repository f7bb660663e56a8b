"""A strict stand-in for CuPy: test the GPU code paths on a machine without a GPU.

On a GPU, zerograd's data are CuPy arrays, and every op must compute with the array module
of its data (``xp = cuda.get_array_module(x)``). A stray ``np.exp(x)`` or a NumPy index
array mixed with device data goes unnoticed on the CPU and fails, or silently copies to the
host, only on a GPU machine. This module catches such leaks anywhere:

* ``StrictArray``: a NumPy array playing a device array. Its operators, its methods and
  the functions of ``strict`` compute with NumPy and return StrictArrays (reductions give
  0-d arrays, as CuPy's do), and Python and NumPy scalars mix with it freely, as with
  CuPy. But it refuses, with a ``TypeError`` naming the operation:

  - to meet a plain ``numpy.ndarray`` (``x + np.ones(3)``, ``x[np.arange(2)]``,
    ``x[...] = a``): device data never mixes with host arrays;
  - to be handed to a NumPy function or ufunc (``np.exp(x)``, ``np.concatenate([x])``,
    ``np.add.at(x, ...)``): that computation would leave the device.

* ``strict``: a module with the part of CuPy's API that zerograd uses (``asarray``,
  ``zeros``, ``random.randn``, ``lib.stride_tricks``, ``asnumpy``, ``cuda.runtime``, ...)
  and ``strict.cupyx.scatter_add``.

* ``use_strict_device()``: inside it, zerograd takes ``strict`` for CuPy: ``to_gpu()``,
  ``cuda.as_cupy`` and ``DataLoader(gpu=True)`` make StrictArrays, and
  ``cuda.get_array_module`` answers ``strict`` for them.

>>> import numpy as np
>>> import zerograd.functions as F
>>> from zerograd import Variable, cuda
>>> with use_strict_device():
...     x = Variable(np.array([1.0, 2.0]))
...     x.to_gpu()
...     y = F.exp(x)
...     type(y.data).__name__, cuda.get_array_module(y) is strict
('StrictArray', True)

Known gap: ``np.asarray(x)`` and ``np.array(x)`` give a host copy without complaint (NumPy
offers subclasses no hook there; CuPy raises). Using that copy with device data again is
caught, and so is a host array where a device one is expected (tests check the types).
"""
from __future__ import annotations

import contextlib
import numbers
import types
from typing import Any, Callable, Iterator

import numpy as np

from zerograd import cuda

_HINT = ('use the array module of the data (xp = cuda.get_array_module(x)) or move the '
         'array with cuda.as_cupy / cuda.as_numpy')


def _refuse_host_array(a: np.ndarray, where: str) -> TypeError:
    return TypeError(f'strict device check: {where} mixes a device array with a NumPy '
                     f'array of shape {a.shape} and dtype {a.dtype}; {_HINT}')


def _unwrap(obj: Any, where: str) -> Any:
    """The NumPy view behind a StrictArray (recursing into lists, tuples and dicts);
    scalars, slices and other objects as they are; a plain ndarray is an error."""
    if isinstance(obj, StrictArray):
        return obj.view(np.ndarray)
    if isinstance(obj, np.ndarray):
        raise _refuse_host_array(obj, where)
    if type(obj) in (list, tuple):
        return type(obj)(_unwrap(item, where) for item in obj)
    if type(obj) is dict:
        return {key: _unwrap(value, where) for key, value in obj.items()}
    return obj


def _wrap(result: Any) -> Any:
    """NumPy results as StrictArrays; a NumPy scalar becomes a 0-d array, as on CuPy."""
    if isinstance(result, np.ndarray):
        return result.view(StrictArray)
    if isinstance(result, np.generic):
        return np.asarray(result).view(StrictArray)
    if type(result) in (list, tuple):
        return type(result)(_wrap(item) for item in result)
    return result


def _is_operand(other: Any) -> bool:
    """What a StrictArray computes with: device arrays, Python and NumPy scalars, and host
    arrays (only to refuse them with a clear message)."""
    return isinstance(other, (np.ndarray, numbers.Number, np.generic))


def _binary(ufunc: np.ufunc, reflected: bool = False) -> Callable:
    def operator(self, other):
        if not _is_operand(other):
            return NotImplemented  # e.g. a Variable: its reflected operator takes over
        where = f'the operator {ufunc.__name__}'
        a, b = _unwrap(self, where), _unwrap(other, where)
        return _wrap(ufunc(b, a) if reflected else ufunc(a, b))
    return operator


def _inplace(ufunc: np.ufunc) -> Callable:
    def operator(self, other):
        if not _is_operand(other):
            return NotImplemented
        where = f'the in-place operator {ufunc.__name__}'
        base = _unwrap(self, where)
        ufunc(base, _unwrap(other, where), out=base)
        return self
    return operator


def _unary(ufunc: np.ufunc) -> Callable:
    def operator(self):
        return _wrap(ufunc(self.view(np.ndarray)))
    return operator


def _method(name: str) -> Callable:
    numpy_method = getattr(np.ndarray, name)

    def method(self, *args, **kwargs):
        where = f'StrictArray.{name}'
        return _wrap(numpy_method(self.view(np.ndarray), *_unwrap(args, where),
                                  **_unwrap(kwargs, where)))
    method.__name__ = name
    # Our own docstring: NumPy's would be inherited, with references to its own docs.
    method.__doc__ = f'``ndarray.{name}`` computed on the NumPy view; gives a StrictArray.'
    return method


class StrictArray(np.ndarray):
    """A NumPy array that stands for a device (CuPy) array; see the module docstring.
    Make one with ``strict.asarray(a)``; ``x.get()`` gives a NumPy copy, as CuPy's does."""

    # -- refusing NumPy's own functions on device data
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == '__call__' and not kwargs and len(inputs) == 2 \
                and isinstance(inputs[0], np.generic) and inputs[1] is self:
            # ``np.float32(2) - x``: NumPy's scalar operator calls the ufunc, and CuPy
            # answers it; explicit calls of a NumPy function still fail below.
            return _wrap(ufunc(inputs[0], self.view(np.ndarray)))
        name = ufunc.__name__ if method == '__call__' else f'{ufunc.__name__}.{method}'
        raise TypeError(f'strict device check: numpy.{name} was applied to a device array '
                        f'(a host computation on GPU data); {_HINT}')

    def __array_function__(self, func, relevant_types, args, kwargs):
        if func in (np.shape, np.ndim, np.size):  # metadata, not a computation
            return func(*_unwrap(args, func.__name__), **_unwrap(kwargs, func.__name__))
        raise TypeError(f'strict device check: numpy.{func.__name__} was applied to a device '
                        f'array (a host computation on GPU data); {_HINT}')

    # -- CuPy's transfer method
    def get(self) -> np.ndarray:
        """A NumPy copy (device to host)."""
        return self.view(np.ndarray).copy()

    # -- indexing: index arrays and values must be on the device too
    def __getitem__(self, key):
        return _wrap(self.view(np.ndarray)[_unwrap(key, 'indexing')])

    def __setitem__(self, key, value):
        where = 'assignment by index'
        self.view(np.ndarray)[_unwrap(key, where)] = _unwrap(value, where)

    def __iter__(self) -> Iterator[StrictArray]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return repr(self.view(np.ndarray))

    def __str__(self) -> str:
        return str(self.view(np.ndarray))

    __add__, __radd__, __iadd__ = _binary(np.add), _binary(np.add, True), _inplace(np.add)
    __sub__, __rsub__, __isub__ = (_binary(np.subtract), _binary(np.subtract, True),
                                   _inplace(np.subtract))
    __mul__, __rmul__, __imul__ = (_binary(np.multiply), _binary(np.multiply, True),
                                   _inplace(np.multiply))
    __truediv__, __rtruediv__, __itruediv__ = (_binary(np.true_divide),
                                               _binary(np.true_divide, True),
                                               _inplace(np.true_divide))
    __floordiv__, __rfloordiv__ = _binary(np.floor_divide), _binary(np.floor_divide, True)
    __mod__, __rmod__ = _binary(np.remainder), _binary(np.remainder, True)
    __pow__, __rpow__, __ipow__ = (_binary(np.power), _binary(np.power, True),
                                   _inplace(np.power))
    __matmul__, __rmatmul__ = _binary(np.matmul), _binary(np.matmul, True)
    __and__, __rand__, __iand__ = (_binary(np.bitwise_and), _binary(np.bitwise_and, True),
                                   _inplace(np.bitwise_and))
    __or__, __ror__, __ior__ = (_binary(np.bitwise_or), _binary(np.bitwise_or, True),
                                _inplace(np.bitwise_or))
    __xor__, __rxor__ = _binary(np.bitwise_xor), _binary(np.bitwise_xor, True)
    __lt__, __le__ = _binary(np.less), _binary(np.less_equal)
    __gt__, __ge__ = _binary(np.greater), _binary(np.greater_equal)
    __eq__, __ne__ = _binary(np.equal), _binary(np.not_equal)
    __hash__ = None
    __neg__, __pos__ = _unary(np.negative), _unary(np.positive)
    __abs__, __invert__ = _unary(np.absolute), _unary(np.invert)


# NumPy's reductions (and a few other methods) call ufuncs inside, which a StrictArray
# refuses: they are computed on the NumPy view instead, and give StrictArrays.
for _name in ('sum', 'prod', 'mean', 'var', 'std', 'max', 'min', 'argmax', 'argmin', 'all',
              'any', 'cumsum', 'clip', 'dot', 'round', 'nonzero'):
    setattr(StrictArray, _name, _method(_name))
del _name


# =============================================================================
# The module that plays CuPy
# =============================================================================
def _function(numpy_function: Callable, name: str | None = None) -> Callable:
    """numpy_function on the NumPy views of StrictArrays, refusing plain ndarrays; the
    results as StrictArrays (``out=`` writes into the device array it names)."""
    name = name or numpy_function.__name__

    def function(*args, **kwargs):
        where = f'strict.{name}'
        return _wrap(numpy_function(*_unwrap(args, where), **_unwrap(kwargs, where)))
    function.__name__ = name
    function.__doc__ = f'CuPy-like ``{name}`` on StrictArrays (NumPy underneath).'
    return function


def _from_host(numpy_function: Callable) -> Callable:
    """A constructor that accepts host arrays (a host-to-device copy, as cupy.asarray
    does) as well as device arrays and Python data."""
    def function(a, *args, **kwargs):
        if isinstance(a, StrictArray):
            a = a.view(np.ndarray)
        elif isinstance(a, np.ndarray):
            a = a.copy()  # device memory is never the host's: no aliasing
        return _wrap(numpy_function(a, *args, **kwargs))
    function.__name__ = numpy_function.__name__
    return function


def _asnumpy(a: Any) -> np.ndarray:
    """A NumPy copy of a device array (host arrays and scalars as NumPy arrays)."""
    if isinstance(a, StrictArray):
        return a.get()
    return np.asarray(a)


def _scatter_add(a: StrictArray, slices: Any, value: Any) -> None:
    """``cupyx.scatter_add``: ``a[slices] += value``, adding at every repeat of an index;
    with CuPy's dtype limits when an index array is involved."""
    if not isinstance(a, StrictArray):
        raise TypeError(f'strict.cupyx.scatter_add: a must be a device array, got '
                        f'{type(a).__name__}')
    items = slices if isinstance(slices, tuple) else (slices,)
    advanced = any(isinstance(s, (np.ndarray, list)) for s in items)
    if advanced and a.dtype not in _SCATTER_ADD_DTYPES:
        raise TypeError(f'scatter_add supports {sorted(str(d) for d in _SCATTER_ADD_DTYPES)} '
                        f'with index arrays, got {a.dtype} (as CuPy)')
    where = 'strict.cupyx.scatter_add'
    np.add.at(a.view(np.ndarray), _unwrap(slices, where), _unwrap(value, where))


_SCATTER_ADD_DTYPES = {np.dtype(t) for t in (np.float16, np.float32, np.float64, np.int32,
                                             np.uint32, np.uint64)}

_FUNCTIONS = [
    # creation
    'zeros', 'ones', 'empty', 'full', 'zeros_like', 'ones_like', 'empty_like', 'full_like',
    'eye', 'identity', 'arange', 'linspace',
    # shape and joining
    'reshape', 'transpose', 'swapaxes', 'moveaxis', 'expand_dims', 'squeeze', 'ravel',
    'broadcast_to', 'concatenate', 'stack', 'vstack', 'hstack', 'split', 'tile', 'repeat',
    'pad', 'flip',
    # elementwise and reductions
    'add', 'subtract', 'multiply', 'divide', 'true_divide', 'negative', 'power', 'square',
    'sqrt', 'exp', 'expm1', 'log', 'log1p', 'log2', 'log10', 'sin', 'cos', 'tan', 'tanh',
    'arctan', 'abs', 'absolute', 'sign', 'maximum', 'minimum', 'clip', 'where', 'floor',
    'ceil', 'rint', 'around', 'equal', 'not_equal', 'greater', 'greater_equal', 'less',
    'less_equal', 'logical_and', 'logical_or', 'logical_not', 'isfinite', 'isnan', 'isinf',
    'sum', 'prod', 'mean', 'var', 'std', 'max', 'min', 'amax', 'amin', 'argmax', 'argmin',
    'cumsum', 'all', 'any', 'count_nonzero', 'allclose', 'array_equal', 'unique', 'sort',
    'argsort', 'take', 'nonzero',
    # linear algebra
    'dot', 'matmul', 'tensordot', 'einsum', 'outer',
    # in place
    'copyto',
]
_CONSTANTS = ['float16', 'float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8',
              'uint16', 'uint32', 'uint64', 'bool_', 'intp', 'dtype', 'newaxis', 'inf', 'nan',
              'pi', 'e', 'finfo', 'iinfo', 'result_type', 'can_cast', 'isscalar', 'ndim',
              'shape', 'size']


def _make_random() -> types.SimpleNamespace:
    # A generator of its own, as CuPy has: device draws never consume NumPy's global stream.
    state = np.random.RandomState(0)
    return types.SimpleNamespace(
        seed=lambda seed=None: state.seed(seed),
        rand=lambda *shape: _wrap(np.asarray(state.rand(*shape))),
        randn=lambda *shape: _wrap(np.asarray(state.randn(*shape))),
        random=lambda size=None: _wrap(np.asarray(state.random_sample(size))),
        uniform=lambda low=0.0, high=1.0, size=None: _wrap(
            np.asarray(state.uniform(low, high, size))),
        normal=lambda loc=0.0, scale=1.0, size=None: _wrap(
            np.asarray(state.normal(loc, scale, size))),
        randint=lambda low, high=None, size=None: _wrap(
            np.asarray(state.randint(low, high, size))),
        permutation=lambda n: _wrap(state.permutation(_unwrap(n, 'strict.random'))),
    )


def _make_cuda() -> types.SimpleNamespace:
    properties = {'name': b'strict stand-in (NumPy on the CPU)', 'totalGlobalMem': 0}
    runtime = types.SimpleNamespace(getDeviceCount=lambda: 1,
                                    getDeviceProperties=lambda device: dict(properties))

    class Device:
        def __init__(self, device: int = 0) -> None:
            self.id = device

        def synchronize(self) -> None:
            pass

    return types.SimpleNamespace(runtime=runtime, Device=Device)


def _make_module() -> types.ModuleType:
    module = types.ModuleType('zerograd.testing_strict.strict',
                              'A NumPy-backed stand-in for CuPy whose arrays refuse host data.')
    module.__version__ = f'strict stand-in (NumPy {np.__version__})'
    module.ndarray = StrictArray
    for name in _FUNCTIONS:
        setattr(module, name, _function(getattr(np, name), name))
    for name in _CONSTANTS:
        setattr(module, name, getattr(np, name))
    module.array = _from_host(np.array)
    module.asarray = _from_host(np.asarray)
    module.ascontiguousarray = _from_host(np.ascontiguousarray)
    module.asnumpy = _asnumpy
    module.get_array_module = lambda *args: module if any(
        isinstance(a, StrictArray) for a in args) else np
    module.random = _make_random()
    module.lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(
        sliding_window_view=_function(np.lib.stride_tricks.sliding_window_view),
        as_strided=_function(np.lib.stride_tricks.as_strided)))
    module.cuda = _make_cuda()
    module.cupyx = types.SimpleNamespace(scatter_add=_scatter_add)
    return module


strict = _make_module()


@contextlib.contextmanager
def use_strict_device() -> Iterator[types.ModuleType]:
    """Inside the block, ``strict`` plays CuPy for zerograd (``to_gpu``, ``as_cupy``,
    ``get_array_module``, ``DataLoader(gpu=True)``); yields ``strict``."""
    previous = cuda._stand_in
    cuda._stand_in = strict
    try:
        yield strict
    finally:
        cuda._stand_in = previous
