"""Memory (issue 16): release the data that no backward reads and nothing outside the
graph holds, as PyTorch keeps only the tensors its backward passes save.

Each Function declares what its backward reads (``Function.backward_reads``: inputs,
outputs, both or neither). When ``Function.__call__`` records an op, it calls
``release_unread`` on the op's inputs, which looks one step back along the graph:

v, an input of f = x.creator (x an input of the op just recorded), is released when

- f's backward does not read its inputs,
- v's creator's backward does not read its outputs (a leaf is never released), and
- f is v's only holder: a user's names, containers and frames all count in
  ``sys.getrefcount``. Checked one step on, when a chain ``y = g(y)`` has rebound the
  name that held v.

Its data becomes a ``Released`` of the same shape and dtype, so shapes, dtypes, gradient
checks, graph pictures and the ONNX exporter still work; reading the values raises an
error that says why they are gone.
"""
from __future__ import annotations

import math
import sys
from typing import Any


def release_unread(x: Any) -> None:
    """Release what the creator of Variable x holds and no one can read (above)."""
    f = x.creator
    if f is None or 'inputs' in f.backward_reads:
        return
    held = f._inputs  # one Variable, or a list of them (Function.__call__)
    if type(held) is list:
        for v in held:
            _release_if_unheld(v)
    elif (sys.getrefcount(held) == ONLY_ONE_HOLDER - 1 and held.creator is not None
          and 'outputs' not in held.creator.backward_reads):
        _release(held)  # the one-input case (a chain's), without a call to check it


def _release_if_unheld(v: Any) -> None:
    if (sys.getrefcount(v) == ONLY_ONE_HOLDER and v.creator is not None
            and 'outputs' not in v.creator.backward_reads):
        _release(v)


def _release(v: Any) -> None:
    data, last = v.data, Released.last  # the arrays of a chain share one stand-in
    if last.dtype is not data.dtype or last.shape != data.shape:
        last = Released.last = Released(data.shape, data.dtype)
    v.data = last


def _count_references(v: Any) -> int:
    return sys.getrefcount(v)  # as _release_if_unheld counts


def _held_once() -> int:
    holder = [object()]  # as release_unread: one holder, the caller's name, the argument
    for v in holder:
        return _count_references(v)


# 4 on CPython 3.10-3.13; measured, as newer interpreters count fewer references
ONLY_ONE_HOLDER = _held_once()


class Released:
    """The data of a Variable released by ``release_unread``: the shape and dtype stay;
    values raise."""
    __slots__ = ('shape', 'dtype', 'ndim', 'size')
    last: Released

    def __init__(self, shape: tuple, dtype: Any) -> None:
        self.shape, self.dtype, self.ndim, self.size = shape, dtype, len(shape), math.prod(shape)

    def __getattr__(self, name: str) -> Any:
        if name.startswith('__'):  # copy and pickle ask for __setstate__ and the like
            raise AttributeError(name)
        raise AttributeError(self._message(f'data.{name}'))

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(self._message('np.asarray(data)'))

    def _message(self, what: str) -> str:
        return (f'{what}: the values of this intermediate Variable ({self.shape} {self.dtype}) '
                'were released, as no backward reads them and nothing else held it; keep a '
                'name for a Variable to keep its data')

    def __repr__(self) -> str:
        return f'<released: {self.shape} {self.dtype}>'


Released.last = Released((), None)
