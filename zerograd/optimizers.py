"""Optimizers: update a model's parameters from their gradients (the book's steps 45-46).

>>> import numpy as np
>>> import zerograd.functions as F
>>> from zerograd.layers import Linear
>>> from zerograd.optimizers import SGD
>>> layer = Linear(1, in_size=2)
>>> optimizer = SGD(lr=0.1).setup(layer)
>>> x = np.ones((4, 2), dtype=np.float32)
>>> loss = F.mean_squared_error(layer(x), np.zeros((4, 1), dtype=np.float32))
>>> layer.cleargrads()
>>> loss.backward()
>>> optimizer.update()      # W -= 0.1 * gW, b -= 0.1 * gb
>>> layer.W.dtype
dtype('float32')

The book's optimizers (SGD, MomentumSGD, AdaGrad, AdaDelta, Adam) and PyTorch's AdamW,
RMSprop and Nesterov momentum (``MomentumSGD(nesterov=True)``), which follow
``torch.optim`` step for step. PyTorch's names sit beside the book's: ``optimizer.step()``
is ``update()``, ``optimizer.zero_grad()`` is ``model.cleargrads()``, ``Adam(lr=...)`` is
``Adam(alpha=...)``. ``zerograd.schedulers`` changes the learning rate during training.

Every update works on the raw arrays (``param.data``, ``param.grad.data``) in place: no
graph is recorded, float32 parameters stay float32 (hyper-parameters are Python floats,
which NumPy 2 never lets promote an array) and CuPy arrays are updated with CuPy.

Each ``update_one`` shows its formula as the book writes it, on whole arrays, and beside it
the same formula fused (a fast path, NumPy only): the same operations in the same order,
so the same bits, written with ``out=`` into the parameter's and the state's own buffers
and into two or three small scratch blocks that stay in the CPU's cache, one block of
``_BLOCK`` elements at a time (``Optimizer._blocks``). The book's ``p -= lr * g`` makes a
temporary the size of p and passes over memory five times (read g, write the product,
read p and the product, write p); fused, the product never leaves the cache.

Per-parameter state (velocities, moments, ...) lives in dicts keyed by ``id(param)``, as in
the book; ``state_dict()`` names it by the target's ``named_params()`` keys (``'v/l0/W'``,
``'m/l0/W'``, ``'t'``) so that it can be saved with the weights and training resumed
exactly (see ``zerograd.checkpoints``).

Hooks run on the list of parameters that have a gradient, before any update; they never
modify a gradient array in place (several parameters may share one gradient Variable:
``x0 + x1`` gives both inputs the same one), they give the parameter a new gradient.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import numpy as np

from zerograd import cuda
from zerograd.core import Parameter, Variable

Hook = Callable[[list], None]

# Elements per block of the fused updates (256 KiB of float32): the parameter's, the
# gradient's, the states' and the scratch blocks stay in the L2/L3 caches between the
# operations. Measured on MLP 784-1000-1000-10's parameters (2 cores, AVX-512): Adam
# 8.2 ms per update at 65,536, 8.7 at 32,768, 12.5 at 8,192, 32 ms unfused; SGD 3.1 ms
# against 3.6 unfused.
_BLOCK = 1 << 16


# =============================================================================
# Hyper-parameter checks (errors name the optimizer, the argument and the value)
# =============================================================================
def _as_float(who: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f'{who}: {name} must be a real number, got {value!r} '
                        f'({type(value).__name__})')
    # A Python float: a NumPy float64 scalar would turn float32 arrays into float64 on NumPy 2.
    return float(value)


def _positive(who: str, name: str, value: Any) -> float:
    value = _as_float(who, name, value)
    if not value > 0 or math.isinf(value):  # `not >` also rejects NaN
        raise ValueError(f'{who}: {name} must be a finite number > 0, got {value!r}')
    return value


def _non_negative(who: str, name: str, value: Any) -> float:
    value = _as_float(who, name, value)
    if not value >= 0 or math.isinf(value):
        raise ValueError(f'{who}: {name} must be a finite number >= 0, got {value!r}')
    return value


def _unit_interval(who: str, name: str, value: Any) -> float:
    value = _as_float(who, name, value)
    if not 0 <= value < 1:
        raise ValueError(f'{who}: {name} must be in [0, 1), got {value!r}')
    return value


def _flag(who: str, name: str, value: Any) -> bool:
    # Checkpoints store every hyper-parameter as a float64 number: 1.0 comes back for True.
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and value in (0, 1):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f'{who}: {name} must be True or False, got {value!r}')
    raise TypeError(f'{who}: {name} must be True or False, got {value!r} '
                    f'({type(value).__name__})')


def _alias(who: str, book: str, book_value: Any, torch_name: str, torch_value: Any,
           default: Any) -> Any:
    """The value given under the book's name or PyTorch's (both at once is an error)."""
    if book_value is not None and torch_value is not None:
        raise TypeError(f'{who}: give {book} or {torch_name} (PyTorch\'s name for it), not '
                        f'both (got {book}={book_value!r}, {torch_name}={torch_value!r})')
    if torch_value is not None:
        return torch_value
    return default if book_value is None else book_value


# =============================================================================
# Optimizer
# =============================================================================
class Optimizer:
    """Base class: ``setup(target)`` once, then ``update()`` after every ``backward()``.

    Subclasses write ``update_one(param)``, which changes ``param.data`` in place from
    ``param.grad.data``. They declare their per-parameter state in ``_state_attrs``
    (state name -> attribute holding the ``{id(param): array}`` dict, e.g. ``{'v': 'vs'}``),
    their scalar state in ``_scalar_state`` (e.g. ``('t',)``), the states that cannot be
    negative in ``_non_negative_state`` (e.g. ``('v',)``) and their hyper-parameters in
    ``_hyperparam_names``; ``state_dict``/``load_state_dict`` and checkpoints use these.

    ``_hyperparam_rules`` maps each hyper-parameter to its check (``_positive``,
    ``_unit_interval``, ...): every assignment, in ``__init__`` or later
    (``optimizer.lr = 0.1``, a checkpoint's values), goes through it, so a NaN or
    out-of-range value is refused with the same message either way. ``update()`` only
    reads them: the check costs nothing per step.

    ``_lr_name`` names the hyper-parameter that is the learning rate (``'lr'``; Adam's is
    ``'alpha'``; None for AdaDelta, which has none): the one ``zerograd.schedulers`` sets.
    A learning rate may be 0 (no step), as a schedule may reach it.

    PyTorch's names sit beside the book's: ``step()`` is ``update()`` and ``zero_grad()``
    is ``target.cleargrads()``.
    """
    _lr_name: str | None = 'lr'
    _state_attrs: dict[str, str] = {}
    _scalar_state: tuple[str, ...] = ()
    _non_negative_state: tuple[str, ...] = ()  # states that are sums of squares
    _hyperparam_names: tuple[str, ...] = ()
    _hyperparam_rules: dict[str, Callable[[str, str, Any], float]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The names follow the rules unless a subclass lists its own (without rules).
        if '_hyperparam_rules' in cls.__dict__ and '_hyperparam_names' not in cls.__dict__:
            cls._hyperparam_names = tuple(cls._hyperparam_rules)

    def __setattr__(self, name: str, value: Any) -> None:
        rule = self._hyperparam_rules.get(name)
        if rule is not None:
            value = rule(type(self).__name__, name, value)
        object.__setattr__(self, name, value)

    def __init__(self) -> None:
        self.target: Any = None
        self.hooks: list[Hook] = []
        for attr in self._state_attrs.values():
            setattr(self, attr, {})

    def setup(self, target: Any) -> Optimizer:
        """Optimize the parameters of ``target`` (a Layer/Model: anything with ``params()``).
        Returns self, so ``optimizer = SGD().setup(model)`` reads as one line."""
        if not callable(getattr(target, 'params', None)):
            raise TypeError(f'{type(self).__name__}.setup: target must be a Layer or Model '
                            f'(something with params()), got {type(target).__name__}')
        self.target = target
        return self

    def _check_setup(self, method: str) -> None:
        if self.target is None:
            raise RuntimeError(f'{type(self).__name__}.{method}: the optimizer has no target; '
                               'call optimizer.setup(model) first')

    def update(self) -> None:
        """Update every parameter of the target that has a gradient.

        The hooks run first, in the order they were added, on the list of those
        parameters; then ``update_one`` runs on each parameter that still has a gradient
        (a hook such as ``FreezeParam`` may have removed it). A parameter registered twice
        (a shared layer) is updated once.
        """
        self._check_setup('update')
        params = []
        seen = set()
        for param in self.target.params():
            if param.grad is not None and id(param) not in seen:
                seen.add(id(param))
                params.append(param)
        for hook in self.hooks:
            hook(params)
        for param in params:
            if param.grad is not None:
                self.update_one(param)

    def step(self) -> None:
        """PyTorch's name for ``update()``."""
        self.update()

    def zero_grad(self) -> None:
        """PyTorch's name for clearing the gradients: ``target.cleargrads()`` (every
        parameter of the target gets ``grad = None``)."""
        self._check_setup('zero_grad')
        self.target.cleargrads()

    def update_one(self, param: Parameter) -> None:
        """Change ``param.data`` in place from ``param.grad.data``."""
        raise NotImplementedError(f'{type(self).__name__}.update_one is not written')

    def add_hook(self, f: Hook) -> None:
        """Run ``f(params)`` at every ``update()``, before the parameters change; ``params``
        is the list of parameters that have a gradient. Hooks run in the order added."""
        if not callable(f):
            raise TypeError(f'{type(self).__name__}.add_hook: a hook must be callable, '
                            f'got {f!r}')
        self.hooks.append(f)

    # -- per-parameter state ----------------------------------------------------
    def _state(self, attr: str, param: Parameter) -> Any:
        """The state array ``attr`` of ``param`` (zeros the first time), on param's device."""
        store = getattr(self, attr)
        key = id(param)
        value = store.get(key)
        xp = cuda.get_array_module(param.data)
        if value is None:
            value = store[key] = xp.zeros_like(param.data)
        elif cuda.get_array_module(value) is not xp:  # the model moved with to_gpu/to_cpu
            value = store[key] = cuda.as_numpy(value) if xp is np else xp.asarray(value)
        return value

    # -- the fused update: a fast path, block by block ---------------------------
    def _blocks(self, param: Parameter, states: tuple = (),
                scratch: int = 2) -> list[tuple] | None:
        """The fused update's blocks: tuples ``(p, g, *states, *scratch)`` of 1-d views,
        element i of each block being element i of its array (``scratch`` blocks are
        per-optimizer buffers of the parameter's dtype). An elementwise update run block by
        block, with ``out=``, gives the bits of the same operations on the whole arrays.

        None when the fast path does not apply and the caller runs the book's formula:
        anything but NumPy ndarrays (CuPy: one kernel per operation either way, and its
        memory pool makes temporaries cheap), 0-d parameters (NumPy 1 promotes a 0-d
        float32 times a Python float to float64), arrays that differ in shape or dtype, are
        not C-contiguous or may overlap (in place, the order of writes would matter).
        """
        data, grad = param.data, param.grad.data
        arrays = (data, grad, *states)
        for a in arrays:
            if (type(a) is not np.ndarray or a.shape != data.shape or a.dtype != data.dtype
                    or not a.flags.c_contiguous):
                return None
        if data.ndim == 0 or data.dtype.kind != 'f':
            return None
        owns = [a.flags.owndata for a in arrays]
        for i in range(len(arrays)):
            for j in range(i):
                # Two arrays that own their memory overlap only if they are one array;
                # the others are asked (may_share_memory costs 0.7 us a pair).
                if arrays[i] is arrays[j] or (not (owns[i] and owns[j]) and
                                              np.may_share_memory(arrays[i], arrays[j])):
                    return None
        return self._block_views(arrays, self._scratch(data.dtype, scratch))

    @staticmethod
    def _block_views(arrays: tuple, buffers: list) -> list[tuple]:
        flat = [a.ravel() for a in arrays]  # views: the arrays are C-contiguous
        size = flat[0].size
        if size <= _BLOCK:  # one block (most parameters): the whole arrays
            return [(*flat, *[b[:size] for b in buffers])]
        blocks = []
        for start in range(0, size, _BLOCK):
            stop = min(start + _BLOCK, size)
            blocks.append((*[a[start:stop] for a in flat], *[b[:stop - start] for b in buffers]))
        return blocks

    def _scratch(self, dtype: np.dtype, count: int) -> list[np.ndarray]:
        """``count`` scratch blocks of ``_BLOCK`` elements of dtype, made once per
        optimizer and dtype (not state: never saved, contents meaningless between uses)."""
        buffers = self.__dict__.setdefault('_scratch_buffers', {})
        blocks = buffers.get(dtype)
        if blocks is None or len(blocks) < count:
            blocks = buffers[dtype] = [np.empty(_BLOCK, dtype) for _ in range(count)]
        return blocks[:count]

    def hyperparams(self) -> dict[str, float]:
        """The hyper-parameters, e.g. ``{'lr': 0.01, 'momentum': 0.9}``."""
        return {name: getattr(self, name) for name in self._hyperparam_names}

    def state_dict(self) -> dict[str, np.ndarray]:
        """The optimizer's state as NumPy copies, named by the target's parameter keys:
        ``'<state>/<param key>'`` (e.g. ``'v/l0/W'``) for every state of every created
        parameter (zeros, what the first update would start from, for a parameter not
        updated yet), and ``'<name>'`` for scalars (e.g. ``'t'``, a 0-d int64 array)."""
        self._check_setup('state_dict')
        result: dict[str, np.ndarray] = {}
        for name in self._scalar_state:
            result[name] = np.array(getattr(self, name), dtype=np.int64)
        named = self._named_params('state_dict')
        for state_name, attr in self._state_attrs.items():
            store = getattr(self, attr)
            for key, param in named.items():
                if param.data is None:
                    continue
                value = store.get(id(param))
                result[f'{state_name}/{key}'] = (
                    np.zeros(param.data.shape, param.data.dtype) if value is None
                    else np.array(cuda.as_numpy(value), copy=True))
        return result

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict()``. Everything is checked first (``_check_state_dict``);
        on any difference nothing changes and the ValueError names what differs. Arrays
        are copied and moved to each parameter's device."""
        self._check_setup('load_state_dict')
        scalars, arrays = self._check_state_dict(state)
        named = self._named_params('load_state_dict')
        for name, value in scalars.items():
            setattr(self, name, value)
        for attr in self._state_attrs.values():
            getattr(self, attr).clear()
        for (state_name, key), value in arrays.items():
            param = named[key]
            value = np.array(value, copy=True)
            xp = cuda.get_array_module(param.data)
            if xp is not np:
                value = xp.asarray(value)
            getattr(self, self._state_attrs[state_name])[id(param)] = value

    def _named_params(self, method: str) -> dict[str, Parameter]:
        named_params = getattr(self.target, 'named_params', None)
        if named_params is None:
            raise TypeError(f'{type(self).__name__}.{method}: the target '
                            f'{type(self.target).__name__} has no named_params(), so its '
                            'state cannot be named; use a Layer or Model as the target')
        return named_params()

    def _check_state_dict(self, state: dict[str, Any],
                          params: dict[str, Any] | None = None) -> tuple[dict, dict]:
        """Validate a state dict; return ({scalar name: int}, {(state name, key): array}).

        Every scalar must be an integer >= 0, and every state of every parameter in
        ``params`` ({key: anything with .shape and .dtype}; by default the target's
        created parameters) present, with the parameter's shape and dtype and finite
        values (>= 0 for ``_non_negative_state``); any name else is an error. A resume
        with a slot missing would silently restart it from zeros.
        """
        who = f'{type(self).__name__}.load_state_dict'
        named = self._named_params('load_state_dict')
        if params is None:
            params = {key: p.data for key, p in named.items() if p.data is not None}
        problems = []
        scalars: dict[str, int] = {}
        arrays: dict[tuple[str, str], Any] = {}
        expected = {f'{state_name}/{key}' for state_name in self._state_attrs
                    for key in params}
        missing = sorted((expected | set(self._scalar_state)) - set(state))
        if missing:
            problems.append('missing ' + ', '.join(map(repr, missing)))
        for name, value in state.items():
            if name in self._scalar_state:
                array = np.asarray(cuda.as_numpy(value))
                if array.shape != () or array.dtype.kind not in 'iu' or int(array) < 0:
                    problems.append(f'{name!r} must be a non-negative integer, got {value!r}')
                else:
                    scalars[name] = int(array)
                continue
            state_name, _, key = name.partition('/')
            if state_name not in self._state_attrs or not key:
                known = [f'{s}/<param>' for s in self._state_attrs] + list(self._scalar_state)
                problems.append(f'unknown name {name!r} (expected {known})')
            elif key not in named:
                problems.append(f'{name!r} names no parameter of the target '
                                f'(parameters: {sorted(named)})')
            elif key not in params:
                problems.append(f'{name!r} is the state of a parameter not created yet')
            elif not hasattr(value, 'shape') or not hasattr(value, 'dtype'):
                problems.append(f'{name!r} must be an array, got {type(value).__name__}')
            else:
                problem = self._slot_problem(state_name, cuda.as_numpy(value), params[key])
                if problem:
                    problems.append(f'{name!r} {problem}')
                else:
                    arrays[(state_name, key)] = cuda.as_numpy(value)
        if problems:
            raise ValueError(f'{who}: the state does not match this optimizer and target: '
                             + '; '.join(problems))
        return scalars, arrays

    def _slot_problem(self, state_name: str, value: np.ndarray, param: Any) -> str:
        """What is wrong with one state array for a parameter ('' if nothing)."""
        if tuple(value.shape) != tuple(param.shape):
            return f'has shape {tuple(value.shape)} but the parameter has {tuple(param.shape)}'
        if value.dtype != param.dtype:
            return f'has dtype {value.dtype} but the parameter has {param.dtype}'
        if value.dtype.kind in 'fc' and not np.isfinite(value).all():
            return 'holds nan or inf'
        if state_name in self._non_negative_state and (value < 0).any():
            return f'holds negative values (a {state_name} is a sum of squares, >= 0)'
        return ''

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in self.hyperparams().items())
        return f'{type(self).__name__}({args})'


# =============================================================================
# The optimizers
# =============================================================================
class SGD(Optimizer):
    """Stochastic gradient descent: ``p -= lr * g``. lr >= 0."""
    _hyperparam_rules = {'lr': _non_negative}

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__()
        self.lr = lr

    def update_one(self, param: Parameter) -> None:
        blocks = self._blocks(param, scratch=1)
        if blocks is None:
            param.data -= self.lr * param.grad.data
            return
        lr = self.lr
        for p, g, s in blocks:  # fused: the product stays in the cache
            np.multiply(g, lr, out=s)
            np.subtract(p, s, out=p)


class MomentumSGD(Optimizer):
    """SGD with momentum (the book's form)::

        v  = momentum * v - lr * g
        p += v                          (nesterov=False)
        p += momentum * v - lr * g      (nesterov=True: the step looks ahead along v)

    v (the velocity, ``vs[id(param)]``) has the parameter's shape and dtype, zeros at
    first. lr >= 0, momentum in [0, 1).

    PyTorch's ``SGD(momentum=m, nesterov=...)`` keeps ``buf = m * buf + g`` and steps
    ``p -= lr * buf`` (or ``p -= lr * (g + m * buf)`` with Nesterov). At a constant lr,
    ``v = -lr * buf``, so both give the same parameters step for step; when a schedule
    changes lr, the book's v keeps the old lr's steps and PyTorch's buf does not.

    ``hyperparams()`` names ``nesterov`` only when it is True: a checkpoint of the plain
    form (including those written before Nesterov existed) loads into a plain
    MomentumSGD, and one of the Nesterov form only into a Nesterov one.
    """
    _state_attrs = {'v': 'vs'}
    _hyperparam_rules = {'lr': _non_negative, 'momentum': _unit_interval, 'nesterov': _flag}

    def __init__(self, lr: float = 0.01, momentum: float = 0.9, nesterov: bool = False) -> None:
        super().__init__()
        self.lr = lr
        self.momentum = momentum
        self.nesterov = nesterov

    def hyperparams(self) -> dict[str, float]:
        """``{'lr': ..., 'momentum': ...}``, with ``'nesterov': True`` when it is set."""
        result = super().hyperparams()
        if not self.nesterov:
            del result['nesterov']
        return result

    def update_one(self, param: Parameter) -> None:
        v = self._state('vs', param)
        blocks = self._blocks(param, (v,))
        if blocks is None:
            grad = param.grad.data
            v *= self.momentum
            v -= self.lr * grad
            if self.nesterov:
                param.data += self.momentum * v - self.lr * grad
            else:
                param.data += v
            return
        lr, momentum = self.lr, self.momentum
        for p, g, v, s1, s2 in blocks:  # fused, the same operations
            np.multiply(v, momentum, out=v)
            np.multiply(g, lr, out=s1)
            np.subtract(v, s1, out=v)
            if self.nesterov:
                np.multiply(v, momentum, out=s2)
                np.subtract(s2, s1, out=s2)  # s1 is still lr * g
                np.add(p, s2, out=p)
            else:
                np.add(p, v, out=p)


class AdaGrad(Optimizer):
    """AdaGrad: ``h += g * g; p -= lr * g / (sqrt(h) + eps)``.

    h (``hs[id(param)]``) has the parameter's shape, zeros at first. lr >= 0, eps > 0.
    """
    _state_attrs = {'h': 'hs'}
    _non_negative_state = ('h',)
    _hyperparam_rules = {'lr': _non_negative, 'eps': _positive}

    def __init__(self, lr: float = 0.001, eps: float = 1e-8) -> None:
        super().__init__()
        self.lr = lr
        self.eps = eps

    def update_one(self, param: Parameter) -> None:
        h = self._state('hs', param)
        blocks = self._blocks(param, (h,))
        if blocks is None:
            xp = cuda.get_array_module(param.data)
            grad = param.grad.data
            h += grad * grad
            param.data -= self.lr * grad / (xp.sqrt(h) + self.eps)
            return
        lr, eps = self.lr, self.eps
        for p, g, h, s1, s2 in blocks:  # fused, the same operations
            np.multiply(g, g, out=s1)
            np.add(h, s1, out=h)
            np.multiply(g, lr, out=s1)
            np.sqrt(h, out=s2)
            np.add(s2, eps, out=s2)
            np.divide(s1, s2, out=s1)
            np.subtract(p, s1, out=p)


class AdaDelta(Optimizer):
    """AdaDelta (no learning rate)::

        msg  = rho * msg + (1 - rho) * g * g
        dx   = sqrt((msdx + eps) / (msg + eps)) * g
        msdx = rho * msdx + (1 - rho) * dx * dx
        p   -= dx

    msg and msdx (``msg[id(param)]``, ``msdx[id(param)]``) have the parameter's shape, zeros
    at first. rho in [0, 1), eps > 0. No learning rate: a schedule cannot drive it.
    """
    _lr_name = None
    _state_attrs = {'msg': 'msg', 'msdx': 'msdx'}
    _non_negative_state = ('msg', 'msdx')
    _hyperparam_rules = {'rho': _unit_interval, 'eps': _positive}

    def __init__(self, rho: float = 0.95, eps: float = 1e-6) -> None:
        super().__init__()
        self.rho = rho
        self.eps = eps

    def update_one(self, param: Parameter) -> None:
        msg = self._state('msg', param)
        msdx = self._state('msdx', param)
        rho, eps = self.rho, self.eps
        blocks = self._blocks(param, (msg, msdx))
        if blocks is None:
            xp = cuda.get_array_module(param.data)
            grad = param.grad.data
            msg *= rho
            msg += (1 - rho) * grad * grad
            dx = xp.sqrt((msdx + eps) / (msg + eps)) * grad
            msdx *= rho
            msdx += (1 - rho) * dx * dx
            param.data -= dx
            return
        for p, g, msg, msdx, dx, s in blocks:  # fused, the same operations
            np.multiply(msg, rho, out=msg)
            np.multiply(g, 1 - rho, out=s)
            np.multiply(s, g, out=s)
            np.add(msg, s, out=msg)
            np.add(msdx, eps, out=dx)
            np.add(msg, eps, out=s)
            np.divide(dx, s, out=dx)
            np.sqrt(dx, out=dx)
            np.multiply(dx, g, out=dx)
            np.multiply(msdx, rho, out=msdx)
            np.multiply(dx, 1 - rho, out=s)
            np.multiply(s, dx, out=s)
            np.add(msdx, s, out=msdx)
            np.subtract(p, dx, out=p)


class Adam(Optimizer):
    """Adam. Once per ``update()`` (not per parameter) ``t += 1``; then for each parameter::

        m  += (1 - beta1) * (g - m)
        v  += (1 - beta2) * (g * g - v)
        lr  = alpha * sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
        p  -= lr * m / (sqrt(v) + eps)

    m and v (``ms[id(param)]``, ``vs[id(param)]``) have the parameter's shape, zeros at
    first. alpha >= 0, beta1 and beta2 in [0, 1), eps > 0. Defaults: alpha = 0.001,
    beta1 = 0.9, beta2 = 0.999, eps = 1e-8.

    PyTorch's names are accepted in the constructor: ``Adam(lr=0.01)`` is
    ``Adam(alpha=0.01)`` and ``betas=(b1, b2)`` is ``beta1=b1, beta2=b2`` (giving both
    names of one value is a TypeError). The attributes keep the book's names and
    meanings: ``alpha`` is the base learning rate (what a schedule changes), and ``lr``
    is the book's read-only, bias-corrected step size of the current step (above), not
    PyTorch's ``lr``. (PyTorch adds eps to ``sqrt(v / (1 - beta2**t))`` instead: the
    two differ by about eps relative.)
    """
    _lr_name = 'alpha'
    _state_attrs = {'m': 'ms', 'v': 'vs'}
    _non_negative_state = ('v',)
    _scalar_state = ('t',)
    _hyperparam_rules = {'alpha': _non_negative, 'beta1': _unit_interval,
                         'beta2': _unit_interval, 'eps': _positive}

    def __init__(self, alpha: float | None = None, beta1: float | None = None,
                 beta2: float | None = None, eps: float = 1e-8, *, lr: float | None = None,
                 betas: tuple[float, float] | None = None) -> None:
        super().__init__()
        who = type(self).__name__
        self.t = 0
        self.alpha = _alias(who, 'alpha', alpha, 'lr', lr, 0.001)
        if betas is not None:
            if beta1 is not None or beta2 is not None:
                raise TypeError(f'{who}: give beta1 and beta2 or betas (PyTorch\'s name for '
                                f'them), not both (got beta1={beta1!r}, beta2={beta2!r}, '
                                f'betas={betas!r})')
            if not isinstance(betas, (tuple, list)) or len(betas) != 2:
                raise TypeError(f'{who}: betas must be a pair (beta1, beta2), got {betas!r}')
            beta1, beta2 = betas
        self.beta1 = 0.9 if beta1 is None else beta1
        self.beta2 = 0.999 if beta2 is None else beta2
        self.eps = eps

    def update(self) -> None:
        """``t += 1``, then update every parameter that has a gradient (see the class)."""
        self._check_setup('update')
        self.t += 1
        super().update()

    @property
    def lr(self) -> float:
        """The bias-corrected step size ``alpha * sqrt(1 - beta2**t) / (1 - beta1**t)`` of
        the current step t. Before the first ``update()`` (t = 0) it is the step size the
        first update will use (t = 1)."""
        t = max(self.t, 1)
        return self.alpha * math.sqrt(1 - self.beta2 ** t) / (1 - self.beta1 ** t)

    @lr.setter
    def lr(self, value: Any) -> None:
        raise AttributeError(f'{type(self).__name__}: lr is derived from alpha, beta1, beta2 '
                             f'and t, not set; set alpha instead (got lr = {value!r})')

    def update_one(self, param: Parameter) -> None:
        m = self._state('ms', param)
        v = self._state('vs', param)
        blocks = self._blocks(param, (m, v))
        if blocks is None:
            xp = cuda.get_array_module(param.data)
            grad = param.grad.data
            m += (1 - self.beta1) * (grad - m)
            v += (1 - self.beta2) * (grad * grad - v)
            param.data -= self.lr * m / (xp.sqrt(v) + self.eps)
            return
        lr, eps = self.lr, self.eps
        for p, g, m, v, s1, s2 in blocks:  # fused, the same operations
            np.subtract(g, m, out=s1)
            np.multiply(s1, 1 - self.beta1, out=s1)
            np.add(m, s1, out=m)
            np.multiply(g, g, out=s1)
            np.subtract(s1, v, out=s1)
            np.multiply(s1, 1 - self.beta2, out=s1)
            np.add(v, s1, out=v)
            np.multiply(m, lr, out=s1)
            np.sqrt(v, out=s2)
            np.add(s2, eps, out=s2)
            np.divide(s1, s2, out=s1)
            np.subtract(p, s1, out=p)


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay, PyTorch's formula. Once per ``update()``
    ``t += 1``; then for each parameter::

        p  *= 1 - alpha * weight_decay
        m  += (1 - beta1) * (g - m)
        v   = beta2 * v + (1 - beta2) * g * g
        p  -= alpha / (1 - beta1 ** t) * m / (sqrt(v) / sqrt(1 - beta2 ** t) + eps)

    The decay shrinks the weights directly instead of adding ``weight_decay * p`` to the
    gradient (which Adam would rescale by 1/sqrt(v)). Defaults are PyTorch's:
    alpha (``lr``) = 0.001, betas = (0.9, 0.999), eps = 1e-8, weight_decay = 0.01;
    weight_decay >= 0. Names, state (``t``, ``m``, ``v``) and the read-only ``lr`` are
    Adam's (see Adam); unlike Adam, eps is added where PyTorch adds it, so ``AdamW`` with
    ``weight_decay=0`` is PyTorch's Adam exactly.
    """
    _hyperparam_rules = {**Adam._hyperparam_rules, 'weight_decay': _non_negative}

    def __init__(self, alpha: float | None = None, beta1: float | None = None,
                 beta2: float | None = None, eps: float = 1e-8, weight_decay: float = 1e-2, *,
                 lr: float | None = None, betas: tuple[float, float] | None = None) -> None:
        super().__init__(alpha, beta1, beta2, eps, lr=lr, betas=betas)
        self.weight_decay = weight_decay

    def update_one(self, param: Parameter) -> None:
        m = self._state('ms', param)
        v = self._state('vs', param)
        t = self.t
        # Python floats throughout: the arrays keep their dtype.
        step_size = self.alpha / (1 - self.beta1 ** t)
        bias_correction2_sqrt = math.sqrt(1 - self.beta2 ** t)
        blocks = self._blocks(param, (m, v))
        if blocks is None:
            xp = cuda.get_array_module(param.data)
            grad = param.grad.data
            if self.weight_decay != 0:
                param.data *= 1 - self.alpha * self.weight_decay
            m += (1 - self.beta1) * (grad - m)
            v *= self.beta2
            v += (1 - self.beta2) * grad * grad
            denom = xp.sqrt(v) / bias_correction2_sqrt
            denom += self.eps
            param.data -= step_size * m / denom
            return
        for p, g, m, v, s1, s2 in blocks:  # fused, the same operations
            if self.weight_decay != 0:
                np.multiply(p, 1 - self.alpha * self.weight_decay, out=p)
            np.subtract(g, m, out=s1)
            np.multiply(s1, 1 - self.beta1, out=s1)
            np.add(m, s1, out=m)
            np.multiply(v, self.beta2, out=v)
            np.multiply(g, 1 - self.beta2, out=s1)
            np.multiply(s1, g, out=s1)
            np.add(v, s1, out=v)
            np.sqrt(v, out=s2)  # denom
            np.divide(s2, bias_correction2_sqrt, out=s2)
            np.add(s2, self.eps, out=s2)
            np.multiply(m, step_size, out=s1)
            np.divide(s1, s2, out=s1)
            np.subtract(p, s1, out=p)


class RMSprop(Optimizer):
    """RMSprop, PyTorch's formula and hyper-parameters. For each parameter::

        g   = g + weight_decay * p                  (when weight_decay != 0)
        s   = alpha * s + (1 - alpha) * g * g        (square_avg)
        avg = sqrt(s) + eps
          centered: a = a + (1 - alpha) * (g - a)    (grad_avg)
                    avg = sqrt(s - a * a) + eps
        p  -= lr * g / avg                           (momentum = 0)
          momentum > 0: b = momentum * b + g / avg   (momentum_buffer)
                        p -= lr * b

    alpha is the smoothing constant, as in PyTorch, not a learning rate (``lr`` is the
    learning rate, the one a schedule changes). Defaults: lr = 0.01, alpha = 0.99,
    eps = 1e-8, weight_decay = 0, momentum = 0, centered = False. lr >= 0, alpha and
    momentum in [0, 1), eps > 0, weight_decay >= 0.

    The state follows the settings: ``square_avg`` always, ``grad_avg`` when centered,
    ``momentum_buffer`` when momentum > 0 (``square_avgs``, ``grad_avgs``,
    ``momentum_buffers``, each ``{id(param): array}`` of the parameter's shape).
    """
    _non_negative_state = ('square_avg',)
    _hyperparam_rules = {'lr': _non_negative, 'alpha': _unit_interval, 'eps': _positive,
                         'weight_decay': _non_negative, 'momentum': _unit_interval,
                         'centered': _flag}

    def __init__(self, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False) -> None:
        # momentum and centered first: they decide which states exist (_state_attrs).
        self.momentum = momentum
        self.centered = centered
        super().__init__()
        self.square_avgs: dict[int, Any] = {}
        self.grad_avgs: dict[int, Any] = {}
        self.momentum_buffers: dict[int, Any] = {}
        self.lr = lr
        self.alpha = alpha
        self.eps = eps
        self.weight_decay = weight_decay

    @property
    def _state_attrs(self) -> dict[str, str]:  # type: ignore[override]
        attrs = {'square_avg': 'square_avgs'}
        if self.centered:
            attrs['grad_avg'] = 'grad_avgs'
        if self.momentum > 0:
            attrs['momentum_buffer'] = 'momentum_buffers'
        return attrs

    def update_one(self, param: Parameter) -> None:
        states = [self._state('square_avgs', param)]
        if self.centered:
            states.append(self._state('grad_avgs', param))
        if self.momentum > 0:
            states.append(self._state('momentum_buffers', param))
        blocks = self._blocks(param, tuple(states), scratch=3)
        if blocks is None:
            self._update_arrays(cuda.get_array_module(param.data), param.data,
                                param.grad.data, *states)
            return
        for p, g, *states, s1, s2, s3 in blocks:  # fused, the same operations
            if self.weight_decay != 0:
                np.multiply(p, self.weight_decay, out=s3)
                np.add(g, s3, out=s3)
                g = s3
            self._update_block(p, g, states, s1, s2)

    def _update_arrays(self, xp: Any, data: Any, grad: Any, square_avg: Any,
                       *states: Any) -> None:
        """The formula (the class docstring's) on whole arrays."""
        grad_avg = states[0] if self.centered else None
        buf = states[-1] if self.momentum > 0 else None
        if self.weight_decay != 0:
            grad = grad + self.weight_decay * data
        alpha = self.alpha
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if self.centered:
            grad_avg += (1 - alpha) * (grad - grad_avg)
            avg = xp.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = xp.sqrt(square_avg)
        avg += self.eps
        if self.momentum > 0:
            buf *= self.momentum
            buf += grad / avg
            data -= self.lr * buf
        else:
            data -= self.lr * grad / avg

    def _update_block(self, p: np.ndarray, g: np.ndarray, states: list, avg: np.ndarray,
                      s: np.ndarray) -> None:
        """The same operations on one block, fused (g already includes weight decay)."""
        alpha = self.alpha
        square_avg = states[0]
        np.multiply(square_avg, alpha, out=square_avg)
        np.multiply(g, 1 - alpha, out=s)
        np.multiply(s, g, out=s)
        np.add(square_avg, s, out=square_avg)
        if self.centered:
            grad_avg = states[1]
            np.subtract(g, grad_avg, out=s)
            np.multiply(s, 1 - alpha, out=s)
            np.add(grad_avg, s, out=grad_avg)
            np.multiply(grad_avg, grad_avg, out=s)
            np.subtract(square_avg, s, out=avg)
            np.sqrt(avg, out=avg)
        else:
            np.sqrt(square_avg, out=avg)
        np.add(avg, self.eps, out=avg)
        if self.momentum > 0:
            buf = states[-1]
            np.multiply(buf, self.momentum, out=buf)
            np.divide(g, avg, out=s)
            np.add(buf, s, out=buf)
            np.multiply(buf, self.lr, out=s)
            np.subtract(p, s, out=p)
        else:
            np.multiply(g, self.lr, out=s)
            np.divide(s, avg, out=s)
            np.subtract(p, s, out=p)


# =============================================================================
# Hooks: callables run on the list of parameters that have a gradient
# =============================================================================
class WeightDecay:
    """L2 regularisation: ``g += rate * p`` for every parameter (rate >= 0)."""

    def __init__(self, rate: float) -> None:
        self.rate = _non_negative('WeightDecay', 'rate', rate)

    def __call__(self, params: list[Parameter]) -> None:
        for param in params:
            # A new gradient, never an in-place change: the old one may be shared.
            param.grad = Variable(param.grad.data + self.rate * param.data)

    def __repr__(self) -> str:
        return f'WeightDecay(rate={self.rate!r})'


class ClipGrad:
    """Gradient clipping by global norm: with ``norm = sqrt(sum over params of sum(g**2))``,
    when ``norm > max_norm`` every gradient is multiplied by ``max_norm / (norm + 1e-6)``;
    otherwise nothing changes. max_norm > 0."""

    def __init__(self, max_norm: float) -> None:
        self.max_norm = _positive('ClipGrad', 'max_norm', max_norm)

    def __call__(self, params: list[Parameter]) -> None:
        total = 0.0
        for param in params:
            grad = param.grad.data
            xp = cuda.get_array_module(grad)
            total += float(xp.sum(xp.square(grad), dtype=xp.float64))
        norm = math.sqrt(total)
        if norm > self.max_norm:
            scale = self.max_norm / (norm + 1e-6)  # a Python float: the dtype is kept
            for param in params:
                param.grad = Variable(param.grad.data * scale)

    def __repr__(self) -> str:
        return f'ClipGrad(max_norm={self.max_norm!r})'


class FreezeParam:
    """Keep the parameters of some layers (or some Parameters) fixed: their gradients are
    removed, so the optimizer simply does not update them.

    ``optimizer.add_hook(FreezeParam(model.l0))`` trains every layer but ``l0``.
    Layers are asked for their parameters at each update, so lazily created weights are
    frozen too.
    """

    def __init__(self, *layers: Any) -> None:
        for i, item in enumerate(layers):
            if not isinstance(item, Parameter) and not callable(getattr(item, 'params', None)):
                raise TypeError(f'FreezeParam: argument {i} must be a Layer or a Parameter, '
                                f'got {type(item).__name__}')
        self.layers = layers

    def _frozen(self) -> Iterable[Parameter]:
        for item in self.layers:
            if isinstance(item, Parameter):
                yield item
            else:
                yield from item.params()

    def __call__(self, params: list[Parameter]) -> None:
        for param in self._frozen():
            param.grad = None
