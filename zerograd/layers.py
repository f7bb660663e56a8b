"""Layers: objects that own Parameters (``import zerograd.layers as L``).

A Layer registers every Parameter or Layer assigned to one of its attributes, in
assignment order, so ``params()`` is deterministic and nested layers just work.
"""
from __future__ import annotations

import os
import tempfile
import weakref
import zipfile
from typing import Any, Iterator

import numpy as np

import zerograd.functions as F
from zerograd import cuda
from zerograd.core import Parameter, Variable


def _weak(obj: Any) -> Any:
    """A weak reference to obj, or a function returning None for objects that have none
    (Python numbers)."""
    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: None


class Layer:
    """Base class of layers and models: subclasses assign Parameters and Layers as
    attributes in ``__init__`` and write ``forward``."""

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
        outputs = self.forward(*inputs)
        if not isinstance(outputs, tuple):
            outputs = (outputs,)
        # Weak references, like Function's: a layer never keeps a graph alive.
        self.inputs = [_weak(x) for x in inputs]
        self.outputs = [_weak(y) for y in outputs]
        return outputs if len(outputs) > 1 else outputs[0]

    def forward(self, *inputs: Any) -> Any:
        raise NotImplementedError(f'{type(self).__name__}.forward is not written')

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

    def to_cpu(self) -> Layer:
        for param in self.params():
            param.to_cpu()
        return self

    def to_gpu(self) -> Layer:
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

    def save_weights(self, path: str) -> None:
        """Write every parameter to a compressed ``.npz`` file, keys ``l0/W`` ...

        The file is written next to ``path`` under a temporary name and renamed, so a
        crash never leaves a broken file behind.
        """
        arrays = {}
        for key, param in self.named_params().items():
            if param.data is None:
                raise ValueError(f'{type(self).__name__}.save_weights: parameter {key!r} is '
                                 'not created yet (layers create their weights on the first '
                                 'call: run one forward pass before saving)')
            arrays[key] = cuda.as_numpy(param.data)
        _atomic_savez(path, arrays)

    def load_weights(self, path: str) -> None:
        """Read a file written by ``save_weights`` (or by the book's code).

        Every key and shape is checked first; on any difference nothing is changed and
        the error names what differs. Files are read with ``allow_pickle=False``.
        """
        who = f'{type(self).__name__}.load_weights'
        arrays = read_npz(path, who)
        self._check_weights(arrays, f'{who}({path!r})')
        self._set_weights(arrays)

    def _check_weights(self, arrays: dict[str, np.ndarray], who: str) -> None:
        """Raise ValueError naming every key missing, unexpected or of another shape."""
        params = self.named_params()
        missing = sorted(set(params) - set(arrays))
        unexpected = sorted(set(arrays) - set(params))
        wrong_shape = [f'{key}: file {arrays[key].shape}, model {params[key].data.shape}'
                       for key in sorted(set(params) & set(arrays))
                       if params[key].data is not None
                       and arrays[key].shape != params[key].data.shape]
        not_numbers = [f'{key}: {arrays[key].dtype}' for key in sorted(set(params) & set(arrays))
                       if arrays[key].dtype.kind not in 'biufc']
        if missing or unexpected or wrong_shape or not_numbers:
            problems = []
            if missing:
                problems.append(f'missing from the file: {missing}')
            if unexpected:
                problems.append(f'not in the model: {unexpected}')
            if wrong_shape:
                problems.append(f'different shapes: {wrong_shape}')
            if not_numbers:
                problems.append(f'not numbers: {not_numbers}')
            raise ValueError(f'{who}: the file does not match the model; ' + '; '.join(problems))

    def _set_weights(self, arrays: dict[str, np.ndarray]) -> None:
        """Give every parameter its array (in the parameter's dtype and device, if any)."""
        for key, param in self.named_params().items():
            data = arrays[key]
            if param.data is not None:
                data = data.astype(param.data.dtype, copy=False)
                xp = cuda.get_array_module(param.data)
                if xp is not np:
                    data = xp.asarray(data)
            param.data = data


def _atomic_savez(path: str, arrays: dict) -> None:
    """np.savez_compressed to a temporary file in the target folder, then rename."""
    path = os.fspath(path)
    if not path.endswith('.npz'):
        path += '.npz'  # what np.savez would do, made explicit so the rename target is right
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp_path = tempfile.mkstemp(suffix='.npz.tmp', dir=folder)
    try:
        with os.fdopen(handle, 'wb') as file:
            np.savez_compressed(file, **arrays)
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def read_npz(path: str, who: str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read with ``allow_pickle=False``; a corrupt,
    truncated or pickle-needing file raises ValueError naming ``who`` and the path."""
    with open(path, 'rb') as file:  # FileNotFoundError as it is
        magic = file.read(4)
    if magic != b'PK\x03\x04':  # every .npz is a zip archive
        raise ValueError(f'{who}: {path!r} is not a .npz weights file (it does not start '
                         'like a zip archive)')
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise
    except ValueError as error:
        if 'pickle' in str(error):
            raise ValueError(f'{who}: {path!r} holds object arrays that need pickle; '
                             'refusing to load them (weight files hold plain arrays)') from None
        raise ValueError(f'{who}: {path!r} is not a readable weights file: {error}') from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as error:
        raise ValueError(f'{who}: {path!r} is corrupt or truncated: {error}') from None
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):  # a zip member that is not a .npy array
            raise ValueError(f'{who}: {path!r} holds {key!r}, which is not a NumPy array')
    return arrays


# =============================================================================
# Layers
# =============================================================================
class Linear(Layer):
    """y = x W + b. x: (N, in) -> (N, out).

    W (in, out) is created on the first call when ``in_size`` is None, drawn as the book
    does: ``randn(in, out) * sqrt(1 / in)`` from NumPy's global generator; b is zeros.
    """

    def __init__(self, out_size: int, nobias: bool = False, dtype: Any = np.float32,
                 in_size: int | None = None) -> None:
        super().__init__()
        self.in_size = in_size
        self.out_size = out_size
        self.dtype = np.dtype(dtype)
        self.W = Parameter(None, name='W')
        if in_size is not None:
            self._init_W()
        self.b = None if nobias else Parameter(np.zeros(out_size, dtype=self.dtype), name='b')

    def _init_W(self, xp: Any = np) -> None:
        I, O = self.in_size, self.out_size
        # The scale in the weights' dtype: a float64 scale would make W float64 on NumPy 2.
        scale = self.dtype.type(np.sqrt(1 / I))
        self.W.data = xp.random.randn(I, O).astype(self.dtype) * scale

    def forward(self, x: Any) -> Variable:
        if not isinstance(x, Variable) and not cuda._is_cupy_array(x) \
                and not isinstance(x, np.ndarray):
            raise TypeError(f'Linear: x must be an ndarray or a Variable, got {type(x).__name__}')
        if self.W.data is None:
            if x.ndim != 2:
                raise ValueError(f'Linear: x must be (N, in_size), got shape {x.shape}')
            self.in_size = x.shape[1]
            self._init_W(cuda.get_array_module(x))
        elif x.ndim != 2 or x.shape[1] != self.W.data.shape[0]:
            raise ValueError(f'Linear: input has {x.shape[-1] if x.ndim else 0} features but W '
                             f'expects {self.W.data.shape[0]} (x.shape={x.shape}, '
                             f'W.shape={self.W.data.shape})')
        return F.linear(x, self.W, self.b)


class BatchNorm(Layer):
    """Batch normalisation for x (N, C) or (N, C, H, W); parameters created on the first
    call. ``avg_mean``/``avg_var`` are running statistics: saved with the weights, never
    trained (they get no gradient)."""

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

    def forward(self, x: Any) -> Variable:
        self._init_params(x)
        return F.batch_norm(x, self.gamma, self.beta, self.avg_mean.data, self.avg_var.data)


class EmbedID(Layer):
    """Rows of W (in_size, out_size) picked by integer ids: x (...) -> (..., out_size).
    W is drawn from NumPy's global generator, ``randn(in_size, out_size)``, as float32."""

    def __init__(self, in_size: int, out_size: int) -> None:
        super().__init__()
        self.W = Parameter(np.random.randn(in_size, out_size).astype(np.float32), name='W')

    def forward(self, x: Any) -> Variable:
        return F.embed_id(x, self.W)
