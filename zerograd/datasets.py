"""Datasets: the ``Dataset`` base class and the book's toy data (the spiral).

A dataset is a pair of arrays, ``data`` and ``label`` (``label`` may be None), filled by
``prepare()``. ``ds[i]`` gives one example ``(x, t)`` with the transforms applied;
``DataLoader`` (in ``zerograd.dataloaders``) turns a dataset into mini-batches.

>>> ds = Spiral()
>>> len(ds)
300
>>> x, t = ds[0]
>>> x.shape, x.dtype, int(t)
((2,), dtype('float32'), 1)
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from zerograd import cuda


def identity(x: Any) -> Any:
    """The default transform: returns x unchanged."""
    return x


def _is_identity(f: Callable | None) -> bool:
    return f is None or f is identity


def _is_array(seq: Any) -> bool:
    return isinstance(seq, np.ndarray) or cuda._is_cupy_array(seq)


# =============================================================================
# Dataset
# =============================================================================
class Dataset:
    """Base class: subclasses override ``prepare()`` to set ``self.data`` and ``self.label``.

    Args:
        train: which split ``prepare()`` should load (training or test).
        transform: applied to each example ``data[i]`` (None: unchanged).
        target_transform: applied to each label ``label[i]`` (None: unchanged).

    ``ds[i]`` returns ``(transform(data[i]), target_transform(label[i]))``, or
    ``(transform(data[i]), None)`` when ``label`` is None. Extra: ``ds[slice]`` and
    ``ds[index_array]`` return the whole batch ``(x, t)``: the items transformed one by one
    and stacked, so ``x`` has shape ``(len(index), *item_shape)``.
    """

    def __init__(self, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None) -> None:
        self.train = train
        # Stored as callables (as the book does), so ``ds.transform(x)`` always works;
        # ``identity`` marks "no transform", which lets batches be indexed directly.
        self.transform = identity if transform is None else transform
        self.target_transform = identity if target_transform is None else target_transform

        self.data = None
        self.label = None
        self.prepare()
        if self.data is not None and self.label is not None \
                and len(self.data) != len(self.label):
            raise ValueError(f'{type(self).__name__}: data and label lengths differ '
                             f'({len(self.data)} vs {len(self.label)})')

    def prepare(self) -> None:
        """Fill ``self.data`` (and ``self.label``, or leave it None). Subclasses override it."""

    def __len__(self) -> int:
        if self.data is None:
            raise TypeError(f'{type(self).__name__}: no data; prepare() must set self.data')
        return len(self.data)

    def __repr__(self) -> str:
        size = 'no data' if self.data is None else f'{len(self)} examples'
        return f'{type(self).__name__}(train={self.train}, {size})'

    def __getitem__(self, index: Any) -> tuple[Any, Any]:
        if isinstance(index, (bool, np.bool_)):  # bool is an int in Python: refuse it
            raise TypeError(f'{type(self).__name__}: index must be an int, a slice or an '
                            f'integer array, got {type(index).__name__}')
        if isinstance(index, (int, np.integer)):
            i = self._check_int(int(index))
            x = self.transform(self.data[i])
            t = None if self.label is None else self.target_transform(self.label[i])
            return x, t
        indices = self._as_indices(index)
        x = self._take(self.data, indices, self.transform)
        t = None if self.label is None else self._take(self.label, indices,
                                                       self.target_transform)
        return x, t

    # -- index checking: a wrong index names itself and the length
    def _check_int(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f'{type(self).__name__}: index {i} is out of range for a '
                             f'dataset of length {n}')
        return i

    def _as_indices(self, index: Any) -> np.ndarray:
        """A 1-D intp array of in-range indices from a slice, a list or an array."""
        n = len(self)
        name = type(self).__name__
        if isinstance(index, slice):
            return np.arange(n)[index]
        if isinstance(index, (list, tuple, np.ndarray)):
            indices = np.asarray(index)
        else:
            raise TypeError(f'{name}: index must be an int, a slice or an integer array, '
                            f'got {type(index).__name__}')
        if indices.size == 0:  # np.asarray([]) is float64: an empty index is still fine
            indices = indices.astype(np.intp)
        if indices.dtype == np.bool_:
            if indices.shape != (n,):
                raise IndexError(f'{name}: a boolean mask must have shape ({n},), '
                                 f'got {indices.shape}')
            return np.flatnonzero(indices)
        if not np.issubdtype(indices.dtype, np.integer):
            raise TypeError(f'{name}: index array must hold integers, got {indices.dtype}')
        if indices.ndim != 1:
            raise IndexError(f'{name}: index array must be 1-D, got shape {indices.shape}')
        bad = indices[(indices < -n) | (indices >= n)]
        if bad.size:
            raise IndexError(f'{name}: index {int(bad[0])} is out of range for a dataset '
                             f'of length {n}')
        return indices

    @staticmethod
    def _take(seq: Any, indices: np.ndarray, f: Callable | None) -> Any:
        # Without a transform, one fancy-indexing call replaces a Python loop over items;
        # both give the same array (the loop's items stacked by np.array).
        if _is_identity(f):
            if _is_array(seq):
                return seq[indices]
            return np.array([seq[i] for i in indices])
        return np.array([f(seq[i]) for i in indices])


# =============================================================================
# Spiral
# =============================================================================
def get_spiral(train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The book's three-armed spiral: ``x`` float32 (300, 2), ``t`` int64 (300,).

    100 points per class j in 0..2: for i in 0..99, rate = i/100, radius = rate,
    theta = 4j + 4 rate + 0.2 * (a standard-normal draw); the point is
    (radius sin theta, radius cos theta). The 300 rows are then shuffled.

    The draws come from a private ``np.random.RandomState`` seeded 1984 (train) or 2020
    (test): the same numbers the book gets by seeding the global generator, without
    touching the caller's global random state.
    """
    rng = np.random.RandomState(1984 if train else 2020)
    num_data, num_class, input_dim = 100, 3, 2
    data_size = num_class * num_data
    x = np.zeros((data_size, input_dim), dtype=np.float64)
    t = np.zeros(data_size, dtype=np.int64)

    # One scalar draw and one scalar sin/cos per point, in the book's order: this keeps the
    # values bit-identical to the book's (vectorised sin/cos may differ in the last bit).
    for j in range(num_class):
        for i in range(num_data):
            rate = i / num_data
            radius = 1.0 * rate
            theta = j * 4.0 + 4.0 * rate + rng.randn() * 0.2
            ix = num_data * j + i
            x[ix] = (radius * np.sin(theta), radius * np.cos(theta))
            t[ix] = j
    indices = rng.permutation(data_size)
    # Rounded to float32 once, at the end: the same values as the book's float32 buffer.
    return x[indices].astype(np.float32), t[indices]


class Spiral(Dataset):
    """The spiral as a Dataset: ``data`` float32 (300, 2), ``label`` int64 (300,).

    ``train=False`` gives the test set (seed 2020) instead of the training set (seed 1984).
    """

    def prepare(self) -> None:
        self.data, self.label = get_spiral(train=self.train)
