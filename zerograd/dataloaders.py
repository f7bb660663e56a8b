"""Mini-batches from a dataset: ``DataLoader`` (shuffled epochs) and ``SeqDataLoader``
(parallel streams through one sequence, for truncated BPTT).

Every ``for`` loop over a loader is one new epoch, even when the previous loop ended with
``break`` (the book's loader resumed mid-epoch instead).

>>> import numpy as np
>>> from zerograd.datasets import Spiral
>>> loader = DataLoader(Spiral(), batch_size=128, shuffle=False)
>>> [(x.shape, t.shape) for x, t in loader]
[((128, 2), (128,)), ((128, 2), (128,)), ((44, 2), (44,))]
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from zerograd import cuda
from zerograd.datasets import Dataset


def _check_batch_size(owner: str, batch_size: Any) -> int:
    # bool is an int in Python, and DataLoader(ds, True) is surely a mistake. The wrong
    # type is a TypeError, a wrong value a ValueError, as everywhere in zerograd.
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f'{owner}: batch_size must be a positive int, got {batch_size!r} '
                        f'({type(batch_size).__name__})')
    if batch_size <= 0:
        raise ValueError(f'{owner}: batch_size must be a positive int, got {batch_size!r}')
    return int(batch_size)


def _check_dataset(owner: str, dataset: Any) -> None:
    if not (hasattr(dataset, '__len__') and hasattr(dataset, '__getitem__')):
        raise TypeError(f'{owner}: dataset must have __len__ and __getitem__ (a Dataset, a '
                        f'list of (x, t) pairs, ...), got {type(dataset).__name__}')


class DataLoader:
    """Iterate over a dataset in mini-batches ``(x, t)``.

    Args:
        dataset: a ``Dataset``, or anything with ``len()`` whose ``dataset[i]`` is an
            ``(x, t)`` pair (a list of pairs works).
        batch_size: examples per batch; the last batch of an epoch may be smaller.
        shuffle: visit the examples in a new random order each epoch. The order is
            ``np.random.permutation(len(dataset))`` from NumPy's global generator, drawn
            when the epoch starts, so ``np.random.seed`` makes it reproducible.
        gpu: move each batch to the GPU (CuPy) before returning it.

    Each batch is ``x``, the stacked examples of shape ``(B, *example_shape)``, and ``t``,
    the stacked labels of shape ``(B, *label_shape)``, or None when the dataset has no
    labels. Attributes: ``dataset, batch_size, shuffle, data_size, max_iter`` (batches per
    epoch), ``gpu, iteration`` (batches served in the current epoch), ``index`` (the
    current epoch's order; None before the first epoch).

    Each ``for`` loop (each ``iter(loader)``) starts a new epoch. ``next(loader)`` (or the
    book's ``loader.next()``) continues the current epoch, starting one if there is none,
    and raises ``StopIteration`` at its end; the call after that starts a new epoch.
    """

    def __init__(self, dataset: Any, batch_size: int, shuffle: bool = True,
                 gpu: bool = False) -> None:
        owner = type(self).__name__
        _check_dataset(owner, dataset)
        self.dataset = dataset
        self.batch_size = _check_batch_size(owner, batch_size)
        self.shuffle = shuffle
        self.data_size = len(dataset)
        self.max_iter = math.ceil(self.data_size / self.batch_size)
        self.gpu = gpu
        if gpu:
            cuda._cupy()  # fail here, with the install hint, rather than at the first batch
        self.iteration = 0
        # Unlike the book, no order is drawn here: it is drawn when an epoch starts, so
        # constructing a loader never consumes global random numbers.
        self.index = None
        self._in_epoch = False

    def __len__(self) -> int:
        """Batches per epoch (``max_iter``)."""
        return self.max_iter

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({type(self.dataset).__name__}, '
                f'batch_size={self.batch_size}, shuffle={self.shuffle}, gpu={self.gpu})')

    def reset(self) -> None:
        """Start a new epoch: rewind and, when shuffling, draw a new order."""
        self.iteration = 0
        if self.shuffle:
            self.index = np.random.permutation(self.data_size)
        else:
            self.index = np.arange(self.data_size)
        self._in_epoch = True

    def __iter__(self) -> DataLoader:
        # A for loop always means a whole epoch: never resume one a `break` left open.
        self.reset()
        return self

    def __next__(self) -> tuple[Any, Any]:
        if not self._in_epoch:
            self.reset()
        if self.iteration >= self.max_iter:
            self._in_epoch = False  # so that the next call starts a new epoch
            raise StopIteration
        x, t = self._load(self._batch_index())
        self.iteration += 1
        return x, t

    def next(self) -> tuple[Any, Any]:
        """The book's spelling of ``next(loader)``."""
        return self.__next__()

    def seek(self, iteration: int, index: Any = None) -> None:
        """Continue an epoch at batch ``iteration`` (0 .. ``max_iter``) in the order
        ``index`` (a permutation of ``range(data_size)``; None: the loader's own unshuffled
        order): the next ``next(loader)`` gives that batch. What a resumed mid-epoch
        checkpoint needs (``training.fit`` saves ``iteration`` and ``index``)."""
        owner = type(self).__name__
        if isinstance(iteration, (bool, np.bool_)) or not isinstance(iteration, (int, np.integer)):
            raise TypeError(f'{owner}.seek: iteration must be an int from 0 to {self.max_iter}, '
                            f'got {iteration!r} ({type(iteration).__name__})')
        if not 0 <= iteration <= self.max_iter:
            raise ValueError(f'{owner}.seek: iteration must be an int from 0 to {self.max_iter}, '
                             f'got {iteration!r}')
        if index is None:
            index = np.arange(self.data_size)
        else:
            index = np.asarray(index)
            if index.dtype.kind not in 'iu':
                raise TypeError(f'{owner}.seek: index must be a permutation of '
                                f'range({self.data_size}) of integers, got {index.dtype}')
            if index.shape != (self.data_size,) or \
                    not np.array_equal(np.sort(index), np.arange(self.data_size)):
                raise ValueError(f'{owner}.seek: index must be a permutation of '
                                 f'range({self.data_size}), got {index.dtype} {index.shape}')
        self.index = index.astype(np.intp)
        self.iteration = int(iteration)
        self._in_epoch = True

    def to_cpu(self) -> None:
        """Return NumPy batches from now on."""
        self.gpu = False

    def to_gpu(self) -> None:
        """Return CuPy batches from now on (ImportError now when CuPy is missing)."""
        cuda._cupy()
        self.gpu = True

    # -- internals
    def _batch_index(self) -> np.ndarray:
        i, batch_size = self.iteration, self.batch_size
        return self.index[i * batch_size:(i + 1) * batch_size]

    def _load(self, batch_index: np.ndarray) -> tuple[Any, Any]:
        """The batch ``(x, t)`` for these dataset indices, on the chosen device."""
        dataset = self.dataset
        if isinstance(dataset, Dataset) and (type(dataset).__getitem__ is Dataset.__getitem__
                                             or getattr(dataset, 'indexes_batches', False)):
            # Fast path: Dataset indexes a whole index array at once (directly, without a
            # Python loop, when it has no transforms), as does a dataset that says so
            # (distributed.SubDataset); the result equals the loop below.
            x, t = dataset[batch_index]
        else:
            batch = [dataset[int(i)] for i in batch_index]
            for example in batch[:1]:  # checking one is enough to catch a wrong dataset
                if not isinstance(example, (tuple, list)) or len(example) != 2:
                    raise TypeError(f'{type(self).__name__}: dataset[i] must be an (x, t) '
                                    f'pair, got {type(example).__name__}')
            x = self._stack('x', [example[0] for example in batch], batch_index)
            labels = [example[1] for example in batch]
            # An unlabelled dataset gives t = None (as Dataset does), not an array of Nones.
            t = None if all(label is None for label in labels) else \
                self._stack('t', labels, batch_index)
        if self.gpu:
            x = cuda.as_cupy(x)
            t = None if t is None else cuda.as_cupy(t)
        return x, t


    def _stack(self, name: str, items: list, batch_index: np.ndarray) -> np.ndarray:
        """items (one per example) stacked into one array; examples of different shapes
        are a ValueError naming the dataset indices and their shapes (not NumPy's
        "inhomogeneous shape" error)."""
        try:
            return np.array(items)
        except ValueError:
            shapes = [_shape_of(item) for item in items]
            if len(set(shapes)) == 1:  # one shape: NumPy's reason is another one
                raise
            first = shapes[0]
            odd = next(i for i, shape in enumerate(shapes) if shape != first)
            listing = ', '.join(f'{int(index)}: {shape}' for index, shape
                                in zip(batch_index[:8], shapes[:8]))
            more = ', ...' if len(items) > 8 else ''
            raise ValueError(
                f'{type(self).__name__}: the examples of one batch must have one shape to be '
                f'stacked, but {name} of dataset[{int(batch_index[0])}] has shape {first} and '
                f'{name} of dataset[{int(batch_index[odd])}] has {shapes[odd]} ({name} shapes '
                f'by dataset index: {listing}{more}); pad or resize them in a transform, or '
                'use batch_size=1') from None


def _shape_of(item: Any) -> tuple | str:
    """The shape item would have as an array, or 'ragged' (a nested list of unequal rows)."""
    try:
        return np.shape(item)
    except ValueError:
        return 'ragged'


class SeqDataLoader(DataLoader):
    """Batches for truncated BPTT: ``batch_size`` parallel streams through one sequence.

    The sequence of length N is cut into ``batch_size`` consecutive segments of
    ``jump = N // batch_size`` items. Batch k (k = 0 .. jump-1) takes item k of every
    segment, the items at ``(i * jump + k) % N`` for i in range(batch_size), so row i of
    successive batches walks through segment i in order. ``x`` has shape
    ``(batch_size, *example_shape)``. No shuffling (it would break the streams);
    ``max_iter = ceil(N / batch_size)`` as in the book, so when N is not a multiple of
    batch_size the last batch's rows step into the first item of the next segment.
    Each ``for`` loop is a new epoch, as in ``DataLoader``.
    """

    def __init__(self, dataset: Any, batch_size: int, gpu: bool = False) -> None:
        super().__init__(dataset, batch_size, shuffle=False, gpu=gpu)
        if self.batch_size > self.data_size:
            raise ValueError(f'SeqDataLoader: batch_size {self.batch_size} exceeds the '
                             f'sequence length {self.data_size}')
        self.jump = self.data_size // self.batch_size

    def _batch_index(self) -> np.ndarray:
        offsets = np.arange(self.batch_size) * self.jump + self.iteration
        return offsets % self.data_size
