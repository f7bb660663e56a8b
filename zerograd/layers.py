"""Layers: objects that own Parameters (``import zerograd.layers as L``).

A Layer registers every Parameter or Layer assigned to one of its attributes, in
assignment order, so ``params()`` is deterministic and nested layers just work.
"""
from __future__ import annotations

import math
import os
import weakref
import zipfile
import zlib
from typing import Any, Callable, Iterator, Mapping, NamedTuple

import numpy as np

import zerograd.functions as F
from zerograd import cuda, initializers, utils
from zerograd.core import Config, Parameter, Variable, using_config
from zerograd.functions_conv import _pair, _window_args


def _weak(obj: Any) -> Any:
    """A weak reference to obj, or a function returning None for objects that have none
    (Python numbers)."""
    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: None


# What watches layer calls (``zerograd.summary`` while it runs a forward): objects with
# ``enter(layer)`` and ``exit(layer, outputs)``. Empty almost always, so Layer.__call__
# pays one truth test of a list for it.
_call_observers: list = []


class Layer:
    """Base class of layers and models: subclasses assign Parameters and Layers as
    attributes in ``__init__`` and write ``forward``.

    ``training`` is this layer's own mode (``train()``/``eval()`` set it, for the layer and
    its sublayers); a layer that acts differently in training (dropout, batch norm) asks
    ``in_training()``, which is also False under the global ``test_mode()``. A layer in
    eval mode runs its whole ``forward`` (sublayers and functions such as ``F.dropout``
    included) as under ``test_mode()``, so a model's own functions honour its mode too.

    PyTorch's names sit beside the book's: ``parameters()``/``named_parameters()`` (the
    trained parameters), ``zero_grad()`` (``cleargrads()``), ``state_dict()``/
    ``load_state_dict()`` (the weight file's arrays), ``print(layer)`` (the layer tree)
    and ``summary(x)`` (shapes and counts of one forward).
    """

    training: bool = True  # a class default: a subclass that skips __init__ still has it
    # Attribute names of Parameters that hold state, not weights (BatchNorm's running
    # statistics): never given a gradient, so no optimizer changes them; saved in weight
    # files and state_dict(), left out of parameters() (PyTorch's buffers).
    _buffer_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._params: list[str] = []

    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.setdefault('_params', [])
        if isinstance(value, (Parameter, Layer)):
            if name not in params:
                params.append(name)
        elif name in params:
            params.remove(name)  # replaced by something that is not a parameter
        super().__setattr__(name, value)

    def __call__(self, *inputs: Any) -> Any:
        if _call_observers or not self.training:
            return self._call_watched(inputs)
        return self._forward_and_record(inputs)

    def _forward_and_record(self, inputs: tuple) -> Any:
        outputs = self.forward(*inputs)
        if not isinstance(outputs, tuple):
            outputs = (outputs,)
        # Weak references, like Function's: a layer never keeps a graph alive. Written
        # to __dict__ directly: they are never parameters, so __setattr__ has nothing to do.
        self.__dict__['inputs'] = [_weak(x) for x in inputs]
        self.__dict__['outputs'] = [_weak(y) for y in outputs]
        return outputs if len(outputs) > 1 else outputs[0]

    def _call_watched(self, inputs: tuple) -> Any:
        """``__call__``'s slow path: a layer in eval mode (its forward runs under
        ``test_mode()``) or a call someone watches (a summary being made)."""
        for observer in _call_observers:
            observer.enter(self)
        outputs = None
        try:
            if self.training:
                outputs = self._forward_and_record(inputs)
            else:
                with using_config('train', False):
                    outputs = self._forward_and_record(inputs)
        finally:
            for observer in _call_observers:
                observer.exit(self, outputs)
        return outputs

    def forward(self, *inputs: Any) -> Any:
        """The layer's computation on its inputs (subclasses write it); call the layer."""
        raise NotImplementedError(f'{type(self).__name__}.forward is not written')

    def train(self, mode: bool = True) -> Layer:
        """Put this layer and its sublayers in training mode (``mode=False``: test mode);
        returns the layer, as PyTorch's does."""
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f'{type(self).__name__}.train: mode must be a bool, got '
                            f'{type(mode).__name__}')
        self.__dict__['training'] = bool(mode)
        for name in self._params:
            obj = self.__dict__[name]
            if isinstance(obj, Layer):
                obj.train(mode)
        return self

    def eval(self) -> Layer:
        """Put this layer and its sublayers in test mode (``train(False)``)."""
        return self.train(False)

    def in_training(self) -> bool:
        """True when this layer should act as in training: its own mode is training and
        the global ``Config.train`` is on (``test_mode()`` turns it off for all)."""
        return self.training and bool(Config.train)

    def params(self) -> Iterator[Parameter]:
        """Every Parameter of this layer and its sublayers, in registration order."""
        for name in self._params:
            obj = self.__dict__[name]
            if isinstance(obj, Layer):
                yield from obj.params()
            else:
                yield obj

    def cleargrads(self) -> None:
        """Forget every parameter's gradient (call before each backward)."""
        for param in self.params():
            param.cleargrad()

    # -- PyTorch's names, beside the book's ---------------------------------------
    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """``(key, Parameter)`` for every trained parameter of this layer and its
        sublayers, in registration order, each Parameter once (a shared one under its
        first key), created or not.

        The keys are the weight file's (``named_params()``), attribute paths joined by
        '/' (``'l0/W'``), not PyTorch's '.': one spelling for a parameter across weight
        files, ``state_dict()`` and the optimizers' state. BatchNorm's running statistics
        (``avg_mean``, ``avg_var``) are not trained parameters and are left out, as
        PyTorch's buffers are; ``params()`` (the book's) and ``state_dict()`` include them.
        """
        seen = set()
        for key, param in self.named_params().items():
            if id(param) not in seen:
                seen.add(id(param))
                if key.rpartition('/')[2] not in self._owner_buffers(key):
                    yield key, param

    def _owner_buffers(self, key: str) -> tuple[str, ...]:
        """The ``_buffer_names`` of the layer that owns the parameter at ``key``."""
        layer = self
        for name in key.split('/')[:-1]:
            layer = layer.__dict__[name]
        return layer._buffer_names

    def parameters(self) -> Iterator[Parameter]:
        """Every trained Parameter, as ``named_parameters()`` gives them (PyTorch's name;
        the book's ``params()`` also yields BatchNorm's running statistics, which get no
        gradient, so optimizers skip them either way)."""
        for _, param in self.named_parameters():
            yield param

    def zero_grad(self) -> None:
        """Forget every parameter's gradient: ``cleargrads()`` under PyTorch's name (grads
        become None, PyTorch's default ``set_to_none=True``)."""
        self.cleargrads()

    def state_dict(self) -> dict[str, np.ndarray]:
        """{key: NumPy copy} of every parameter and running statistic, the keys and arrays
        of ``save_weights``' file (``'l0/W'``). ValueError for a parameter not created
        yet: run one forward first (lazy layers create their weights on the first call)."""
        arrays = self.weight_arrays(f'{type(self).__name__}.state_dict')
        return {key: np.array(value, copy=True) for key, value in arrays.items()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> LoadResult:
        """Load ``state`` ({key: array}, as ``state_dict()`` gives) into the parameters,
        with ``load_weights``' checks: every shape and dtype, finite values, and (when
        ``strict``) no key missing or unexpected; on any difference nothing changes and
        the ValueError names what differs. Parameters not created yet (lazy layers) are
        created from the arrays, as ``load_weights`` does. Arrays are copied.
        ``strict=False`` loads the keys the model has and skips the others.
        Returns ``LoadResult(missing_keys, unexpected_keys)``, as PyTorch does."""
        who = f'{type(self).__name__}.load_state_dict'
        if not isinstance(state, Mapping):
            raise TypeError(f'{who}: state must be a dict of arrays (as state_dict() gives), '
                            f'got {type(state).__name__}')
        arrays = {}
        for key, value in state.items():
            if isinstance(value, Variable):
                value = value.data
            if not isinstance(key, str) or not (isinstance(value, np.ndarray)
                                                or cuda._is_cupy_array(value)):
                raise TypeError(f'{who}: state must map str keys to arrays, got {key!r}: '
                                f'{type(value).__name__}')
            arrays[key] = np.array(cuda.as_numpy(value), copy=True)
        params = self.named_params()
        may_be_missing = {key for key in self.not_created_by_design()
                          if params[key].data is None}
        missing = sorted(set(params) - set(arrays) - may_be_missing)
        unexpected = sorted(set(arrays) - set(params))
        if not strict:
            arrays = {key: value for key, value in arrays.items() if key in params}
        self._set_weights(self._check_weights(arrays, who, strict, source='state'))
        return LoadResult(missing, unexpected)

    # -- how a layer shows itself -------------------------------------------------
    def _repr_items(self) -> list[tuple[str, Any]]:
        """(attribute name, Parameter or Layer) for everything this layer registered, in
        order; Sequential adds its plain callables."""
        return [(name, self.__dict__[name]) for name in self._params]

    def _param_text(self, name: str, param: Parameter) -> str:
        """'W: (3, 100)'; 'W: (?, 100) not created' for a lazy parameter (its spec's
        sizes, '?' for those learnt from the first input); running statistics marked."""
        note = ' (not trained)' if name in self._buffer_names else ''
        if param.data is not None:
            return f'{name}: {tuple(param.data.shape)}{note}'
        spec = self.param_specs().get(name)
        if spec is None:
            return f'{name}: not created{note}'
        shape = _shape_text(tuple('?' if isinstance(d, str) else d for d in spec.shape))
        return f'{name}: {shape} not created{note}'

    def __repr__(self) -> str:
        """The layer tree, PyTorch-like: ``Linear(W: (5, 4), b: (4,))`` for a layer with
        at most four parameters and no sublayers, and one indented line per parameter and
        sublayer otherwise: ``(l0): Linear(...)``; ``(1): relu`` for a plain function in a
        Sequential.

        >>> from zerograd.models import Sequential
        >>> print(Sequential(Linear(3, in_size=2), F.relu))
        Sequential(
          (l0): Linear(W: (2, 3), b: (3,))
          (1): relu
        )
        """
        items = self._repr_items()
        name = type(self).__name__
        extra = [self.extra_repr()] if self.extra_repr() else []
        if len(items) <= 4 and all(isinstance(obj, Parameter) for _, obj in items):
            return f'{name}(' + ', '.join(extra + [self._param_text(k, p)
                                                   for k, p in items]) + ')'
        lines = extra
        for key, obj in items:
            if isinstance(obj, Parameter):
                lines.append(self._param_text(key, obj))
            elif isinstance(obj, Layer):
                lines.append(f'({key}): ' + repr(obj).replace('\n', '\n  '))
            else:
                lines.append(f'({key}): {_callable_name(obj)}')
        return f'{name}(\n  ' + '\n  '.join(lines) + '\n)'

    def extra_repr(self) -> str:
        """The layer's settings for its repr (``'kernel_size=2, stride=2, pad=0'``), as
        PyTorch's ``extra_repr``; '' here. Layers with settings override it."""
        return ''

    def _repr_html_(self) -> str:
        """The layer tree as an HTML table for Jupyter (layers, parameter shapes, counts),
        without running anything; ``summary(x)`` adds the output shapes."""
        from zerograd.summary import layer_table_html  # at call time: summary imports us
        return layer_table_html(self)

    def summary(self, *inputs: Any, depth: int | None = None) -> Any:
        """Run one forward on ``inputs`` (no graph, test mode) and return a
        ``zerograd.summary.Summary``: each layer's output shape, parameter counts and
        memory; ``print()`` it for the table. See ``zerograd.summary.summary``."""
        from zerograd.summary import summary
        return summary(self, *inputs, depth=depth)

    def to_cpu(self) -> Layer:
        """Move every parameter to the CPU (NumPy); returns the layer."""
        for param in self.params():
            param.to_cpu()
        return self

    def to_gpu(self) -> Layer:
        """Move every parameter to the GPU (CuPy); returns the layer."""
        for param in self.params():
            param.to_gpu()
        return self

    # -- weight files ---------------------------------------------------------
    def _flatten_params(self, params_dict: dict, parent_key: str = '') -> None:
        """Fill params_dict with {'l0/W': Parameter, ...}: attribute paths joined by '/'."""
        for name in self._params:
            obj = self.__dict__[name]
            key = parent_key + '/' + name if parent_key else name
            if isinstance(obj, Layer):
                obj._flatten_params(params_dict, key)
            else:
                params_dict[key] = obj

    def named_params(self) -> dict[str, Parameter]:
        """{'l0/W': Parameter, ...}, the keys of the weight file."""
        params_dict: dict[str, Parameter] = {}
        self._flatten_params(params_dict)
        return params_dict

    def param_specs(self) -> dict[str, ParamSpec]:
        """What each of this layer's own parameters (by attribute name) must be when a
        file gives it before the layer has created it: its shape, ints for the sizes the
        layer knows and names for those it learns from its first input, and the dtype it
        is made in. A parameter without a spec takes any shape in float16/32/64."""
        return {}

    def _named_specs(self, parent_key: str = '') -> dict[str, ParamSpec]:
        """{'l0/W': ParamSpec}, each size name qualified by its layer ('l0/in_size'), so
        that a name means the same size within one layer only."""
        specs: dict[str, ParamSpec] = {}
        own = self.param_specs()
        for name in self._params:
            obj = self.__dict__[name]
            key = parent_key + '/' + name if parent_key else name
            if isinstance(obj, Layer):
                specs.update(obj._named_specs(key))
            elif name in own:
                shape = tuple(f'{parent_key}/{d}' if parent_key and isinstance(d, str) else d
                              for d in own[name].shape)
                specs[key] = ParamSpec(shape, own[name].dtype)
        return specs

    def not_created_by_design(self, parent_key: str = '') -> set[str]:
        """Keys of parameters that are not created yet although this layer has run, by
        design (an RNN's h2h weight before its second step). Files leave them out, and
        loading accepts their absence while they are not created."""
        keys: set[str] = set()
        for name in self._params:
            obj = self.__dict__[name]
            if isinstance(obj, Layer):
                keys |= obj.not_created_by_design(parent_key + '/' + name if parent_key
                                                  else name)
        return keys

    def weight_arrays(self, who: str, name_model: bool = False) -> dict[str, np.ndarray]:
        """{key: NumPy array} of every created parameter, for a file; ValueError naming
        ``who`` (and the model's class, if asked) for a parameter not created yet (unless
        ``not_created_by_design``)."""
        arrays = {}
        may_be_missing = self.not_created_by_design()
        for key, param in self.named_params().items():
            if param.data is None:
                if key in may_be_missing:
                    continue
                of = f' of {type(self).__name__}' if name_model else ''
                raise ValueError(f'{who}: parameter {key!r}{of} is not created yet (layers '
                                 'create their weights on the first call: run one forward '
                                 'pass before saving)')
            arrays[key] = cuda.as_numpy(param.data)
        return arrays

    def save_weights(self, path: str) -> None:
        """Write every parameter to a compressed ``.npz`` file, keys ``l0/W`` ...
        ``.npz`` is appended to ``path`` when missing (``load_weights`` accepts either).

        The file is written next to ``path`` under a temporary name and renamed, so a
        crash never leaves a broken file behind.
        """
        _atomic_savez(path, self.weight_arrays(f'{type(self).__name__}.save_weights'))

    def load_weights(self, path: str) -> None:
        """Read a file written by ``save_weights`` (or by the book's code); ``path`` may
        leave out the ``.npz`` that ``save_weights`` appends.

        Every key, shape and dtype is checked from the file's array headers before any
        data is read, then every value (finite, fits the parameter's dtype); on any
        difference nothing is changed and the error names what differs. Files are read
        with ``allow_pickle=False``.
        """
        who = f'{type(self).__name__}.load_weights'
        path = npz_path_to_read(path)
        where = f'{who}({path!r})'
        arrays = read_npz(path, who, check_headers=lambda headers:
                          self._check_weight_layout(headers, where))
        self._set_weights(self._check_weights(arrays, where))

    def _check_weight_layout(self, arrays: Mapping[str, Any], who: str,
                             strict: bool = True, source: str = 'file') -> None:
        """Check keys, shapes and dtypes of ``arrays`` ({key: anything with .shape and
        .dtype: arrays or .npy headers}) against the parameters; raise ValueError naming
        every key missing (only when ``strict``), unexpected, of another shape or of a
        dtype the parameter does not take. ``source`` names the arrays in the message
        ('file', or 'state' for a state dict)."""
        params = self.named_params()
        specs = self._named_specs()
        may_be_missing = {key for key in self.not_created_by_design()
                          if params[key].data is None}
        missing = sorted(set(params) - set(arrays) - may_be_missing) if strict else []
        unexpected = sorted(set(arrays) - set(params))
        common = sorted(set(params) & set(arrays))
        not_numbers, wrong_dtype = [], []
        for key in common:
            dtype = arrays[key].dtype
            if dtype.kind not in 'biufc':
                not_numbers.append(f'{key}: {dtype}')
                continue
            problem = _dtype_problem(dtype, params[key], specs.get(key))
            if problem:
                wrong_dtype.append(f'{key}: {problem}')
        wrong_shape = []
        sizes: dict[str, int] = {}  # a size name ('l0/in_size') -> the size the file gives
        for key in common:
            shape = tuple(arrays[key].shape)
            if params[key].data is not None:
                if shape != params[key].data.shape:
                    wrong_shape.append(f'{key}: {source} {shape}, model '
                                   f'{params[key].data.shape}')
            elif key in specs and not _fits_spec(shape, specs[key].shape, sizes):
                expected = _shape_text(specs[key].shape)
                wrong_shape.append(f'{key}: {source} {shape}, the layer makes {expected}')
        if missing or unexpected or wrong_shape or not_numbers or wrong_dtype:
            problems = []
            if missing:
                problems.append(f'missing from the {source}: {missing}')
            if unexpected:
                problems.append(f'not in the model: {unexpected}')
            if wrong_shape:
                problems.append(f'different shapes: {wrong_shape}')
            if not_numbers:
                problems.append(f'not numbers: {not_numbers}')
            if wrong_dtype:
                problems.append(f'wrong dtypes: {wrong_dtype}')
            raise ValueError(f'{who}: the {source} does not match the model; '
                             + '; '.join(problems))

    def _check_weights(self, arrays: dict[str, np.ndarray], who: str,
                       strict: bool = True, source: str = 'file') -> dict[str, np.ndarray]:
        """Check ``arrays`` against the parameters (``_check_weight_layout``, then every
        value finite and representable in the dtype it is loaded into); return them in
        that dtype. ValueError naming every key that differs; nothing changes."""
        self._check_weight_layout(arrays, who, strict, source)
        params = self.named_params()
        specs = self._named_specs()
        converted, not_finite, too_large = {}, [], []
        for key, data in arrays.items():
            target = _target_dtype(data.dtype, params[key], specs.get(key))
            with np.errstate(over='ignore', invalid='ignore'):  # found below, by name
                value = data.astype(target, copy=False)
            if value.dtype.kind in 'fc' and not np.isfinite(value).all():
                if np.isfinite(data).all():
                    largest = float(np.abs(data).max())
                    too_large.append(f'{key}: largest |value| {largest:g} does not fit '
                                     f'{target}')
                else:
                    not_finite.append(key)
            converted[key] = value
        if not_finite or too_large:
            problems = []
            if not_finite:
                problems.append(f'not finite (nan or inf): {not_finite}')
            if too_large:
                problems.append(f'values too large: {too_large}')
            raise ValueError(f'{who}: the {source} does not match the model; '
                             + '; '.join(problems))
        return converted

    def _set_weights(self, arrays: dict[str, np.ndarray]) -> None:
        """Give every parameter its array (as returned by ``_check_weights``), in the
        parameter's dtype and on its device. A parameter not created yet goes to the
        device of those that are (``to_gpu()`` moves only created ones), so loading keeps
        a GPU model on the GPU."""
        params = self.named_params()
        model_xp = next((cuda.get_array_module(p.data) for p in params.values()
                         if p.data is not None), np)
        for key, param in params.items():
            if key not in arrays:  # not created by design, in the file and in the model
                continue
            data = arrays[key]
            xp = model_xp
            if param.data is not None:
                data = data.astype(param.data.dtype, copy=False)
                xp = cuda.get_array_module(param.data)
            if xp is not np:
                data = xp.asarray(data)
            param.data = data


def _callable_name(fn: Any) -> str:
    """A plain function's name for the layer tree ('relu'), else its repr."""
    name = getattr(fn, '__name__', None)
    return name if isinstance(name, str) else repr(fn)


class LoadResult(NamedTuple):
    """What ``Layer.load_state_dict`` did not load: keys of the model missing from the
    state, and keys of the state the model does not have (both empty when strict)."""
    missing_keys: list[str]
    unexpected_keys: list[str]


class ParamSpec(NamedTuple):
    """What a parameter that a layer creates on its first call must be when a file gives
    it first (see ``Layer.param_specs``)."""
    shape: tuple[int | str, ...]  # an int: a size the layer knows; a str: one it learns
    dtype: np.dtype | None = None  # the dtype the layer makes it in; None: the file's


_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _fits_spec(shape: tuple[int, ...], spec: tuple[int | str, ...],
               sizes: dict[str, int]) -> bool:
    """Whether ``shape`` has the spec's dimensions, its known sizes, and for each size
    name the size it had before (recorded in ``sizes``); a size is at least 1."""
    if len(shape) != len(spec):
        return False
    for size, expected in zip(shape, spec):
        if isinstance(expected, str):
            if size < 1 or sizes.setdefault(expected, size) != size:
                return False
        elif size != expected:
            return False
    return True


def _shape_text(spec: tuple[int | str, ...]) -> str:
    """A spec's shape as a tuple is written, size names unqualified: '(in_size, 4)'."""
    parts = [d.rpartition('/')[2] if isinstance(d, str) else str(d) for d in spec]
    return '(' + ', '.join(parts) + (',' if len(parts) == 1 else '') + ')'


def _dtype_problem(dtype: np.dtype, param: Parameter, spec: ParamSpec | None) -> str:
    """Why a file array of ``dtype`` cannot be loaded into ``param`` ('' if it can). A
    floating parameter, or one not created yet, takes only real floating arrays (NumPy
    would drop an imaginary part, and an integer file is not a weight file); a parameter
    of another dtype takes arrays that cast to it without loss."""
    if param.data is not None:
        target = param.data.dtype
        if target.kind == 'f':
            ok = dtype.kind == 'f'
        else:
            ok = np.can_cast(dtype, target, casting='safe')
        return '' if ok else f'file {dtype}, model {target}'
    if dtype.kind != 'f' or (spec is None or spec.dtype is None) and dtype not in _FLOATS:
        return f'file {dtype}, the layer takes a real float (float16, float32 or float64)'
    return ''


def _target_dtype(dtype: np.dtype, param: Parameter, spec: ParamSpec | None) -> np.dtype:
    """The dtype a checked file array is loaded in: the parameter's, else the one its
    layer makes it in, else the file's."""
    if param.data is not None:
        return param.data.dtype
    if spec is not None and spec.dtype is not None:
        return np.dtype(spec.dtype)
    return dtype


def npz_path_to_read(path: str) -> str:
    """``path``, or ``path + '.npz'`` when only that exists: the name ``np.savez`` (and so
    ``save_weights`` and ``checkpoints.save``) writes for a path without the suffix."""
    path = os.fspath(path)
    if not os.path.exists(path) and not path.endswith('.npz') and os.path.exists(path + '.npz'):
        path += '.npz'
    return path


# Temporary files are named '<target>.<pid>.<random>.tmp' beside the target, so the next
# save to the same target can tell which ones a killed process left behind.
def _atomic_savez(path: str, arrays: dict) -> None:
    """np.savez_compressed through ``utils.atomic_write``: the old file or the whole new
    one on disk, never half of one, with the umask's mode."""
    path = os.fspath(path)
    if not path.endswith('.npz'):
        path += '.npz'  # what np.savez would do, made explicit so the rename target is right
    utils.atomic_write(path, lambda file: np.savez_compressed(file, **arrays))


class NpyHeader(NamedTuple):
    """The shape and dtype an ``.npy`` member of an ``.npz`` file declares."""
    shape: tuple[int, ...]
    dtype: np.dtype


# Deflate cannot expand data more than 1032 to 1: a member that declares more is lying.
_MAX_DEFLATE_RATIO = 1032


def _physical_memory() -> int | None:
    """This machine's memory in bytes, or None where it cannot be asked."""
    try:
        return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
    except (AttributeError, ValueError, OSError):
        return None


def _read_npy_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str,
                     file_size: int, where: str) -> NpyHeader:
    """The header of one ``.npy`` member, checked against what the member can hold:
    its data must be exactly the member's declared size less the header, that size
    within what its compressed bytes can expand to, and all of it within the file."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ValueError(f'{where} holds {key!r} compressed with zip method '
                         f'{info.compress_type}; .npz files are stored or deflated')
    if info.compress_size > file_size:
        raise ValueError(f'{where} is corrupt or truncated: {key!r} declares '
                         f'{info.compress_size} compressed bytes, more than the whole file')
    limit = info.compress_size * (_MAX_DEFLATE_RATIO if info.compress_type
                                  == zipfile.ZIP_DEFLATED else 1) + 1024
    if info.file_size > limit:
        raise ValueError(f'{where} is corrupt: {key!r} declares {info.file_size} bytes, more '
                         f'than its {info.compress_size} compressed bytes can hold')
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise ValueError(f'{where} holds {key!r} in .npy format {version}, which weight '
                             'files do not use (1.0 and 2.0 are read)')
        header_size = member.tell()
    if any(size < 0 for size in shape):
        raise ValueError(f'{where} is corrupt: {key!r} declares shape {shape}')
    if dtype.hasobject:
        raise ValueError(f'{where} holds object arrays that need pickle; refusing to load '
                         'them (weight files hold plain arrays)')
    data_size = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if data_size != info.file_size - header_size:
        raise ValueError(f'{where} is corrupt: {key!r} declares shape {shape} {dtype} '
                         f'({data_size} bytes) but its member holds '
                         f'{info.file_size - header_size} bytes of data')
    return NpyHeader(tuple(shape), dtype)


def read_npz(path: str, who: str,
             check_headers: Callable[[dict[str, NpyHeader]], None] | None = None
             ) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read with ``allow_pickle=False``; a corrupt,
    truncated or pickle-needing file raises ValueError naming ``who`` and the path.

    Each member's ``.npy`` header is read and checked first: its data size must match the
    member (a header that lies is refused before anything is allocated) and the whole
    must fit this machine's memory. ``check_headers({key: NpyHeader})``, when given, then
    runs before any data is read, so a file with the wrong shapes costs no time.
    """
    path = os.fspath(path)
    with open(path, 'rb') as file:  # FileNotFoundError as it is
        magic = file.read(4)
        file_size = os.fstat(file.fileno()).st_size
    if magic != b'PK\x03\x04':  # every .npz is a zip archive
        raise ValueError(f'{who}: {path!r} is not a .npz weights file (it does not start '
                         'like a zip archive)')
    where = f'{who}: {path!r}'
    try:
        with zipfile.ZipFile(path) as archive:
            members = {}
            for info in archive.infolist():
                if not info.filename.endswith('.npy'):  # np.load would give raw bytes
                    raise ValueError(f'{where} holds {info.filename!r}, which is not a NumPy '
                                     'array')
                members[info.filename[:-len('.npy')]] = info
            headers = {key: _read_npy_header(archive, info, key, file_size, where)
                       for key, info in members.items()}
            total = sum(math.prod(h.shape) * h.dtype.itemsize for h in headers.values())
            memory = _physical_memory()
            if memory is not None and total > memory:
                raise ValueError(f'{where} declares arrays of {total / 2**30:.1f} GiB in '
                                 f'all, more than this machine\'s memory '
                                 f'({memory / 2**30:.1f} GiB); refusing to read it')
            if check_headers is not None:
                check_headers(headers)
            arrays = {}
            for key, info in members.items():
                with archive.open(info) as member:
                    arrays[key] = np.lib.format.read_array(member, allow_pickle=False)
    except ValueError as error:
        message = str(error)
        if message.startswith(who):  # ours, already naming the file
            raise
        raise ValueError(f'{where} is not a readable weights file: {error}') from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, KeyError) as error:
        raise ValueError(f'{where} is corrupt or truncated: {error}') from None
    return arrays


# =============================================================================
# Layers
# =============================================================================
def _check_size(owner: str, name: str, value: Any, optional: bool = False) -> int | None:
    """A layer size (out_size, in_channels, ...): a positive int (None too when
    ``optional``). The wrong type (bool, float, str) is a TypeError, a wrong value (0, -1)
    a ValueError, both naming the layer, the argument and the value."""
    if value is None and optional:
        return None
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        kind = 'a positive int or None' if optional else 'a positive int'
        raise TypeError(f'{owner}: {name} must be {kind}, got {value!r} '
                        f'({type(value).__name__})')
    if value <= 0:
        raise ValueError(f'{owner}: {name} must be a positive int, got {value}')
    return int(value)


def _follow(param: Parameter | None, lead: Parameter) -> None:
    """Move param to lead's device. A lazy W is created on its first input's device; the
    bias, created on the CPU with the layer, follows it there, so a layer fed GPU data
    works even when ``to_gpu()`` was not called."""
    if param is None or param.data is None:
        return
    xp = cuda.get_array_module(lead.data)
    if cuda.get_array_module(param.data) is not xp:
        if xp is np:
            param.to_cpu()
        else:
            param.to_gpu()


def _bias(owner: str, out_size: int, nobias: bool, dtype: np.dtype,
          bias_initializer: initializers.Initializer | None) -> Parameter | None:
    """A layer's bias b (out_size,): None with ``nobias``; zeros (the book's) without a
    ``bias_initializer``; else not created yet, drawn right after W by ``_draw_W``."""
    if nobias:
        if bias_initializer is not None:
            raise ValueError(f'{owner}: bias_initializer given with nobias=True')
        return None
    if bias_initializer is None:
        return Parameter(np.zeros(out_size, dtype=dtype), name='b')
    return Parameter(None, name='b')


def _draw_W(layer: Layer, W_shape: tuple[int, ...], b_size: int, fan_in: int, fan_out: int,
            xp: Any) -> None:
    """Draw a layer's W, and its b (b_size,) when a bias_initializer waits for it (after
    W: one fixed order of draws), with the layer's initializers and fans."""
    W = layer.initializer(W_shape, layer.dtype, xp, fan_in=fan_in, fan_out=fan_out)
    if layer.b is not None and layer.b.data is None:
        # Set only once both are drawn: a bias initializer that fails leaves neither.
        layer.b.data = layer.bias_initializer((b_size,), layer.dtype, xp, fan_in=fan_in,
                                              fan_out=fan_out)
    layer.W.data = W


class Linear(Layer):
    """y = x W + b. x: (N, in) -> (N, out).

    W (in, out) is created on the first call when ``in_size`` is None, drawn as the book
    does: ``randn(in, out) * sqrt(1 / in)`` from NumPy's global generator; b is zeros.
    ``initializer`` draws W instead and ``bias_initializer`` b, both with fan_in = in and
    fan_out = out, when W is created: an ``initializers.Initializer``, a name
    (``'he_normal'``) or a callable ``f(shape) -> array``. With a bias_initializer and no
    ``in_size``, b too waits for the first call.

    >>> import numpy as np
    >>> from zerograd import initializers
    >>> layer = Linear(3, in_size=2, initializer=initializers.Constant(0.5),
    ...                bias_initializer='ones')
    >>> layer.W.data, layer.b.data
    (array([[0.5, 0.5, 0.5],
           [0.5, 0.5, 0.5]], dtype=float32), array([1., 1., 1.], dtype=float32))
    """

    def __init__(self, out_size: int, nobias: bool = False, dtype: Any = np.float32,
                 in_size: int | None = None,
                 initializer: initializers.InitializerLike | None = None,
                 bias_initializer: initializers.InitializerLike | None = None) -> None:
        super().__init__()
        self.in_size = _check_size('Linear', 'in_size', in_size, optional=True)
        self.out_size = _check_size('Linear', 'out_size', out_size)
        self.dtype = np.dtype(dtype)
        # The book's default, randn * sqrt(1 / in), is LeCunNormal's draws bit for bit.
        self.initializer = initializers.get(
            initializers.LeCunNormal() if initializer is None else initializer,
            'Linear', 'initializer')
        self.bias_initializer = None if bias_initializer is None else initializers.get(
            bias_initializer, 'Linear', 'bias_initializer')
        self.W = Parameter(None, name='W')
        self.b = _bias('Linear', self.out_size, nobias, self.dtype, self.bias_initializer)
        if in_size is not None:
            self._init_W()

    def _init_W(self, xp: Any = np) -> None:
        I, O = self.in_size, self.out_size
        _draw_W(self, (I, O), O, I, O, xp)

    def param_specs(self) -> dict[str, ParamSpec]:
        in_size = 'in_size' if self.in_size is None else self.in_size
        return {'W': ParamSpec((in_size, self.out_size), self.dtype),
                'b': ParamSpec((self.out_size,), self.dtype)}

    def forward(self, x: Any) -> Variable:
        if not isinstance(x, Variable) and not cuda._is_cupy_array(x) \
                and not isinstance(x, np.ndarray):
            raise TypeError(f'Linear: x must be an ndarray or a Variable, got {type(x).__name__}')
        if self.W.data is None:
            if x.ndim != 2:
                raise ValueError(f'Linear: x must be (N, in_size), got shape {x.shape}')
            self.in_size = x.shape[1]
            self._init_W(cuda.get_array_module(x))
            _follow(self.b, self.W)
        elif x.ndim != 2 or x.shape[1] != self.W.data.shape[0]:
            raise ValueError(f'Linear: input has {x.shape[-1] if x.ndim else 0} features but W '
                             f'expects {self.W.data.shape[0]} (x.shape={x.shape}, '
                             f'W.shape={self.W.data.shape})')
        return F.linear(x, self.W, self.b)


class BatchNorm(Layer):
    """Batch normalisation for x (N, C) or (N, C, H, W); parameters created on the first
    call. ``avg_mean``/``avg_var`` are running statistics: saved with the weights, never
    trained (they get no gradient), not in ``parameters()``. In training (``in_training()``)
    it normalises by the batch's statistics and updates the running ones; in eval mode
    (``eval()``, or ``test_mode()``) it uses the running ones and changes nothing."""

    _buffer_names = ('avg_mean', 'avg_var')  # running statistics: not in parameters()

    def __init__(self) -> None:
        super().__init__()
        self.avg_mean = Parameter(None, name='avg_mean')
        self.avg_var = Parameter(None, name='avg_var')
        self.gamma = Parameter(None, name='gamma')
        self.beta = Parameter(None, name='beta')

    def _init_params(self, x: Any) -> None:
        xp = cuda.get_array_module(x)
        C = x.shape[1]
        if self.avg_mean.data is None:
            self.avg_mean.data = xp.zeros(C, dtype=x.dtype)
        if self.avg_var.data is None:
            self.avg_var.data = xp.ones(C, dtype=x.dtype)
        if self.gamma.data is None:
            self.gamma.data = xp.ones(C, dtype=x.dtype)
        if self.beta.data is None:
            self.beta.data = xp.zeros(C, dtype=x.dtype)

    def param_specs(self) -> dict[str, ParamSpec]:
        # One size C, the input's channels, for all four; the dtype is the input's.
        return {name: ParamSpec(('C',)) for name in ('avg_mean', 'avg_var', 'gamma', 'beta')}

    def forward(self, x: Any) -> Variable:
        if not isinstance(x, Variable) and not cuda._is_cupy_array(x) \
                and not isinstance(x, np.ndarray):
            raise TypeError(f'BatchNorm: x must be an ndarray or a Variable, got '
                            f'{type(x).__name__}')
        if x.dtype.kind != 'f':  # its parameters take x's dtype: they must be floats
            raise TypeError(f'BatchNorm: x must be floating point, got {x.dtype} (convert '
                            'it with x.astype(np.float32) or transforms.AsType)')
        F._check_batch_norm_x('BatchNorm', x)  # before any statistic is created or changed
        self._init_params(x)
        return F.batch_norm(x, self.gamma, self.beta, self.avg_mean.data, self.avg_var.data)


class EmbedID(Layer):
    """Rows of W (in_size, out_size) picked by integer ids: x (...) -> (..., out_size).
    W is drawn from NumPy's global generator, ``randn(in_size, out_size)``, as float32;
    ``initializer`` (an ``initializers.Initializer``, a name or a callable
    ``f(shape) -> array``) draws it instead, with fan_in = in_size and fan_out = out_size:
    EmbedID is a Linear applied to one-hot rows."""

    def __init__(self, in_size: int, out_size: int,
                 initializer: initializers.InitializerLike | None = None) -> None:
        super().__init__()
        in_size = _check_size('EmbedID', 'in_size', in_size)
        out_size = _check_size('EmbedID', 'out_size', out_size)
        # The book's randn(in_size, out_size) is Normal(0, 1)'s draws bit for bit.
        self.initializer = initializers.get(
            initializers.Normal() if initializer is None else initializer,
            'EmbedID', 'initializer')
        self.W = Parameter(self.initializer((in_size, out_size), np.float32, np,
                                            fan_in=in_size, fan_out=out_size), name='W')

    def forward(self, x: Any) -> Variable:
        return F.embed_id(x, self.W)


# =============================================================================
# Convolution layers
# =============================================================================
class _ConvBase(Layer):
    """What Conv2d and Deconv2d share: arguments, lazy W, b, input checks.

    Subclasses say how W is laid out (``_W_shape``) and which function they call.
    """

    def __init__(self, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, pad: int | tuple[int, int] = 0,
                 nobias: bool = False, dtype: Any = np.float32,
                 in_channels: int | None = None,
                 initializer: initializers.InitializerLike | None = None,
                 bias_initializer: initializers.InitializerLike | None = None) -> None:
        super().__init__()
        owner = type(self).__name__
        # Checked at construction, not at the first call, and by the conv functions' own
        # check: the same mistake gets the same error (TypeError or ValueError) here and
        # in F.conv2d.
        _window_args(owner, kernel_size, stride, pad)
        self.in_channels = _check_size(owner, 'in_channels', in_channels, optional=True)
        self.out_channels = _check_size(owner, 'out_channels', out_channels)
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad = pad
        self.dtype = np.dtype(dtype)
        # The book's default, randn * sqrt(1 / (C KH KW)), is LeCunNormal's draws bit for
        # bit with fan_in = C KH KW.
        self.initializer = initializers.get(
            initializers.LeCunNormal() if initializer is None else initializer,
            owner, 'initializer')
        self.bias_initializer = None if bias_initializer is None else initializers.get(
            bias_initializer, owner, 'bias_initializer')
        self.W = Parameter(None, name='W')
        self.b = _bias(owner, self.out_channels, nobias, self.dtype, self.bias_initializer)
        if in_channels is not None:
            self._init_W()

    def _W_shape(self, C: int, OC: int, KH: int, KW: int) -> tuple[int, int, int, int]:
        raise NotImplementedError

    def _W_in_channels(self) -> int:
        """The input channels the existing W expects."""
        raise NotImplementedError

    def param_specs(self) -> dict[str, ParamSpec]:
        C = 'in_channels' if self.in_channels is None else self.in_channels
        KH, KW = _pair(type(self).__name__, 'kernel_size', self.kernel_size)
        return {'W': ParamSpec(self._W_shape(C, self.out_channels, KH, KW), self.dtype),
                'b': ParamSpec((self.out_channels,), self.dtype)}

    def _init_W(self, xp: Any = np) -> None:
        C, OC = self.in_channels, self.out_channels
        KH, KW = _pair(type(self).__name__, 'kernel_size', self.kernel_size)
        # The same fans for both layouts: Deconv2d's input side is C too (see
        # initializers' table; PyTorch's ConvTranspose2d would take OC KH KW).
        _draw_W(self, self._W_shape(C, OC, KH, KW), OC, C * KH * KW, OC * KH * KW, xp)

    def _check_input(self, x: Any) -> None:
        owner = type(self).__name__
        if not isinstance(x, Variable) and not cuda._is_cupy_array(x) \
                and not isinstance(x, np.ndarray):
            raise TypeError(f'{owner}: x must be an ndarray or a Variable, got '
                            f'{type(x).__name__}')
        if x.ndim != 4:
            raise ValueError(f'{owner}: x must be 4-D (N, C, H, W), got shape {x.shape}')
        if self.W.data is None:
            self.in_channels = x.shape[1]
            self._init_W(cuda.get_array_module(x))
            _follow(self.b, self.W)
        elif x.shape[1] != self._W_in_channels():
            raise ValueError(f'{owner}: input has {x.shape[1]} channels but W expects '
                             f'{self._W_in_channels()} (x.shape={x.shape}, '
                             f'W.shape={self.W.data.shape})')


class Conv2d(_ConvBase):
    """2-D convolution: x (N, C, H, W) -> (N, OC, OH, OW), OH = (H + 2 PH - KH) // SH + 1.

    W (OC, C, KH, KW) is created on the first call when ``in_channels`` is None (C taken
    from x), drawn as the book does: ``randn(OC, C, KH, KW) * sqrt(1 / (C KH KW))`` from
    NumPy's global generator, in ``dtype``; b (OC,) is zeros. ``kernel_size``, ``stride``
    and ``pad`` are ints or pairs.

    >>> import numpy as np
    >>> conv = Conv2d(8, kernel_size=3, stride=2, pad=1)
    >>> y = conv(np.zeros((2, 3, 32, 32), dtype=np.float32))
    >>> y.shape, conv.W.shape, y.dtype
    ((2, 8, 16, 16), (8, 3, 3, 3), dtype('float32'))
    """

    def _W_shape(self, C: int, OC: int, KH: int, KW: int) -> tuple[int, int, int, int]:
        return OC, C, KH, KW

    def _W_in_channels(self) -> int:
        return self.W.data.shape[1]

    def forward(self, x: Any) -> Variable:
        self._check_input(x)
        return F.conv2d(x, self.W, self.b, self.stride, self.pad)


class Deconv2d(_ConvBase):
    """2-D transposed convolution: x (N, C, H, W) -> (N, OC, OH, OW),
    OH = SH (H - 1) + KH - 2 PH.

    W (C, OC, KH, KW) is created on the first call when ``in_channels`` is None, drawn as
    the book does: ``randn(C, OC, KH, KW) * sqrt(1 / (C KH KW))``, in ``dtype``; b (OC,)
    is zeros.

    >>> import numpy as np
    >>> deconv = Deconv2d(4, kernel_size=4, stride=2, pad=1)
    >>> y = deconv(np.zeros((2, 8, 7, 7), dtype=np.float32))
    >>> y.shape, deconv.W.shape
    ((2, 4, 14, 14), (8, 4, 4, 4))
    """

    def _W_shape(self, C: int, OC: int, KH: int, KW: int) -> tuple[int, int, int, int]:
        return C, OC, KH, KW

    def _W_in_channels(self) -> int:
        return self.W.data.shape[0]

    def forward(self, x: Any) -> Variable:
        self._check_input(x)
        return F.deconv2d(x, self.W, self.b, self.stride, self.pad)


# =============================================================================
# Recurrent layers
# =============================================================================
def _check_step(owner: str, x: Any, state: Any) -> None:
    """One time step's input: (N, in_size), with the batch size of the state it meets."""
    if not hasattr(x, 'ndim'):
        raise TypeError(f'{owner}: x must be an ndarray or a Variable, got {type(x).__name__}')
    if x.ndim != 2:
        raise ValueError(f'{owner}: x must be (N, in_size), one time step of a batch, got '
                         f'shape {x.shape}')
    if state is not None and x.shape[0] != state.shape[0]:
        raise ValueError(f'{owner}: x has batch size {x.shape[0]} but the hidden state has '
                         f'{state.shape[0]} (x.shape={x.shape}, h.shape={state.shape}); call '
                         'reset_state() before starting a new sequence')


def _x_plus_h(x2h: Linear, h2h: Linear, x: Any, h: Variable) -> Variable:
    """x2h(x) + h2h(h) of a recurrent layer: one op (``F.linear_pair``, the same numbers)
    when they are a plain pair (``_plain_pair``; linear_pair has no second bias); else
    through the sublayers (the first call of a lazy one creates its weights there, in the
    book's order, and a replaced sublayer's own forward runs)."""
    if _plain_pair(x2h, h2h):
        return F.linear_pair(x, x2h.W, x2h.b, h, h2h.W)
    return x2h(x) + h2h(h)


def _plain_pair(x2h: Linear, h2h: Linear) -> bool:
    """True when x2h and h2h are plain Linears with their weights made, x2h with a bias and
    h2h without: what F.linear_pair (and F.lstm_step, per gate) computes."""
    return (type(x2h) is Linear and type(h2h) is Linear and x2h.b is not None
            and h2h.b is None and x2h.W.data is not None and h2h.W.data is not None)


class RNN(Layer):
    """Elman recurrent layer, one time step per call: x (N, in_size) -> h (N, hidden_size).

    h = tanh(x2h(x)) on the first step after ``reset_state()``, then
    h = tanh(x2h(x) + h2h(h)). ``h`` is kept between calls; cut the graph behind it with
    ``loss.unchain_backward()`` for truncated backprop through time.

    Sublayers, created in this order: ``x2h = Linear(hidden_size, in_size=in_size)`` and
    ``h2h = Linear(hidden_size, nobias=True)``, whose W is (hidden_size, hidden_size).
    When ``in_size`` is None both are lazy: x2h's W is drawn on the first step and h2h's on
    the second (its first use), the book's order, so seeded runs draw the book's weights.
    Fix: the book gave h2h ``in_size=in_size``, a wrong shape whenever in_size differs
    from hidden_size; here h2h is hidden x hidden whatever in_size is.

    >>> import numpy as np
    >>> rnn = RNN(5, in_size=3)
    >>> rnn(np.ones((2, 3), dtype=np.float32)).shape, rnn.h2h.W.shape
    ((2, 5), (5, 5))
    """

    def __init__(self, hidden_size: int, in_size: int | None = None) -> None:
        super().__init__()
        self.hidden_size = _check_size('RNN', 'hidden_size', hidden_size)
        _check_size('RNN', 'in_size', in_size, optional=True)
        self.x2h = Linear(hidden_size, in_size=in_size)
        # Eager exactly when the book's h2h was (in_size given), so the draw order is the
        # book's; but always with the hidden size as input size (the Fix).
        self.h2h = Linear(hidden_size, in_size=hidden_size if in_size is not None else None,
                          nobias=True)
        self.h: Variable | None = None

    def reset_state(self) -> None:
        """Forget the hidden state: the next call starts a new sequence."""
        self.h = None

    def not_created_by_design(self, parent_key: str = '') -> set[str]:
        # After one step a lazy RNN has x2h's W but not yet h2h's (the book's draw order).
        # (Before any step x2h's W is missing too, and that one is still an error.)
        keys = super().not_created_by_design(parent_key)
        if self.h2h.W.data is None:
            keys.add(parent_key + '/h2h/W' if parent_key else 'h2h/W')
        return keys

    def forward(self, x: Any) -> Variable:
        _check_step('RNN', x, self.h)
        if self.h is None:
            h_new = F.tanh(self.x2h(x))
        else:  # x2h(x) + h2h(h) as one op (F.linear_pair) once h2h's W exists
            h_new = F.tanh(_x_plus_h(self.x2h, self.h2h, x, self.h))
        self.h = h_new
        return h_new


class LSTM(Layer):
    """Long short-term memory layer, one time step per call:
    x (N, in_size) -> h (N, hidden_size), with the cell c (N, hidden_size) kept inside.

    Gates f, i, o = sigmoid(x2f(x) + h2f(h)), ...; u = tanh(x2u(x) + h2u(h)); the h terms
    are absent on the first step after ``reset_state()``. c = i u on the first step, else
    c = f c + i u; h = o tanh(c).

    Sublayers, created in this order: ``x2f, x2i, x2o, x2u`` (Linear(hidden_size,
    in_size=in_size), lazy when in_size is None) and ``h2f, h2i, h2o, h2u``
    (Linear(hidden_size, in_size=hidden_size, nobias=True)), as in the book: the h2* weights
    are drawn at construction and the x2* weights on the first step, so seeded runs draw the
    book's weights. The hidden-to-hidden weights are hidden x hidden.

    >>> import numpy as np
    >>> lstm = LSTM(4)
    >>> lstm(np.ones((2, 3), dtype=np.float32)).shape, lstm.c.shape
    ((2, 4), (2, 4))
    """

    def __init__(self, hidden_size: int, in_size: int | None = None) -> None:
        super().__init__()
        H = _check_size('LSTM', 'hidden_size', hidden_size)
        I = _check_size('LSTM', 'in_size', in_size, optional=True)
        self.hidden_size = hidden_size
        self.x2f = Linear(H, in_size=I)
        self.x2i = Linear(H, in_size=I)
        self.x2o = Linear(H, in_size=I)
        self.x2u = Linear(H, in_size=I)
        # The book gives these in_size=H (already the right shape), so they are drawn now,
        # before the lazy x2* weights: kept, for the book's draw order.
        self.h2f = Linear(H, in_size=H, nobias=True)
        self.h2i = Linear(H, in_size=H, nobias=True)
        self.h2o = Linear(H, in_size=H, nobias=True)
        self.h2u = Linear(H, in_size=H, nobias=True)
        self.reset_state()

    def reset_state(self) -> None:
        """Forget h and c: the next call starts a new sequence."""
        self.h: Variable | None = None
        self.c: Variable | None = None

    def forward(self, x: Any) -> Variable:
        _check_step('LSTM', x, self.h)
        if self.h is None:
            # f is unused on the first step (c = i u), but x2f still runs first: its lazy W
            # is drawn here, before x2i's, as in the book.
            f = F.sigmoid(self.x2f(x))
            i = F.sigmoid(self.x2i(x))
            o = F.sigmoid(self.x2o(x))
            u = F.tanh(self.x2u(x))
            c_new = i * u
            h_new = o * F.tanh(c_new)
        elif self.c is None:  # an h given from outside (an encoder's, say), no cell yet
            f = F.sigmoid(self._gate(self.x2f, self.h2f, x))
            i = F.sigmoid(self._gate(self.x2i, self.h2i, x))
            o = F.sigmoid(self._gate(self.x2o, self.h2o, x))
            u = F.tanh(self._gate(self.x2u, self.h2u, x))
            c_new = i * u
            h_new = o * F.tanh(c_new)
        elif self._plain():
            # The same formulas in 2 ops instead of 26 (F.lstm_step): the same numbers
            # forward; backward adds the gradients of h from the four gates in its own
            # order, so their sums may differ in the last bits.
            x2, h2 = (self.x2f, self.x2i, self.x2o, self.x2u), (self.h2f, self.h2i, self.h2o,
                                                                 self.h2u)
            c_new, h_new = F.lstm_step(x, self.h, self.c, [s.W for s in x2],
                                       [s.b for s in x2], [s.W for s in h2])
        else:
            # A replaced sublayer, or x2f's weights not drawn yet (an h given from outside
            # before the first step): each x2*(x) + h2*(h) through _x_plus_h, the cell as
            # F.lstm_cell's two ops.
            c_new, h_new = F.lstm_cell(self.c, self._gate(self.x2f, self.h2f, x),
                                       self._gate(self.x2i, self.h2i, x),
                                       self._gate(self.x2o, self.h2o, x),
                                       self._gate(self.x2u, self.h2u, x))
        self.h, self.c = h_new, c_new
        return h_new

    def _plain(self) -> bool:
        """True when each gate's x2* and h2* are a plain pair (``_plain_pair``): the case
        F.lstm_step computes."""
        return (_plain_pair(self.x2f, self.h2f) and _plain_pair(self.x2i, self.h2i)
                and _plain_pair(self.x2o, self.h2o) and _plain_pair(self.x2u, self.h2u))

    def _gate(self, x2g: Linear, h2g: Linear, x: Any) -> Variable:
        """x2g(x) + h2g(h), as one op when they are a plain pair (``_plain_pair``), else
        through the layers themselves."""
        return _x_plus_h(x2g, h2g, x, self.h)


# =============================================================================
# The training kit's layers: GRU, LayerNorm, and functions as layers (Sequential)
# =============================================================================
def _gru_sum(x2g: Linear, h2g: Linear, x: Any, h: Variable) -> Variable:
    """x2g(x) + h2g(h), both with their biases: ``F.linear_pair`` plus h2g's bias (two ops)
    when both are plain Linears with weights and x2g has a bias, else through the layers."""
    if (type(x2g) is Linear and type(h2g) is Linear and x2g.b is not None
            and x2g.W.data is not None and h2g.W.data is not None):
        y = F.linear_pair(x, x2g.W, x2g.b, h, h2g.W)
        return y if h2g.b is None else y + h2g.b
    return x2g(x) + h2g(h)


class GRU(Layer):
    """Gated recurrent unit, one time step per call: x (N, in_size) -> h (N, hidden_size),
    with PyTorch's equations (``torch.nn.GRUCell``), so its weights carry over:

    r = sigmoid(x2r(x) + h2r(h)), z = sigmoid(x2z(x) + h2z(h)),
    n = tanh(x2n(x) + r h2n(h)), h' = (1 - z) n + z h.

    On the first step after ``reset_state()`` h is zeros (PyTorch's default h0): each
    h2g(h) is then its bias. ``h`` is kept between calls; cut the graph behind it with
    ``loss.unchain_backward()`` for truncated backprop through time.

    Sublayers, created in this order: ``x2r, x2z, x2n`` (Linear(hidden_size,
    in_size=in_size), lazy when in_size is None) and ``h2r, h2z, h2n`` (Linear(hidden_size,
    in_size=hidden_size), drawn at construction, as LSTM's h2*). Each has a bias, as
    PyTorch's b_i* and b_h*. From ``torch.nn.GRUCell``, whose weight_ih (3 H, in) stacks
    the gates r, z, n: ``x2r.W = weight_ih[:H].T``, ``x2r.b = bias_ih[:H]``,
    ``h2r.W = weight_hh[:H].T``, ``h2r.b = bias_hh[:H]``, and so on for z and n.

    >>> import numpy as np
    >>> gru = GRU(4, in_size=3)
    >>> gru(np.ones((2, 3), dtype=np.float32)).shape, gru.h2n.W.shape
    ((2, 4), (4, 4))
    """

    def __init__(self, hidden_size: int, in_size: int | None = None) -> None:
        super().__init__()
        H = _check_size('GRU', 'hidden_size', hidden_size)
        I = _check_size('GRU', 'in_size', in_size, optional=True)
        self.hidden_size = H
        self.x2r = Linear(H, in_size=I)
        self.x2z = Linear(H, in_size=I)
        self.x2n = Linear(H, in_size=I)
        self.h2r = Linear(H, in_size=H)
        self.h2z = Linear(H, in_size=H)
        self.h2n = Linear(H, in_size=H)
        self.reset_state()

    def reset_state(self) -> None:
        """Forget the hidden state: the next call starts a new sequence (from zeros)."""
        self.h: Variable | None = None

    def extra_repr(self) -> str:
        """'hidden_size=H, in_size=I' (in_size None until a lazy layer's first call)."""
        return f'hidden_size={self.hidden_size}, in_size={self.x2r.in_size}'

    def forward(self, x: Any) -> Variable:
        _check_step('GRU', x, self.h)
        W = self.x2r.W.data
        if W is None:
            # The lazy first call draws x2* on x's device; h2*, drawn on the CPU at
            # construction, follow them there (as a lazy Linear's bias follows its W).
            if cuda.get_array_module(x) is not np:
                for layer in (self.h2r, self.h2z, self.h2n):
                    layer.to_gpu()
        elif x.shape[1] != W.shape[0]:
            raise ValueError(f'GRU: input has {x.shape[1]} features but x2r.W expects '
                             f'{W.shape[0]} (x.shape={x.shape}, x2r.W.shape={W.shape})')
        if self.h is None:
            # h = 0: h2g(h) is h2g's bias exactly (0 W + b), and z h vanishes. x2r runs
            # first, so lazy weights are drawn in the order r, z, n.
            r = F.sigmoid(_plus_bias(self.x2r(x), self.h2r))
            z = F.sigmoid(_plus_bias(self.x2z(x), self.h2z))
            hn = self.h2n.b
            n = F.tanh(self.x2n(x) if hn is None else self.x2n(x) + r * hn)
            h_new = (1 - z) * n
        else:
            h = self.h
            r = F.sigmoid(_gru_sum(self.x2r, self.h2r, x, h))
            z = F.sigmoid(_gru_sum(self.x2z, self.h2z, x, h))
            n = F.tanh(self.x2n(x) + r * self.h2n(h))
            h_new = (1 - z) * n + z * h
        self.h = h_new
        return h_new


def _plus_bias(y: Variable, h2g: Linear) -> Variable:
    """y + h2g's bias (y when it has none): x2g(x) + h2g(0)."""
    return y if h2g.b is None else y + h2g.b


class LayerNorm(Layer):
    """Layer normalisation over the last ``len(normalized_shape)`` axes of x
    (``F.layer_norm``, PyTorch's ``torch.nn.LayerNorm``): ``x (..., *normalized_shape)`` ->
    the same shape. ``gamma`` (ones) and ``beta`` (zeros), of shape normalized_shape and
    ``dtype``, are PyTorch's weight and bias; ``elementwise_affine=False`` leaves them out.

    >>> import numpy as np
    >>> norm = LayerNorm(3)
    >>> norm(np.array([[1., 2., 3.]], dtype=np.float32)).data.round(4)
    array([[-1.2247,  0.    ,  1.2247]], dtype=float32)
    """

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5,
                 elementwise_affine: bool = True, dtype: Any = np.float32) -> None:
        super().__init__()
        self.normalized_shape = F.normalization._normalized_shape('LayerNorm',
                                                                  normalized_shape)
        if isinstance(eps, (bool, np.bool_)) or not isinstance(eps, (int, float, np.floating)):
            raise TypeError(f'LayerNorm: eps must be a float, got {eps!r}')
        if not eps >= 0:
            raise ValueError(f'LayerNorm: eps must be >= 0, got {eps}')
        if not isinstance(elementwise_affine, (bool, np.bool_)):
            raise TypeError(f'LayerNorm: elementwise_affine must be a bool, got '
                            f'{elementwise_affine!r}')
        self.eps = float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        self.dtype = np.dtype(dtype)
        if self.elementwise_affine:
            self.gamma = Parameter(np.ones(self.normalized_shape, dtype=self.dtype),
                                   name='gamma')
            self.beta = Parameter(np.zeros(self.normalized_shape, dtype=self.dtype),
                                  name='beta')
        else:
            self.gamma = self.beta = None

    def extra_repr(self) -> str:
        """PyTorch's: '(4,), eps=1e-05, elementwise_affine=True'."""
        return (f'{self.normalized_shape}, eps={self.eps}, '
                f'elementwise_affine={self.elementwise_affine}')

    def forward(self, x: Any) -> Variable:
        if not hasattr(x, 'ndim'):
            raise TypeError(f'LayerNorm: x must be an ndarray or a Variable, got '
                            f'{type(x).__name__}')
        k = len(self.normalized_shape)
        if x.ndim < k or tuple(x.shape[x.ndim - k:]) != self.normalized_shape:
            raise ValueError(f'LayerNorm: x must end with normalized_shape '
                             f'{self.normalized_shape}, got shape {x.shape}')
        return F.layer_norm(x, self.gamma, self.beta, self.eps, self.normalized_shape)


class Dropout(Layer):
    """Inverted dropout (``F.dropout``) while the layer is in training: each element zeroed
    with probability p, the rest scaled by 1 / (1 - p). The identity after ``eval()`` or
    under ``test_mode()`` (``in_training()``). x: any shape, float (bool/int: float64).

    >>> import numpy as np
    >>> drop = Dropout(0.5).eval()
    >>> drop(np.ones((1, 3), dtype=np.float32)).data
    array([[1., 1., 1.]], dtype=float32)
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.floating)):
            raise TypeError(f'Dropout: p must be a float in [0, 1), got {p!r}')
        if not 0.0 <= p < 1.0:
            raise ValueError(f'Dropout: p must be in [0, 1), got {p}')
        self.p = float(p)

    def extra_repr(self) -> str:
        """'p=0.5'."""
        return f'p={self.p}'

    def forward(self, x: Any) -> Variable:
        if self.in_training():
            return F.dropout(x, self.p)
        from zerograd.core import test_mode  # F.dropout's own test-mode path: x unchanged
        with test_mode():
            return F.dropout(x, self.p)


class _Pool2d(Layer):
    """What MaxPool2d and AvgPool2d share: the window arguments, checked at construction,
    and stride=None meaning kernel_size (PyTorch's default; the functions' default is the
    book's stride=1)."""

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] |
                 None = None, pad: int | tuple[int, int] = 0) -> None:
        super().__init__()
        stride = kernel_size if stride is None else stride
        # Checked now, as the conv layers check theirs; kept as given (an int or a pair).
        _window_args(type(self).__name__, kernel_size, stride, pad)
        self.kernel_size, self.stride, self.pad = kernel_size, stride, pad

    def extra_repr(self) -> str:
        """'kernel_size=2, stride=2, pad=0', each as given."""
        return f'kernel_size={self.kernel_size}, stride={self.stride}, pad={self.pad}'

    def _check_input(self, x: Any) -> None:
        owner = type(self).__name__
        if not hasattr(x, 'ndim'):
            raise TypeError(f'{owner}: x must be an ndarray or a Variable, got '
                            f'{type(x).__name__}')
        if x.ndim != 4:
            raise ValueError(f'{owner}: x must be 4-D (N, C, H, W), got shape {x.shape}')


class MaxPool2d(_Pool2d):
    """Max pooling as a layer (``F.pooling``): x (N, C, H, W) -> (N, C, OH, OW),
    OH = (H + 2 PH - KH) // SH + 1. stride defaults to kernel_size, as in PyTorch;
    pad < kernel_size; the padding never wins.

    >>> import numpy as np
    >>> MaxPool2d(2)(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)).data
    array([[[[ 5.,  7.],
             [13., 15.]]]], dtype=float32)
    """

    def forward(self, x: Any) -> Variable:
        self._check_input(x)
        return F.pooling(x, self.kernel_size, self.stride, self.pad)


class AvgPool2d(_Pool2d):
    """Average pooling as a layer (``F.average_pooling``): x (N, C, H, W) ->
    (N, C, OH, OW), OH = (H + 2 PH - KH) // SH + 1. stride defaults to kernel_size, as in
    PyTorch; zero padding counts in the average (PyTorch's count_include_pad=True).

    >>> import numpy as np
    >>> AvgPool2d(2)(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)).data
    array([[[[ 2.5,  4.5],
             [10.5, 12.5]]]], dtype=float32)
    """

    def forward(self, x: Any) -> Variable:
        self._check_input(x)
        return F.average_pooling(x, self.kernel_size, self.stride, self.pad)


class Flatten(Layer):
    """Join the axes start_axis..end_axis (inclusive) into one, PyTorch's
    ``torch.nn.Flatten(start_dim=1, end_dim=-1)``: by default (N, C, H, W) -> (N, C H W).

    >>> import numpy as np
    >>> Flatten()(np.zeros((2, 3, 4, 5))).shape
    (2, 60)
    """

    def __init__(self, start_axis: int = 1, end_axis: int = -1) -> None:
        super().__init__()
        for name, value in (('start_axis', start_axis), ('end_axis', end_axis)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
                raise TypeError(f'Flatten: {name} must be an int, got {value!r}')
        self.start_axis = int(start_axis)
        self.end_axis = int(end_axis)

    def extra_repr(self) -> str:
        """'start_axis=1, end_axis=-1'."""
        return f'start_axis={self.start_axis}, end_axis={self.end_axis}'

    def forward(self, x: Any) -> Variable:
        x = F.as_variable(x)
        start, end = self.start_axis, self.end_axis
        ndim = max(x.ndim, 1)  # a 0-d x flattens to (1,), as PyTorch's
        if not (-ndim <= start < ndim and -ndim <= end < ndim) or start % ndim > end % ndim:
            raise ValueError(f'Flatten: start_axis={start}, end_axis={end} do not select '
                             f'axes in order of x of shape {x.shape}')
        if x.ndim == 0:
            return F.reshape(x, (1,))
        start, end = start % ndim, end % ndim
        shape = x.shape[:start] + (math.prod(x.shape[start:end + 1]),) + x.shape[end + 1:]
        return F.reshape(x, shape)


class Identity(Layer):
    """x unchanged (as a Variable): a placeholder where a layer is optional."""

    def forward(self, x: Any) -> Variable:
        return F.as_variable(x)


class ReLU(Layer):
    """``F.relu`` as a layer: max(x, 0), elementwise. x: any shape."""

    def forward(self, x: Any) -> Variable:
        return F.relu(x)


class Sigmoid(Layer):
    """``F.sigmoid`` as a layer: 1 / (1 + exp(-x)), elementwise. x: any shape."""

    def forward(self, x: Any) -> Variable:
        return F.sigmoid(x)


class Tanh(Layer):
    """``F.tanh`` as a layer, elementwise. x: any shape."""

    def forward(self, x: Any) -> Variable:
        return F.tanh(x)


class LeakyReLU(Layer):
    """``F.leaky_relu`` as a layer: x where x > 0, else slope x. x: any shape. The default
    slope is F.leaky_relu's (Chainer's) 0.2; PyTorch's LeakyReLU defaults to 0.01."""

    def __init__(self, slope: float = 0.2) -> None:
        super().__init__()
        if isinstance(slope, (bool, np.bool_)) or not isinstance(slope,
                                                                 (int, float, np.floating)):
            raise TypeError(f'LeakyReLU: slope must be a float, got {slope!r}')
        self.slope = float(slope)

    def extra_repr(self) -> str:
        """'slope=0.2'."""
        return f'slope={self.slope}'

    def forward(self, x: Any) -> Variable:
        return F.leaky_relu(x, self.slope)


class Softmax(Layer):
    """``F.softmax`` as a layer, along ``axis`` (1: the classes of (N, C))."""

    def __init__(self, axis: int = 1) -> None:
        super().__init__()
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, (bool, np.bool_)):
            raise TypeError(f'{type(self).__name__}: axis must be an int, got {axis!r}')
        self.axis = int(axis)

    def extra_repr(self) -> str:
        """'axis=1'."""
        return f'axis={self.axis}'

    def forward(self, x: Any) -> Variable:
        return F.softmax(x, self.axis)


class LogSoftmax(Softmax):
    """``F.log_softmax`` as a layer, along ``axis`` (1: the classes of (N, C))."""

    def forward(self, x: Any) -> Variable:
        return F.log_softmax(x, self.axis)
