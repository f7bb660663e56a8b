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
from zerograd.functions_conv import _pair, _window_args


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
        # Weak references, like Function's: a layer never keeps a graph alive. Written
        # to __dict__ directly: they are never parameters, so __setattr__ has nothing to do.
        self.__dict__['inputs'] = [_weak(x) for x in inputs]
        self.__dict__['outputs'] = [_weak(y) for y in outputs]
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

        The file is written next to ``path`` under a temporary name and renamed, so a
        crash never leaves a broken file behind.
        """
        _atomic_savez(path, self.weight_arrays(f'{type(self).__name__}.save_weights'))

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
        may_be_missing = {key for key in self.not_created_by_design()
                          if params[key].data is None}
        missing = sorted(set(params) - set(arrays) - may_be_missing)
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
        """Give every parameter its array, in the parameter's dtype and on its device. A
        parameter not created yet goes to the device of those that are (``to_gpu()`` moves
        only created ones), so loading keeps a GPU model on the GPU."""
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


class Linear(Layer):
    """y = x W + b. x: (N, in) -> (N, out).

    W (in, out) is created on the first call when ``in_size`` is None, drawn as the book
    does: ``randn(in, out) * sqrt(1 / in)`` from NumPy's global generator; b is zeros.
    """

    def __init__(self, out_size: int, nobias: bool = False, dtype: Any = np.float32,
                 in_size: int | None = None) -> None:
        super().__init__()
        self.in_size = _check_size('Linear', 'in_size', in_size, optional=True)
        self.out_size = _check_size('Linear', 'out_size', out_size)
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
            _follow(self.b, self.W)
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
    W is drawn from NumPy's global generator, ``randn(in_size, out_size)``, as float32."""

    def __init__(self, in_size: int, out_size: int) -> None:
        super().__init__()
        _check_size('EmbedID', 'in_size', in_size)
        _check_size('EmbedID', 'out_size', out_size)
        self.W = Parameter(np.random.randn(in_size, out_size).astype(np.float32), name='W')

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
                 in_channels: int | None = None) -> None:
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
        self.W = Parameter(None, name='W')
        if in_channels is not None:
            self._init_W()
        self.b = None if nobias else Parameter(np.zeros(out_channels, dtype=self.dtype),
                                               name='b')

    def _W_shape(self, C: int, OC: int, KH: int, KW: int) -> tuple[int, int, int, int]:
        raise NotImplementedError

    def _W_in_channels(self) -> int:
        """The input channels the existing W expects."""
        raise NotImplementedError

    def _init_W(self, xp: Any = np) -> None:
        C, OC = self.in_channels, self.out_channels
        KH, KW = _pair(type(self).__name__, 'kernel_size', self.kernel_size)
        # The book's draw (randn, then cast, then scale), with the scale in the weights'
        # dtype: a float64 scale would make W float64 on NumPy 2.
        scale = self.dtype.type(np.sqrt(1 / (C * KH * KW)))
        self.W.data = xp.random.randn(*self._W_shape(C, OC, KH, KW)).astype(self.dtype) * scale

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
    when both sublayers are plain Linears whose weights exist and x2h has a bias; else
    through the sublayers (the first call of a lazy one creates its weights there, in
    the book's order, and a replaced sublayer's own forward runs)."""
    if (type(x2h) is Linear and type(h2h) is Linear and x2h.b is not None
            and x2h.W.data is not None and h2h.W.data is not None):
        return F.linear_pair(x, x2h.W, x2h.b, h, h2h.W)
    return x2h(x) + h2h(h)


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
        else:
            # The same formulas in 6 ops instead of 26: each x2*(x) + h2*(h) as one op
            # (F.linear_pair), sigmoid(...) to h as two (F.lstm_cell). Each op gives the
            # composed ops' numbers to the bit; the gradients of h and c arrive in another
            # order, so their sums may differ in the last bits.
            c_new, h_new = F.lstm_cell(self.c, self._gate(self.x2f, self.h2f, x),
                                       self._gate(self.x2i, self.h2i, x),
                                       self._gate(self.x2o, self.h2o, x),
                                       self._gate(self.x2u, self.h2u, x))
        self.h, self.c = h_new, c_new
        return h_new

    def _gate(self, x2g: Linear, h2g: Linear, x: Any) -> Variable:
        """x2g(x) + h2g(h), as one op when both are plain Linears with x2g's W made and
        a bias (else through the layers themselves)."""
        return _x_plus_h(x2g, h2g, x, self.h)
