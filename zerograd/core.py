"""The define-by-run core: Config, Variable, Function, the backward engine.

This is the file the book builds in steps 1-36 (``core_simple.py`` is its plain form for
steps 1-32, and the oracle this file's fast paths are tested against). Read it top to bottom:

1. Config and its context managers (``no_grad``, ``test_mode``).
2. ``Variable``: a box around an ndarray, with its gradient and its creator.
3. ``backward``: walks the recorded graph from an output, newest function first.
4. ``Function``: runs ``forward`` on arrays and records itself as the outputs' creator.

The arithmetic Functions behind ``+ - * / **`` and the table binding them to Variable (the
book's ``setup_variable``, step 20) are in ``arithmetic.py``, next to this file.
"""
from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import weakref
from typing import Any, Iterator

import numpy as np

import zerograd  # for zerograd.functions / zerograd.cuda at call time (they import core)
from zerograd.release import release_unread


# =============================================================================
# Config
# =============================================================================
class _ConfigState(threading.local):
    """Per-thread switches: one thread's ``no_grad()`` never affects another's."""
    enable_backprop = True
    train = True


_config = _ConfigState()
_CONFIG_NAMES = ('enable_backprop', 'train')


def _check_setting(who: str, name: str, error: type) -> None:
    if name not in _CONFIG_NAMES:
        raise error(f'{who} {name!r}; the settings are {_CONFIG_NAMES}')


class _ConfigMeta(type):
    # Reading or writing ``Config.enable_backprop`` goes to the calling thread's state.
    def __getattr__(cls, name: str) -> Any:
        _check_setting('Config has no setting', name, AttributeError)
        return getattr(_config, name)

    def __setattr__(cls, name: str, value: Any) -> None:
        _check_setting('Config has no setting', name, AttributeError)
        setattr(_config, name, value)


class Config(metaclass=_ConfigMeta):
    """Global switches, per thread: ``Config.enable_backprop`` (record graphs, default True)
    and ``Config.train`` (training mode for dropout and batch norm, default True)."""


@contextlib.contextmanager
def using_config(name: str, value: Any) -> Iterator[None]:
    """Set ``Config.<name>`` to ``value`` inside a ``with`` block, then restore it."""
    _check_setting('using_config: unknown setting', name, ValueError)
    old_value = getattr(_config, name)
    setattr(_config, name, value)
    try:
        yield
    finally:
        setattr(_config, name, old_value)


def no_grad() -> contextlib.AbstractContextManager:
    """``with no_grad():`` computes values only; no graph is recorded."""
    return using_config('enable_backprop', False)


def test_mode() -> contextlib.AbstractContextManager:
    """``with test_mode():`` switches dropout and batch norm to inference behaviour."""
    return using_config('train', False)


# =============================================================================
# Variable
# =============================================================================
def _is_array(obj: Any) -> bool:
    """True for a NumPy ndarray, or a CuPy one (checked by module, so CuPy is not imported)."""
    return isinstance(obj, np.ndarray) or type(obj).__module__.startswith('cupy')


# The dtype kinds a Variable may hold: bool, signed and unsigned int, float, complex.
# Object, string, bytes, void and datetime arrays are not numbers to differentiate
# (``Variable(np.array([1, 'a'], object)) * 2`` would give ``[2, 'aa']``).
_NUMERIC_KINDS = 'biufc'


def _not_numeric(who: str, dtype: Any, what: str = 'data') -> TypeError:
    return TypeError(f'{who}: {what} must have a numeric dtype (bool, int, uint, float or '
                     f'complex), got {dtype}; convert it with .astype(np.float32)')


def _no_data(who: str) -> TypeError:
    """The error for computing with ``Variable(None)``, a Variable that holds no array."""
    return TypeError(f'{who}: an input is a Variable without data (Variable(None)); give '
                     'it an array (v.data = np.array(...)) before computing with it')


def _array_attribute(name: str) -> property:
    """A read-only property passing on ``data.<name>``. Of ``Variable(None)`` it raises an
    AttributeError that says so (so hasattr() stays False), instead of one about NoneType."""
    def read(self: Variable) -> Any:
        try:
            return getattr(self.data, name)
        except AttributeError:
            raise AttributeError(f'Variable{self._label()}.{name}: a Variable without data '
                                 f'(Variable(None)) has no {name}; give it an array first'
                                 ) from None
    return property(read, doc=f'``data.{name}``')


class Variable:
    """A box around an ndarray that remembers how it was computed.

    data: an ndarray of any shape (NumPy, or CuPy on a GPU), or None.
    grad: None, or a Variable of the same shape after ``backward()``.
    creator: the Function that produced this variable (None for a leaf).
    generation: 0 for a leaf, creator's generation + 1 otherwise.
    Its operators (``+ - * / ** @ []``) are bound at the end of this file.

    >>> x = Variable(np.array(3.0))
    >>> y = x * x
    >>> y.backward()
    >>> x.grad
    variable(6.0)
    """
    __slots__ = ('data', 'name', '_grad', 'creator', 'generation', '__weakref__')
    # ndarray (op) Variable defers to Variable's reflected operator, so it yields a Variable.
    __array_ufunc__ = None
    __array_priority__ = 200

    def __init__(self, data: Any, name: str | None = None) -> None:
        if type(data) is np.ndarray or (data is not None and _is_array(data)):
            if data.dtype.kind not in _NUMERIC_KINDS:
                raise _not_numeric('Variable', data.dtype)
        elif data is not None:
            raise TypeError(f'Variable: data must be an ndarray or None, got {type(data)}; '
                            f'wrap it with np.array({data!r})')
        self.data = data
        self.name = name
        self._grad = None
        self.creator = None
        self.generation = 0

    # -- the gradient: checked when set by hand, so a wrong shape is caught where it is made
    @property
    def grad(self) -> Variable | None:
        """The gradient (a Variable of data's shape) after backward; None before."""
        return self._grad

    @grad.setter
    def grad(self, value: Any) -> None:
        if value is not None:
            if not isinstance(value, Variable):
                value = Variable(value)
            if self.data is not None and value.shape != self.data.shape:
                raise ValueError(f'Variable{self._label()}: grad must have the shape of data '
                                 f'{self.data.shape}, got {value.shape}')
        self._grad = value

    def _label(self) -> str:
        return f' {self.name!r}' if self.name is not None else ''

    # -- array-like properties
    shape = _array_attribute('shape')
    ndim = _array_attribute('ndim')
    size = _array_attribute('size')
    dtype = _array_attribute('dtype')

    def __len__(self) -> int:
        if self.data is None:
            raise TypeError(f'Variable{self._label()}: a Variable without data '
                            '(Variable(None)) has no length')
        return len(self.data)

    def __repr__(self) -> str:
        if getattr(self, 'data', None) is None:
            return 'variable(None)'
        text = str(self.data).replace('\n', '\n' + ' ' * 9)
        return f'variable({text})'

    # -- PyTorch's Python numbers, and Jupyter's picture of the graph
    def item(self) -> Any:
        """A one-element Variable's value (any shape of size 1) as a Python number."""
        if self.size != 1:  # Variable(None): size's AttributeError says so
            raise ValueError(f'Variable{self._label()}.item: only a one-element Variable is '
                             f'one number, got shape {self.shape}; use .data for the array')
        return self.data.item()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())  # toward zero, as int(-2.7) and PyTorch's

    def _repr_svg_(self) -> str | None:
        """The graph behind this Variable as SVG, or None (see ``summary.graph_svg``)."""
        from zerograd.summary import graph_svg  # at call time: summary imports layers
        return graph_svg(self)

    # -- the graph
    def set_creator(self, func: Function) -> None:
        """Record ``func`` as the function that produced this variable."""
        self.creator = func
        self.generation = func.generation + 1

    def cleargrad(self) -> None:
        """Forget the gradient (call before a new backward, or it accumulates)."""
        self._grad = None

    def unchain(self) -> None:
        """Cut the link to the creator: this variable becomes a leaf."""
        self.creator = None

    def unchain_backward(self) -> None:
        """Cut the graph behind this variable: every variable it was computed from becomes
        a leaf, so backward stops there (truncated backprop through time). This variable
        keeps its own creator."""
        funcs = [] if self.creator is None else [self.creator]
        seen = set(funcs)
        while funcs:
            for x in funcs.pop().inputs:
                if x.creator is not None:
                    if x.creator not in seen:
                        seen.add(x.creator)
                        funcs.append(x.creator)
                    x.unchain()

    def backward(self, retain_grad: bool = False, create_graph: bool = False) -> None:
        """Compute the gradient of this variable with respect to every leaf behind it.

        The gradient of a non-scalar output is that of its sum (grad seeded with ones).
        retain_grad: keep the grads of intermediate variables too (default: leaves only).
        create_graph: record the backward computation, so grads can be differentiated again.
        The recorded grad refers back to the variables it was computed from: a reference
        cycle (as in any framework), freed by Python's cyclic collector, or at once by
        ``cleargrad()``.
        """
        if self.data is None:
            raise TypeError(f'Variable{self._label()}.backward: this Variable has no data '
                            '(Variable(None)), so there is nothing to differentiate')
        if self._grad is None:
            xp = zerograd.cuda.get_array_module(self.data)
            self._grad = Variable(xp.ones_like(self.data))
        if self.creator is None:
            return  # a leaf: its gradient with respect to itself is ones

        # Functions wait in a heap keyed on (-generation, insertion order): the newest
        # function comes out first, each is run once, and no list is ever re-sorted.
        # A function whose backward finds exactly one new creator while the heap is empty
        # hands it straight on, without the heap: that is every step of a chain (step 4).
        f = self.creator
        seen = {f}
        heap = []
        order = itertools.count()
        # The sums this pass made (x.grad + gx, in _accumulate) are shared with no one, so
        # later gradients of the same variable are added into them in place: one new array
        # per variable, not one per use (a weight used at every step of an RNN). Not when
        # the pass is recorded (create_graph), and a sum stops being ours once it is handed
        # to a backward as gy (which may return it as an input's gradient).
        owned = set()

        old_enable_backprop = _config.enable_backprop
        _config.enable_backprop = create_graph  # record the backward pass only if asked
        try:
            while f is not None:
                # 1. the upstream gradients, and 2. the function's own backward, checked
                outputs, gxs = _run_backward(f, owned)
                follow = follow_order = None
                if gxs is not None:
                    inputs = f._inputs
                    if type(inputs) is not list:
                        inputs = (inputs,)
                    for i in range(len(inputs)):
                        if gxs[i] is None:
                            continue
                        x = inputs[i]
                        # 3. accumulate into the input's grad
                        _accumulate(f, i, x, gxs[i], owned, create_graph)
                        # 4. the chain hand-off: the first new creator is kept aside to
                        #    run next; its place in the heap order is reserved now
                        #    (follow_order), so if others wait when f is done it joins
                        #    them exactly where a plain heap walk would have put it.
                        creator = x.creator
                        if creator is not None and creator not in seen:
                            seen.add(creator)
                            if follow is None:
                                follow, follow_order = creator, next(order)
                            else:
                                heapq.heappush(heap, (-creator.generation, next(order), creator))
                    # 5. free the outputs' grads unless the caller wants them
                    if not retain_grad:
                        for y in outputs:
                            if y is not None:
                                y._grad = None
                # 6. the next function: the newest one waiting
                if follow is None:
                    f = heapq.heappop(heap)[2] if heap else None
                elif heap:
                    f = heapq.heappushpop(heap, (-follow.generation, follow_order, follow))[2]
                else:
                    f = follow
        finally:
            _config.enable_backprop = old_enable_backprop

    # -- shape methods (the Functions live in zerograd.functions)
    def reshape(self, *shape: int) -> Variable:
        """``x.reshape(2, 3)`` or ``x.reshape((2, 3))``."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return zerograd.functions.reshape(self, shape)

    def transpose(self, *axes: int) -> Variable:
        """Reverse the axes, or permute them: ``x.transpose(1, 0, 2)``."""
        if len(axes) == 0:
            axes = None
        elif len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return zerograd.functions.transpose(self, axes)

    @property
    def T(self) -> Variable:
        """The transpose (all axes reversed), as ``F.transpose(self)``."""
        return zerograd.functions.transpose(self)

    def sum(self, axis: int | tuple | None = None, keepdims: bool = False) -> Variable:
        """The sum over ``axis`` (all by default), as ``F.sum``."""
        return zerograd.functions.sum(self, axis, keepdims)

    def max(self, axis: int | tuple | None = None, keepdims: bool = False) -> Variable:
        """The maximum over ``axis`` (all by default), as ``F.max``."""
        return zerograd.functions.max(self, axis, keepdims)

    def min(self, axis: int | tuple | None = None, keepdims: bool = False) -> Variable:
        """The minimum over ``axis`` (all by default), as ``F.min``."""
        return zerograd.functions.min(self, axis, keepdims)

    def matmul(self, W: Any) -> Variable:
        """The matrix product ``self @ W``, as ``F.matmul`` (``dot`` is the same)."""
        return zerograd.functions.matmul(self, W)

    dot = matmul

    # -- devices
    def to_cpu(self) -> None:
        """Move data (and grad) to NumPy, in place."""
        if self.data is not None:
            self.data = zerograd.cuda.as_numpy(self.data)
        if self._grad is not None:
            self._grad.to_cpu()

    def to_gpu(self) -> None:
        """Move data (and grad) to CuPy, in place."""
        if self.data is not None:
            self.data = zerograd.cuda.as_cupy(self.data)
        if self._grad is not None:
            self._grad.to_gpu()


def _run_backward(f: Function, owned: set) -> tuple[Any, tuple | None]:
    """Steps 1-2 of the backward loop: f's outputs (None for one that died), and the
    gradients f.backward returns for its inputs, one per input, or None when no output
    of f has a gradient (nothing to pass on)."""
    refs = f._outputs
    if type(refs) is not list:  # one output, the common case, without lists
        y = refs()
        gy = None if y is None else y._grad
        if gy is None:
            return (y,), None
        if owned:  # a sum handed to a backward as gy may come back as a gradient: not ours
            owned.discard(gy)
        outputs, gxs = (y,), f.backward(gy)
    else:
        outputs = [y() for y in refs]
        gys = [None if y is None else y._grad for y in outputs]
        if owned:
            for gy in gys:
                owned.discard(gy)
        if gys.count(None) == len(gys):
            return outputs, None
        gxs = f.backward(*gys)
    if type(gxs) is not tuple:
        gxs = (gxs,)
    inputs = f._inputs
    if len(gxs) != (len(inputs) if type(inputs) is list else 1):
        raise ValueError(f'{type(f).__name__}.backward returned {len(gxs)} '
                         f'gradients for {len(f.inputs)} inputs')
    return outputs, gxs


def _accumulate(f: Function, i: int, x: Variable, gx: Any, owned: set,
                create_graph: bool) -> None:
    """Step 3: check gx, the gradient f.backward returned for its input i (x), and add it
    into x.grad; in place only into a sum this pass made (a grad returned by a backward may
    be shared: gy itself, say)."""
    if not isinstance(gx, Variable) or gx.data.shape != x.data.shape:
        raise _bad_grad(f, i, x, gx)
    # A float variable's grad has its dtype (float32 stays float32); an int variable
    # keeps a float grad, as truncating it is wrong.
    dtype = x.data.dtype
    if gx.data.dtype is not dtype and gx.data.dtype != dtype and dtype.kind in 'fc':
        gx = zerograd.functions.cast(gx, dtype)
    grad = x._grad
    if grad is None:
        x._grad = gx
    elif create_graph or grad.data.dtype != gx.data.dtype:
        x._grad = grad + gx  # recorded, or the dtypes promoted as add promotes them
    elif grad in owned:
        grad.data += gx.data  # a sum of ours: no one else holds it
    else:  # Add's numbers without an Add: nothing is recorded here
        x._grad = _result(grad.data + gx.data)
        owned.add(x._grad)


def _bad_grad(f: Function, i: int, x: Variable, gx: Any) -> Exception:
    """The error for a backward that returned a wrong gradient for input i."""
    name = type(f).__name__
    if not isinstance(gx, Variable):
        return TypeError(f'{name}.backward returned a {type(gx).__name__} for input {i}; '
                         'gradients must be Variables')
    return ValueError(f'{name}.backward returned a gradient of shape {gx.data.shape} '
                      f'for input {i} of shape {x.data.shape}')


_new_variable = object.__new__  # a Variable whose slots _result (or its caller) fills


def _result(data: Any) -> Variable:
    """Variable(data) for an array computed from numeric arrays (an op's output, an
    unrecorded backward's gradient) without __init__'s dtype check, which it cannot fail
    (0.5 us against 1.0 per Variable); a NumPy scalar, a CuPy array or a mistake is
    checked."""
    if type(data) is not np.ndarray:
        return Variable(as_array(data))
    y = _new_variable(Variable)  # separate stores: a tuple assignment is 20% slower
    y.data = data
    y.name = None
    y._grad = None
    y.creator = None
    y.generation = 0
    return y


class Parameter(Variable):
    """A Variable that an optimizer trains. Ops on Parameters return plain Variables."""
    __slots__ = ()


def as_array(x: Any, array_module: Any = np) -> Any:
    """A Python or NumPy scalar becomes a 0-d array; arrays pass through unchanged."""
    if type(x) is np.ndarray:  # the common case first: this runs for every op output
        return x
    if np.isscalar(x):
        return array_module.array(x)
    return x


def as_variable(obj: Any) -> Variable:
    """A Variable passes through; anything else is wrapped with ``Variable(obj)``."""
    if isinstance(obj, Variable):
        return obj
    return Variable(obj)


# =============================================================================
# Function
# =============================================================================
class Function:
    """Base class of every op: subclasses write ``forward`` on arrays and ``backward``
    on Variables (with framework functions, so backward can itself be differentiated).

    ``f(*inputs)`` returns one Variable, or a list for several outputs. When backprop is
    enabled it records ``inputs``, weak references to ``outputs`` and ``generation``.

    ``backward_reads`` names the values backward reads besides its gys: ``'inputs'`` (Sin's
    cos(x)), ``'outputs'`` (Exp's y), both (the default: a Function in the book's style
    may read either), or neither (Add, MulConstant). Shapes and dtypes do not count: they
    stay. Declaring less lets the engine release data no one can read (``release.py``).
    """
    generation = 0
    backward_reads: tuple = ('inputs', 'outputs')

    # Recorded: the inputs (strong references) and the outputs (weak references: the
    # outputs refer to this function, not the other way round, so a graph is freed as soon
    # as its last output is unreachable). A one-input, one-output op, the common case,
    # keeps them bare (``_inputs``, ``_outputs``), not in lists: each list would be one
    # more object per op for Python's cyclic GC to walk (issue 16). ``inputs`` and
    # ``outputs`` give the book's lists.
    @property
    def inputs(self) -> list[Variable]:
        """The input Variables of the recorded call (a list)."""
        held = self._recorded('_inputs')
        return held if type(held) is list else [held]

    @inputs.setter
    def inputs(self, inputs: list) -> None:
        self._inputs = list(inputs)

    @property
    def outputs(self) -> list[weakref.ref]:
        """Weak references to the output Variables of the recorded call (a list)."""
        held = self._recorded('_outputs')
        return held if type(held) is list else [held]

    @outputs.setter
    def outputs(self, outputs: list) -> None:
        self._outputs = list(outputs)

    def _recorded(self, name: str) -> Any:
        try:
            return getattr(self, name)
        except AttributeError:
            raise AttributeError(f'{type(self).__name__} has no {name[1:]}: it records them '
                                 'when called with backprop enabled') from None

    def __call__(self, *inputs: Any) -> Variable | list[Variable]:
        try:  # free unless raised (Python 3.11+): Variable(None) inputs are found on failure
            if len(inputs) == 1:  # one input, the common case: no list comprehensions
                x = inputs[0]
                if not isinstance(x, Variable):
                    x = Variable(as_array(x))
                inputs = [x]
                ys = self.forward(x.data)
            elif len(inputs) == 2:  # two inputs: x * y in every backward of a chain
                x0, x1 = inputs
                if not isinstance(x0, Variable):
                    x0 = Variable(as_array(x0))
                if not isinstance(x1, Variable):
                    x1 = Variable(as_array(x1))
                inputs = [x0, x1]
                ys = self.forward(x0.data, x1.data)
            else:
                inputs = [x if isinstance(x, Variable) else Variable(as_array(x))
                          for x in inputs]
                ys = self.forward(*[x.data for x in inputs])
        except Exception as error:
            _explain_failure(self, inputs, error)
            raise
        if type(ys) is not tuple:  # one output, the common case, without the lists
            if type(ys) is np.ndarray:  # _result(ys), inlined: this runs for every op
                y = _new_variable(Variable)
                y.data = ys
                y.name = None
                y._grad = None
            else:  # a NumPy scalar, a CuPy array, or a mistake: checked
                y = Variable(as_array(ys))
            if _config.enable_backprop:
                generation = (inputs[0].generation if len(inputs) == 1
                              else max([x.generation for x in inputs]))
                self.generation = generation
                y.creator = self  # y.set_creator(self), inlined
                y.generation = generation + 1
                self._inputs = inputs[0] if len(inputs) == 1 else inputs
                self._outputs = weakref.ref(y)
                for x in inputs:
                    release_unread(x)
            else:
                y.creator = None
                y.generation = 0
            return y
        outputs = [Variable(as_array(y)) for y in ys]  # checked: a rare path
        if _config.enable_backprop:
            self.generation = max([x.generation for x in inputs])
            for output in outputs:
                output.set_creator(self)
            self._inputs = inputs[0] if len(inputs) == 1 else inputs
            self._outputs = [weakref.ref(output) for output in outputs]
            for x in inputs:
                release_unread(x)
        return outputs if len(outputs) > 1 else outputs[0]

    def forward(self, *xs: Any) -> Any:
        """Compute the outputs' arrays from the inputs' arrays (subclasses write it)."""
        raise NotImplementedError(f'{type(self).__name__}.forward is not written')

    def backward(self, *gys: Variable) -> Any:
        """The inputs' gradients (Variables) from the outputs' ``gys`` (subclasses write it)."""
        raise NotImplementedError(f'{type(self).__name__}.backward is not written')


def _explain_failure(f: Function, inputs: Any, error: Exception) -> None:
    """Called when ``f(*inputs)`` raised ``error``: raise a clearer error naming f when an
    input is a Variable without data or an array that is not numeric, or when the operands
    of an arithmetic op do not broadcast; else return (the original error goes on)."""
    name = type(f).__name__
    datas = [x.data if isinstance(x, Variable) else x for x in inputs]
    for data in datas:
        if data is None:
            raise _no_data(name) from None
        dtype = getattr(data, 'dtype', None)
        if isinstance(dtype, np.dtype) and dtype.kind not in _NUMERIC_KINDS:
            raise _not_numeric(name, dtype, 'inputs') from None
    # The arithmetic Functions (arithmetic.py) say which arrays they broadcast together.
    operands = getattr(f, 'operands', None)
    if operands is not None and isinstance(error, ValueError):
        a, b = operands(*datas)
        try:
            np.broadcast_shapes(np.shape(a), np.shape(b))
        except ValueError:
            raise ValueError(f'{f.op}: operands could not be broadcast together '
                             f'with shapes {np.shape(a)} and {np.shape(b)}') from None
