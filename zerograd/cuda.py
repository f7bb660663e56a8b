"""The one seam between NumPy and CuPy: pick the array module of an array, move arrays.

Data on the GPU makes every op run there: each op asks ``xp = get_array_module(x)`` and
computes with ``xp`` (NumPy or CuPy), so one code path serves both devices (the book's
step 52). CuPy is optional. It is imported only when a CuPy array is met or a move to the
GPU is asked for, so ``import zerograd`` never needs it.

>>> import numpy as np
>>> get_array_module(np.ones(3)) is np
True
>>> as_numpy(np.ones(2))
array([1., 1.])

Tests put a stand-in where CuPy would be (``zerograd.testing_strict``, a strict NumPy-backed
imitation of CuPy), so that the GPU code paths run, and are checked, on any machine.
"""
from __future__ import annotations

from typing import Any

import numpy as np

# The module that plays CuPy when no GPU is at hand: None (use CuPy itself), or a module
# with CuPy's API whose ``ndarray`` is the device array type and whose ``cupyx`` holds
# ``scatter_add``. Set only by ``zerograd.testing_strict.use_strict_device()``.
_stand_in: Any = None


def _cupy() -> Any:
    """Import CuPy (or return the stand-in), or raise a clear error naming the extra."""
    if _stand_in is not None:
        return _stand_in
    try:
        import cupy
    except ImportError:
        raise ImportError('zerograd.cuda: CuPy is not installed; install the GPU extra '
                          "with `pip install 'zerograd[gpu]'` (needs an NVIDIA GPU)") from None
    return cupy


def _cupyx() -> Any:
    """CuPy's companion module ``cupyx`` (home of ``scatter_add``), or the stand-in's."""
    if _stand_in is not None:
        return _stand_in.cupyx
    _cupy()  # the install hint, if CuPy is missing
    import cupyx
    return cupyx


def _is_cupy_array(x: Any) -> bool:
    # Checked by the type's module, so asking never imports CuPy.
    if _stand_in is not None and isinstance(x, _stand_in.ndarray):
        return True
    return type(x).__module__.startswith('cupy')


def gpu_status() -> tuple[bool, str]:
    """(True, 'CuPy <version>, device 0: <name>') when a GPU is usable, else
    (False, <why not>), e.g. (False, "CuPy is not installed (pip install 'zerograd[gpu]')")."""
    try:
        cupy = _cupy()
    except ImportError:
        return False, "CuPy is not installed (pip install 'zerograd[gpu]')"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        if count < 1:
            return False, f'CuPy {cupy.__version__} sees no CUDA device'
        name = cupy.cuda.runtime.getDeviceProperties(0)['name']
    except Exception as error:  # no driver, no device, a broken CUDA install
        lines = str(error).strip().splitlines()
        reason = lines[0] if lines else type(error).__name__
        return False, f'CuPy {cupy.__version__} cannot reach a CUDA device ({reason})'
    if isinstance(name, bytes):
        name = name.decode(errors='replace')
    more = f' (and {count - 1} more)' if count > 1 else ''
    return True, f'CuPy {cupy.__version__}, device 0: {name}{more}'


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    return gpu_status()[0]


def require_gpu(who: str) -> None:
    """Raise a one-line error naming ``who`` unless a GPU is usable: ImportError (with the
    install hint) without CuPy, RuntimeError without a device."""
    _cupy()
    ok, text = gpu_status()
    if not ok:
        raise RuntimeError(f'{who}: no GPU: {text}')


def __getattr__(name: str) -> Any:
    # ``cuda.gpu_enable`` (the book's name) is asked when read, not at import (that would
    # import CuPy), and never cached: a stand-in may come and go.
    if name == 'gpu_enable':
        return gpu_available()
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def get_array_module(x: Any) -> Any:
    """``numpy`` or ``cupy``, whichever module x's data belongs to (x: array or Variable)."""
    if type(x) is np.ndarray:  # the common case, answered without any import
        return np
    from zerograd.core import Variable
    if isinstance(x, Variable):
        x = x.data
    if _is_cupy_array(x):
        return _cupy()
    return np


def as_numpy(x: Any) -> np.ndarray:
    """A NumPy array with x's values (x: scalar, NumPy or CuPy array, Variable)."""
    from zerograd.core import Variable
    if isinstance(x, Variable):
        x = x.data
    if type(x) is np.ndarray:
        return x
    if np.isscalar(x):
        return np.array(x)
    if _is_cupy_array(x):  # asked before isinstance(np.ndarray): a stand-in array is one
        return x.get()
    if isinstance(x, np.ndarray):
        return x
    raise TypeError(f'as_numpy: expected an array or a Variable, got {type(x)}')


def as_cupy(x: Any) -> Any:
    """A CuPy array with x's values; a clear ImportError without CuPy."""
    from zerograd.core import Variable
    if isinstance(x, Variable):
        x = x.data
    cupy = _cupy()
    return cupy.asarray(x)


def scatter_add(a: Any, slices: Any, value: Any) -> None:
    """``a[slices] += value`` in place, adding once per occurrence where an index repeats
    (``numpy.add.at``). On the GPU this is ``cupyx.scatter_add``: the book's
    ``cupy.scatter_add`` was removed from CuPy long ago, and plain ``a[slices] += value``
    would add a repeated index only once."""
    if get_array_module(a) is np:
        np.add.at(a, slices, value)
    else:
        _cupyx().scatter_add(a, slices, value)
