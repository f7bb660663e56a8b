"""Initializers: how a layer draws its weights (``import zerograd.initializers as I``).

An initializer is an object called as ``init(shape, dtype, xp, fan_in=..., fan_out=...)``
that returns a new array of ``shape`` in ``dtype`` (float16, float32 or float64), made
by ``xp`` (``numpy``, or ``cupy`` for a layer created on the GPU). Random ones draw from
the array module's global generator (``np.random`` on the CPU), so ``np.random.seed``
makes them reproducible, as the book's layers are.

>>> import numpy as np
>>> import zerograd.initializers as I
>>> np.random.seed(0)
>>> W = I.HeNormal()((784, 100), np.float32, fan_in=784, fan_out=100)
>>> W.shape, W.dtype
((784, 100), dtype('float32'))

Fans: who tells the initializer which side is the input
--------------------------------------------------------
The variance-scaling initializers (LeCun, Glorot/Xavier, He/Kaiming) need ``fan_in`` and
``fan_out``. A layer knows them and passes them; the shapes alone are ambiguous, because
zerograd keeps the book's layouts, and one of them is the transpose of PyTorch's:

============  ==================  =================  =================
layer         W                   fan_in             fan_out
============  ==================  =================  =================
Linear        (in, out)           in                 out
EmbedID       (in_size, out)      in_size            out
Conv2d        (OC, C, KH, KW)     C KH KW            OC KH KW
Deconv2d      (C, OC, KH, KW)     C KH KW            OC KH KW
============  ==================  =================  =================

So ``HeNormal`` on zerograd's ``Linear(out, in_size=in)`` has the std that PyTorch's
``kaiming_normal_`` gives ``nn.Linear(in, out).weight`` (out, in), and on ``Conv2d`` the
std it gives ``nn.Conv2d``'s weight. Deconv2d differs from PyTorch on purpose: PyTorch
reads the fans of ``ConvTranspose2d``'s (C, OC, KH, KW) weight as if it were a
convolution's (fan_in = OC KH KW); zerograd keeps the book's default, whose fan_in is the
input's C KH KW. Called without fans, an initializer takes them from the shape with
``fans(shape)`` (2-D: Linear's (in, out); more dimensions: Conv2d's (OC, C, ...)).

A layer's bias initializer is called with the layer's fans too (the bias has none of its
own), so ``bias_initializer=LeCunUniform()`` scales by the layer's fan_in.

The layers take, for ``initializer=`` and ``bias_initializer=``: an ``Initializer``, a
name (``'he_normal'``, see ``NAMES``), or a plain callable ``f(shape) -> array`` (its
result must have the shape; the layer casts it to its dtype). For a constant use
``Constant(0.1)``: a bare number is refused, so a misplaced positional argument is not
silently taken for an initializer.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Union

import numpy as np

from zerograd import cuda

Shape = tuple[int, ...]
"""A weight's shape."""

_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


# =============================================================================
# Argument checks (one place, so one mistake gets one error everywhere)
# =============================================================================
def _check_real(owner: str, name: str, value: Any) -> float:
    """A finite real number (an int or a float, not a bool) as a float."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f'{owner}: {name} must be a real number, got {value!r} '
                        f'({type(value).__name__})')
    if not math.isfinite(value):
        raise ValueError(f'{owner}: {name} must be finite, got {value!r}')
    return float(value)


def _check_shape(owner: str, shape: Any) -> Shape:
    """A shape: an int or a tuple of non-negative ints."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, (bool, np.bool_)):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, (bool, np.bool_))
            for d in shape):
        raise TypeError(f'{owner}: shape must be a tuple of ints, got {shape!r}')
    if any(d < 0 for d in shape):
        raise ValueError(f'{owner}: shape must not have a negative size, got {tuple(shape)}')
    return tuple(int(d) for d in shape)


def _check_dtype(owner: str, dtype: Any) -> np.dtype:
    """float16, float32 or float64: weights are floats."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f'{owner}: dtype must be a NumPy float dtype, got {dtype!r}') from None
    if dtype not in _FLOATS:
        raise TypeError(f'{owner}: dtype must be float16, float32 or float64, got {dtype}')
    return dtype


def _check_fan(owner: str, name: str, value: Any) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f'{owner}: {name} must be a positive int, got {value!r} '
                        f'({type(value).__name__})')
    if value <= 0:
        raise ValueError(f'{owner}: {name} must be a positive int, got {value}')
    return int(value)


def _check_choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f'{owner}: {name} must be one of {", ".join(map(repr, choices))}, '
                         f'got {value!r}')
    return value


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape`` in zerograd's layouts: a 2-D shape is
    Linear's (in, out), so (shape[0], shape[1]); a longer one is Conv2d's (OC, C, KH, KW,
    ...), so (C * KH * KW..., OC * KH * KW...). Deconv2d's (C, OC, KH, KW) weight is not
    in this layout: its layer passes its fans itself. ValueError for fewer than two
    dimensions, whose fans are not defined.

    >>> fans((3, 5)), fans((8, 3, 3, 3))
    ((3, 5), (27, 72))
    """
    shape = _check_shape('fans', shape)
    if len(shape) < 2:
        raise ValueError(f'fans: the fans of a shape with fewer than 2 dimensions are not '
                         f'defined, got {shape}; pass fan_in= and fan_out=')
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


_GAINS = ('linear', 'conv1d', 'conv2d', 'conv3d', 'conv_transpose1d', 'conv_transpose2d',
          'conv_transpose3d', 'sigmoid', 'tanh', 'relu', 'leaky_relu', 'selu')


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain PyTorch's ``torch.nn.init.calculate_gain`` recommends for an activation:
    1 for linear, conv and sigmoid, 5/3 for tanh, sqrt(2) for relu,
    sqrt(2 / (1 + param**2)) for leaky_relu (param: its negative slope, 0.01 when None),
    3/4 for selu.

    >>> round(calculate_gain('relu'), 6), calculate_gain('tanh')
    (1.414214, 1.6666666666666667)
    """
    _check_choice('calculate_gain', 'nonlinearity', nonlinearity, _GAINS)
    if nonlinearity == 'tanh':
        return 5.0 / 3
    if nonlinearity == 'relu':
        return math.sqrt(2.0)
    if nonlinearity == 'leaky_relu':
        slope = 0.01 if param is None else _check_real('calculate_gain', 'param', param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == 'selu':
        return 3.0 / 4
    return 1.0


# =============================================================================
# The base class
# =============================================================================
class Initializer:
    """Base class: ``init(shape, dtype=np.float32, xp=np, fan_in=None, fan_out=None)``
    returns a new array of ``shape`` and ``dtype`` made by ``xp``.

    A new initializer subclasses this and writes ``draw``; the checks of shape and dtype
    and the cast are done here.
    """

    def __call__(self, shape: int | tuple[int, ...], dtype: Any = np.float32, xp: Any = np,
                 fan_in: int | None = None, fan_out: int | None = None) -> Any:
        owner = type(self).__name__
        shape = _check_shape(owner, shape)
        dtype = _check_dtype(owner, dtype)
        if fan_in is not None:
            fan_in = _check_fan(owner, 'fan_in', fan_in)
        if fan_out is not None:
            fan_out = _check_fan(owner, 'fan_out', fan_out)
        data = self.draw(shape, dtype, xp, fan_in, fan_out)
        return data.astype(dtype, copy=False)

    def draw(self, shape: Shape, dtype: np.dtype, xp: Any, fan_in: int | None,
             fan_out: int | None) -> Any:
        """The new array (any float dtype; ``__call__`` casts it to ``dtype``)."""
        raise NotImplementedError(f'{type(self).__name__}.draw is not written')

    def _fans(self, shape: Shape, fan_in: int | None, fan_out: int | None) -> tuple[int, int]:
        """The fans given, else those of ``fans(shape)``."""
        if fan_in is None or fan_out is None:
            try:
                shape_in, shape_out = fans(shape)
            except ValueError:
                raise ValueError(f'{type(self).__name__}: needs fan_in and fan_out, and a '
                                 f'shape with fewer than 2 dimensions {shape} has none; pass '
                                 'fan_in= and fan_out=') from None
            fan_in = shape_in if fan_in is None else fan_in
            fan_out = shape_out if fan_out is None else fan_out
        if fan_in <= 0 or fan_out <= 0:
            raise ValueError(f'{type(self).__name__}: fans must be positive, got '
                             f'fan_in={fan_in}, fan_out={fan_out} for shape {shape}')
        return fan_in, fan_out

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in vars(self).items())
        return f'{type(self).__name__}({args})'


def _randn(xp: Any, shape: Shape) -> Any:
    """Standard normal draws of ``shape`` in float64: ``randn``, the book's call, so the
    stream is the book's (NumPy's randn returns a float, not an array, for shape ())."""
    return xp.random.randn(*shape) if shape else xp.asarray(xp.random.randn())


# =============================================================================
# Fixed distributions
# =============================================================================
class Constant(Initializer):
    """Every element ``value``.

    >>> Constant(0.5)((2, 3), np.float64)
    array([[0.5, 0.5, 0.5],
           [0.5, 0.5, 0.5]])
    """

    def __init__(self, value: float = 0.0) -> None:
        self.value = _check_real('Constant', 'value', value)

    def draw(self, shape: Shape, dtype: np.dtype, xp: Any, fan_in: int | None,
             fan_out: int | None) -> Any:
        """An array of ``shape`` filled with ``value``."""
        return xp.full(shape, self.value, dtype=dtype)


class Zeros(Constant):
    """Every element 0 (the book's bias)."""

    def __init__(self) -> None:
        super().__init__(0.0)


class Ones(Constant):
    """Every element 1."""

    def __init__(self) -> None:
        super().__init__(1.0)


class Normal(Initializer):
    """Normal draws with ``mean`` and ``std``; the defaults (0, 1) are PyTorch's
    ``normal_``'s and the book's EmbedID's. Drawn as the book draws: ``randn``, cast to
    the dtype, times ``std`` (then plus ``mean``)."""

    def __init__(self, mean: float = 0.0, std: float = 1.0) -> None:
        self.mean = _check_real('Normal', 'mean', mean)
        self.std = _check_real('Normal', 'std', std)
        if self.std < 0:
            raise ValueError(f'Normal: std must be >= 0, got {std}')

    def draw(self, shape: Shape, dtype: np.dtype, xp: Any, fan_in: int | None,
             fan_out: int | None) -> Any:
        """``randn(*shape) * std + mean`` in ``dtype``."""
        return _scaled_normal(xp, shape, dtype, self.std, self.mean)


def _scaled_normal(xp: Any, shape: Shape, dtype: np.dtype, std: float,
                   mean: float = 0.0) -> Any:
    # The book's order (randn, cast, then scale by a scale in the weights' dtype): the
    # default layers' weights are LeCunNormal's draws bit for bit, and a float64 scale
    # would make float32 weights float64 on NumPy 2.
    data = _randn(xp, shape).astype(dtype) * dtype.type(std)
    if mean:
        data = data + dtype.type(mean)
    return data


class Uniform(Initializer):
    """Uniform draws between low and high (drawn in float64 in [low, high), then cast:
    float32 may round one to high); the defaults (0, 1) are PyTorch's ``uniform_``'s.
    ValueError unless low < high."""

    def __init__(self, low: float = 0.0, high: float = 1.0) -> None:
        self.low = _check_real('Uniform', 'low', low)
        self.high = _check_real('Uniform', 'high', high)
        if not self.low < self.high:
            raise ValueError(f'Uniform: low must be less than high, got low={low}, '
                             f'high={high}')

    def draw(self, shape: Shape, dtype: np.dtype, xp: Any, fan_in: int | None,
             fan_out: int | None) -> Any:
        """``uniform(low, high, shape)``, drawn in float64."""
        return xp.random.uniform(self.low, self.high, shape)


# =============================================================================
# Variance scaling: std from the fans
# =============================================================================
class _VarianceScaling(Initializer):
    """Zero-mean draws of variance ``scale / fan``: normal, or uniform in
    [-sqrt(3 variance), sqrt(3 variance)) (the uniform law of that variance)."""

    distribution = 'normal'

    def _variance(self, fan_in: int, fan_out: int) -> float:
        raise NotImplementedError

    def draw(self, shape: Shape, dtype: np.dtype, xp: Any, fan_in: int | None,
             fan_out: int | None) -> Any:
        """Draws of the variance the fans give (see the class)."""
        variance = self._variance(*self._fans(shape, fan_in, fan_out))
        if self.distribution == 'normal':
            return _scaled_normal(xp, shape, dtype, np.sqrt(variance))
        bound = math.sqrt(3.0 * variance)
        return xp.random.uniform(-bound, bound, shape)


class LeCunNormal(_VarianceScaling):
    """Normal, std sqrt(1 / fan_in): the book's default for Linear and Conv2d (the same
    draws bit for bit), right for tanh-like and SELU networks (LeCun et al. 1998)."""

    def _variance(self, fan_in: int, fan_out: int) -> float:
        return 1 / fan_in


class LeCunUniform(LeCunNormal):
    """Uniform in +-sqrt(3 / fan_in): LeCunNormal's variance."""

    distribution = 'uniform'


class GlorotNormal(_VarianceScaling):
    """Normal, std gain * sqrt(2 / (fan_in + fan_out)) (Glorot and Bengio 2010); PyTorch's
    ``xavier_normal_``."""

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = _check_real(type(self).__name__, 'gain', gain)

    def _variance(self, fan_in: int, fan_out: int) -> float:
        return self.gain ** 2 * 2.0 / (fan_in + fan_out)


class GlorotUniform(GlorotNormal):
    """Uniform in +-gain * sqrt(6 / (fan_in + fan_out)); PyTorch's ``xavier_uniform_``."""

    distribution = 'uniform'


class HeNormal(_VarianceScaling):
    """Normal, std gain / sqrt(fan), gain = ``calculate_gain(nonlinearity, a)`` (He et al.
    2015); PyTorch's ``kaiming_normal_`` with the same defaults: a=0, mode='fan_in' (keeps
    the forward pass's variance; 'fan_out' the backward's), nonlinearity='leaky_relu',
    whose gain with a=0 is relu's, sqrt(2)."""

    def __init__(self, a: float = 0.0, mode: str = 'fan_in',
                 nonlinearity: str = 'leaky_relu') -> None:
        owner = type(self).__name__
        self.a = _check_real(owner, 'a', a)
        self.mode = _check_choice(owner, 'mode', mode, ('fan_in', 'fan_out'))
        self.nonlinearity = _check_choice(owner, 'nonlinearity', nonlinearity, _GAINS)
        self.gain = calculate_gain(nonlinearity, self.a)

    def _variance(self, fan_in: int, fan_out: int) -> float:
        return self.gain ** 2 / (fan_in if self.mode == 'fan_in' else fan_out)


class HeUniform(HeNormal):
    """Uniform in +-gain * sqrt(3 / fan); PyTorch's ``kaiming_uniform_`` (same arguments
    as HeNormal)."""

    distribution = 'uniform'


# PyTorch's names beside the papers' authors'.
XavierNormal = GlorotNormal
XavierUniform = GlorotUniform
KaimingNormal = HeNormal
KaimingUniform = HeUniform


# =============================================================================
# Orthogonal
# =============================================================================
class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix times ``gain`` (Saxe et al. 2014), as PyTorch's
    ``orthogonal_``: W viewed as (shape[0], rest) has orthonormal columns when it is tall,
    orthonormal rows when it is wide. The QR factor of normal draws, its signs fixed so it
    is uniformly distributed. ValueError for fewer than 2 dimensions."""

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = _check_real('Orthogonal', 'gain', gain)

    def draw(self, shape: Shape, dtype: np.dtype, xp: Any, fan_in: int | None,
             fan_out: int | None) -> Any:
        """The gain times an orthogonal matrix, reshaped to ``shape``."""
        if len(shape) < 2:
            raise ValueError(f'Orthogonal: needs a shape of at least 2 dimensions, got '
                             f'{shape}')
        rows = shape[0]
        cols = math.prod(shape[1:])
        if rows == 0 or cols == 0:
            return xp.zeros(shape, dtype=np.float64)
        a = _randn(xp, (rows, cols))
        if rows < cols:
            a = a.T
        # Signs of R's diagonal moved into Q: Q is then unique, and uniformly distributed.
        if getattr(xp, 'linalg', None) is None:  # the strict stand-in: QR in NumPy
            q, r = np.linalg.qr(cuda.as_numpy(a))
            q = xp.asarray(q * np.sign(np.diagonal(r)))
        else:
            q, r = xp.linalg.qr(a)
            q = q * xp.sign(xp.diagonal(r))
        if rows < cols:
            q = q.T
        return (q * self.gain).reshape(shape)


# =============================================================================
# What layers accept
# =============================================================================
NAMES: dict[str, Callable[[], Initializer]] = {
    'zeros': Zeros, 'ones': Ones, 'normal': Normal, 'uniform': Uniform,
    'lecun_normal': LeCunNormal, 'lecun_uniform': LeCunUniform,
    'glorot_normal': GlorotNormal, 'glorot_uniform': GlorotUniform,
    'xavier_normal': XavierNormal, 'xavier_uniform': XavierUniform,
    'he_normal': HeNormal, 'he_uniform': HeUniform,
    'kaiming_normal': KaimingNormal, 'kaiming_uniform': KaimingUniform,
    'orthogonal': Orthogonal,
}
"""The names a layer takes for an initializer, each made with its defaults."""


InitializerLike = Union[Initializer, str, Callable[[Shape], Any]]
"""What a layer's ``initializer=`` and ``bias_initializer=`` take (see ``get``)."""


class _FromCallable(Initializer):
    """A plain callable ``f(shape) -> array`` as an Initializer: its result is checked
    for the shape, cast to the dtype and put on ``xp``."""

    def __init__(self, function: Callable[[Shape], Any]) -> None:
        self.function = function

    def draw(self, shape: Shape, dtype: np.dtype, xp: Any, fan_in: int | None,
             fan_out: int | None) -> Any:
        data = self.function(shape)
        name = getattr(self.function, '__name__', repr(self.function))
        if not hasattr(data, 'shape') or not hasattr(data, 'dtype'):
            raise TypeError(f'initializer {name}: must return an array, got '
                            f'{type(data).__name__}')
        if tuple(data.shape) != shape:
            raise ValueError(f'initializer {name}: returned shape {tuple(data.shape)}, '
                             f'expected {shape}')
        if data.dtype.kind not in 'fiu':
            raise TypeError(f'initializer {name}: returned {data.dtype}, expected real '
                            'numbers')
        if cuda.get_array_module(data) is not xp:
            data = xp.asarray(cuda.as_numpy(data)) if xp is not np else cuda.as_numpy(data)
        return data

    def __repr__(self) -> str:
        return repr(self.function)


def get(initializer: InitializerLike, owner: str = 'get',
        name: str = 'initializer') -> Initializer:
    """The Initializer a layer uses for ``initializer``: an Initializer as is; a name of
    ``NAMES`` made with its defaults; a plain callable ``f(shape) -> array`` wrapped.
    TypeError for anything else (a bare number included: use ``Constant(value)``),
    ValueError for an unknown name; ``owner`` and ``name`` say who asked, for the error.

    >>> get('he_normal')
    HeNormal(a=0.0, mode='fan_in', nonlinearity='leaky_relu', gain=1.4142135623730951)
    """
    if isinstance(initializer, Initializer):
        return initializer
    if isinstance(initializer, str):
        if initializer not in NAMES:
            raise ValueError(f'{owner}: unknown {name} {initializer!r}; the names are '
                             f'{", ".join(sorted(NAMES))}')
        return NAMES[initializer]()
    if isinstance(initializer, type) and issubclass(initializer, Initializer):
        raise TypeError(f'{owner}: {name} must be an Initializer object, got the class '
                        f'{initializer.__name__}; write {initializer.__name__}()')
    if isinstance(initializer, numbers.Number):
        raise TypeError(f'{owner}: {name} must be an Initializer, a name or a callable '
                        f'f(shape) -> array, got the number {initializer!r}; for a constant '
                        f'write initializers.Constant({initializer!r})')
    if callable(initializer):
        return _FromCallable(initializer)
    raise TypeError(f'{owner}: {name} must be an Initializer, a name such as '
                    f"'he_normal' or a callable f(shape) -> array, got {initializer!r} "
                    f'({type(initializer).__name__})')
