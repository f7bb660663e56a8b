"""Reused memory for the large arrays of convolution, pooling and ReLU (issue 16, 1).

A training step makes the same large arrays every step (im2col columns, outputs, padded
copies, gradients). Freed, glibc gives much of that memory back to the kernel, and the
next step takes it again as fresh pages, a page fault per 4 KiB: the CNN benchmark's step
took 600-6,300 faults, 25 MB of fresh pages in the worst process, depending on what the
process had done before. A library must not change its host's malloc settings, so the
arrays are kept here instead, as PyTorch's caching allocator keeps its blocks.

``empty(shape, dtype)`` returns an array nobody else holds: the pool keeps every array it
made, and one is free again when the pool's reference is its only one
(``sys.getrefcount``: a Variable, a user's name, a view's base all count). Values are
never shared: an array is handed out again only when nothing can read it any more.
Arrays under ``MIN_BYTES`` come from NumPy as usual, as do CuPy's (CuPy pools its own);
the pool holds at most ``MAX_BYTES``, dropping free arrays of other shapes to make room.
"""
from __future__ import annotations

import math
import sys
import threading
from typing import Any

import numpy as np

MIN_BYTES = 1 << 17  # 128 KiB, glibc's first mmap threshold: smaller blocks stay in its heap
MAX_BYTES = 1 << 29  # 512 MiB

_pool: dict[tuple, list] = {}  # (shape, dtype) -> the arrays made for it
_lock = threading.Lock()  # two threads must not take the same free array
_held = [0]  # bytes in the pool


def _is_free(arrays: list, k: int) -> bool:
    """True when the pool's list is the only holder of arrays[k]."""
    return sys.getrefcount(arrays[k]) == _ONLY_THE_POOL


def _count_one_holder() -> int:
    arrays = [object()]
    return sys.getrefcount(arrays[0])  # as _is_free counts: the list, the argument


_ONLY_THE_POOL = _count_one_holder()


def empty(shape: tuple, dtype: Any, xp: Any = np) -> Any:
    """An uninitialised C-ordered array of shape and dtype that no one else holds."""
    dtype = np.dtype(dtype)
    if xp is not np or math.prod(shape) * dtype.itemsize < MIN_BYTES:
        return xp.empty(shape, dtype)
    key = (tuple(shape), dtype)
    with _lock:
        arrays = _pool.get(key)
        if arrays is None:
            arrays = _pool[key] = []
        for k in range(len(arrays)):
            if _is_free(arrays, k):
                return arrays[k]
        a = np.empty(shape, dtype)
        if _held[0] + a.nbytes > MAX_BYTES:
            _make_room(a.nbytes)
        if _held[0] + a.nbytes <= MAX_BYTES:
            arrays.append(a)
            _held[0] += a.nbytes
        return a


def _make_room(nbytes: int) -> None:
    """Drop free arrays (of any shape) until nbytes more fit under MAX_BYTES."""
    for key in list(_pool):
        arrays = _pool[key]
        for k in reversed([k for k in range(len(arrays)) if _is_free(arrays, k)]):
            _held[0] -= arrays.pop(k).nbytes
            if _held[0] + nbytes <= MAX_BYTES:
                return


def empty_like(x: Any, dtype: Any = None) -> Any:
    """An array like x (its shape, dtype unless given, and memory order: a batch-last
    (C, H, W, N) layout stays batch-last), from the pool."""
    xp = np if type(x) is np.ndarray else None
    dtype = x.dtype if dtype is None else dtype
    if xp is None or x.ndim == 0:
        return (np if xp is not None else _module(x)).empty_like(x, dtype=dtype)
    order = sorted(range(x.ndim), key=lambda axis: -abs(x.strides[axis]))
    a = empty(tuple(x.shape[axis] for axis in order), dtype)
    return a.transpose(np.argsort(order))


def _module(x: Any) -> Any:
    from zerograd.cuda import get_array_module
    return get_array_module(x)


def clear() -> None:
    """Forget every pooled array (each is freed when its last user lets it go)."""
    with _lock:
        _pool.clear()
        _held[0] = 0


def copy(x: Any) -> Any:
    """A copy of x in x's memory order (``x.copy(order='K')``), from the pool."""
    y = empty_like(x)
    y[...] = x
    return y


def full(shape: tuple, value: Any, dtype: Any, xp: Any = np) -> Any:
    """``xp.full(shape, value, dtype)``, from the pool."""
    y = empty(shape, dtype, xp)
    y.fill(value)
    return y
