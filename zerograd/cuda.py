"""The one seam between NumPy and CuPy: pick the array module of an array, move arrays.

CuPy is optional. It is imported only when a CuPy array is met or a move to the GPU is
asked for, so ``import zerograd`` never needs it.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def _cupy():
    """Import CuPy, or raise a clear error naming the extra to install."""
    try:
        import cupy
    except ImportError:
        raise ImportError('zerograd.cuda: CuPy is not installed; install the GPU extra '
                          "with `pip install 'zerograd[gpu]'` (needs an NVIDIA GPU)") from None
    return cupy


def _is_cupy_array(x: Any) -> bool:
    # Checked by the type's module, so asking never imports CuPy.
    return type(x).__module__.startswith('cupy')


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    try:
        cupy = _cupy()
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no CuPy, no driver, no device: all mean "no GPU"
        return False


def __getattr__(name: str) -> Any:
    # ``cuda.gpu_enable`` is computed on first use, not at import (that would import CuPy).
    if name == 'gpu_enable':
        value = gpu_available()
        globals()['gpu_enable'] = value
        return value
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
    if np.isscalar(x):
        return np.array(x)
    if isinstance(x, np.ndarray):
        return x
    if _is_cupy_array(x):
        return x.get()
    raise TypeError(f'as_numpy: expected an array or a Variable, got {type(x)}')


def as_cupy(x: Any) -> Any:
    """A CuPy array with x's values; a clear ImportError without CuPy."""
    from zerograd.core import Variable
    if isinstance(x, Variable):
        x = x.data
    cupy = _cupy()
    return cupy.asarray(x)
