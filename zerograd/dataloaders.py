"""Mini-batches from a dataset: ``DataLoader`` (shuffled epochs) and ``SeqDataLoader``
(parallel streams through one sequence, for truncated BPTT).

Every ``for`` loop over a loader is one new epoch, even when the previous loop ended with
``break`` (the book's loader resumed mid-epoch instead). ``num_workers=N`` (N > 0) prepares
the next batches in a background thread while the loop body runs, giving the same batches
in the same order as ``num_workers=0``.

>>> import numpy as np
>>> from zerograd.datasets import Spiral
>>> loader = DataLoader(Spiral(), batch_size=128, shuffle=False)
>>> [(x.shape, t.shape) for x, t in loader]
[((128, 2), (128,)), ((128, 2), (128,)), ((44, 2), (44,))]
"""
from __future__ import annotations

import atexit
import math
import queue
import threading
import weakref
from typing import Any, Callable

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


def _check_num_workers(owner: str, num_workers: Any) -> int:
    if isinstance(num_workers, (bool, np.bool_)) or \
            not isinstance(num_workers, (int, np.integer)):
        raise TypeError(f'{owner}: num_workers must be an int >= 0 (0: load in the loop, '
                        f'N > 0: in the background), got {num_workers!r} '
                        f'({type(num_workers).__name__})')
    if num_workers < 0:
        raise ValueError(f'{owner}: num_workers must be an int >= 0 (0: load in the loop, '
                         f'N > 0: in the background), got {num_workers!r}')
    return int(num_workers)


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
        num_workers: 0 (the default) loads each batch in the loop, when it is asked for.
            N > 0 prepares batches in one background thread, up to ``2 * N`` batches ahead
            of the loop (PyTorch's default of 2 batches per worker), while the loop body
            runs; see "Loading in the background" below.

    Each batch is ``x``, the stacked examples of shape ``(B, *example_shape)``, and ``t``,
    the stacked labels of shape ``(B, *label_shape)``, or None when the dataset has no
    labels. Attributes: ``dataset, batch_size, shuffle, data_size, max_iter`` (batches per
    epoch), ``gpu, iteration`` (batches served in the current epoch), ``index`` (the
    current epoch's order; None before the first epoch).

    Each ``for`` loop (each ``iter(loader)``) starts a new epoch. ``next(loader)`` (or the
    book's ``loader.next()``) continues the current epoch, starting one if there is none,
    and raises ``StopIteration`` at its end; the call after that starts a new epoch.

    Loading in the background (``num_workers > 0``): the main thread draws the epoch's
    order (as with 0 workers) and hands the batches' index arrays, in order, to one
    background thread, which builds the batches (``dataset[i]``, the transforms, stacking)
    one after the other into a bounded queue; the loop takes them in order and moves them
    to the GPU itself (CuPy's current device is per thread). One thread, not N, because:
    the batches then come out identical to ``num_workers=0``'s, including transforms that
    draw from NumPy's global generator (``transforms.RandomHorizontalFlip``): their draws
    happen in the same order, after the epoch's permutation; the transforms here are
    NumPy calls on one example that hold the GIL, so more threads would not run them
    faster (``benchmarks/loader.py`` measured this and worker processes: see
    benchmarks/README.md), and processes would each draw from their own copy of the
    generator. What is gained is overlap: a batch is built while the loop body's BLAS
    calls (which release the GIL) run. Exactness caveat: when the transforms draw random
    numbers *and* the loop body draws from NumPy's global generator too (dropout), the two
    threads' draws interleave in no fixed order; use ``num_workers=0`` when such a run
    must be reproducible (and for bit-exact mid-epoch resumes, whose checkpoints record
    the global random state). With deterministic transforms (MNIST's, CIFAR's defaults)
    the results are always identical.

    ``len()``, ``iteration`` (batches handed to the loop, not batches prepared),
    ``index`` and ``seek()`` mean the same with workers. The background thread stops when
    the epoch ends, when a ``for`` loop over the loader is left early (``break``, an
    exception), at ``reset()``/``seek()``/``close()``, when the loader is garbage
    collected, and at interpreter exit. An exception raised while building a batch is
    raised again in the loop, the same exception object with its message and traceback.
    """

    # Defaults for a loader unpickled from before num_workers existed, or a subclass whose
    # __init__ does not call this one: it loads in the loop, as it always did.
    num_workers = 0
    _prefetcher = None
    _epoch_count = 0

    def __init__(self, dataset: Any, batch_size: int, shuffle: bool = True,
                 gpu: bool = False, *, num_workers: int = 0) -> None:
        owner = type(self).__name__
        _check_dataset(owner, dataset)
        self.dataset = dataset
        self.batch_size = _check_batch_size(owner, batch_size)
        self.shuffle = shuffle
        self.data_size = len(dataset)
        self.max_iter = math.ceil(self.data_size / self.batch_size)
        self.gpu = gpu
        self.num_workers = _check_num_workers(owner, num_workers)
        if gpu:
            cuda._cupy()  # fail here, with the install hint, rather than at the first batch
        self.iteration = 0
        self._prefetcher = None  # the background thread's handle, while one runs
        self._epoch_count = 0  # which epoch an iterator from __iter__ belongs to
        # Unlike the book, no order is drawn here: it is drawn when an epoch starts, so
        # constructing a loader never consumes global random numbers.
        self.index = None
        self._in_epoch = False

    def __len__(self) -> int:
        """Batches per epoch (``max_iter``)."""
        return self.max_iter

    def __repr__(self) -> str:
        workers = f', num_workers={self.num_workers}' if self.num_workers else ''
        return (f'{type(self).__name__}({type(self.dataset).__name__}, '
                f'batch_size={self.batch_size}, shuffle={self.shuffle}, gpu={self.gpu}'
                f'{workers})')

    def __getstate__(self) -> dict:
        # A copy or a pickle of the loader takes no thread with it (it would restart one).
        state = self.__dict__.copy()
        state['_prefetcher'] = None
        return state

    def close(self) -> None:
        """Stop the background thread, if one runs (``num_workers > 0``), and wait for it.
        The loader stays usable: the next batch starts a new thread where it left off."""
        prefetcher, self._prefetcher = self._prefetcher, None
        if prefetcher is not None:
            prefetcher.close()

    def reset(self) -> None:
        """Start a new epoch: rewind and, when shuffling, draw a new order."""
        # Stop the last epoch's thread first: no draw of its may come after the new order's.
        self.close()
        self._epoch_count += 1
        self.iteration = 0
        if self.shuffle:
            self.index = np.random.permutation(self.data_size)
        else:
            self.index = np.arange(self.data_size)
        self._in_epoch = True

    def __iter__(self) -> Any:
        # A for loop always means a whole epoch: never resume one a `break` left open.
        self.reset()
        if self.num_workers == 0:
            return self
        # With workers, the loop gets its own iterator: when a `break` drops it, it stops
        # the background thread (the loader itself outlives the loop).
        return _EpochIterator(self)

    def __next__(self) -> tuple[Any, Any]:
        if not self._in_epoch:
            self.reset()
        if self.iteration >= self.max_iter:
            self._in_epoch = False  # so that the next call starts a new epoch
            self.close()
            raise StopIteration
        if self.num_workers == 0:
            x, t = self._load(self._batch_index())
        else:
            x, t = self._next_prepared()
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
        self.close()
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
    def _batch_index(self, iteration: int | None = None) -> np.ndarray:
        i = self.iteration if iteration is None else iteration
        batch_size = self.batch_size
        return self.index[i * batch_size:(i + 1) * batch_size]

    def _next_prepared(self) -> tuple[Any, Any]:
        """The batch at ``iteration`` from the background thread, started (again) here
        when none runs or when it prepares another position or order (someone set
        ``iteration`` or ``index`` by hand)."""
        prefetcher = self._prefetcher
        if prefetcher is None or prefetcher.iteration != self.iteration \
                or prefetcher.index is not self.index:
            self.close()
            # The index arrays are cut here, in the main thread, in the epoch's order.
            batches = [self._batch_index(i) for i in range(self.iteration, self.max_iter)]
            prefetcher = _Prefetcher(_BatchMaker(self.dataset, type(self).__name__), batches,
                                     self.iteration, self.index, 2 * self.num_workers)
            self._prefetcher = prefetcher
        try:
            x, t = prefetcher.get()
        except BaseException:
            # The worker's error (or a KeyboardInterrupt here): no thread is left behind,
            # and the next call retries this batch, as with num_workers=0.
            self.close()
            raise
        if self.gpu:  # here, not in the thread: CuPy's current device is per thread
            x = cuda.as_cupy(x)
            t = None if t is None else cuda.as_cupy(t)
        return x, t

    def _load(self, batch_index: np.ndarray) -> tuple[Any, Any]:
        """The batch ``(x, t)`` for these dataset indices, on the chosen device."""
        x, t = _BatchMaker(self.dataset, type(self).__name__)(batch_index)
        if self.gpu:
            x = cuda.as_cupy(x)
            t = None if t is None else cuda.as_cupy(t)
        return x, t


class _BatchMaker:
    """Builds the NumPy batch ``(x, t)`` for an index array from a dataset, holding no
    reference to the loader (so that a background thread does not keep it alive)."""

    def __init__(self, dataset: Any, owner: str) -> None:
        self.dataset, self.owner = dataset, owner

    def __call__(self, batch_index: np.ndarray) -> tuple[Any, Any]:
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
                    raise TypeError(f'{self.owner}: dataset[i] must be an (x, t) '
                                    f'pair, got {type(example).__name__}')
            x = self._stack('x', [example[0] for example in batch], batch_index)
            labels = [example[1] for example in batch]
            # An unlabelled dataset gives t = None (as Dataset does), not an array of Nones.
            t = None if all(label is None for label in labels) else \
                self._stack('t', labels, batch_index)
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
                f'{self.owner}: the examples of one batch must have one shape to be '
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


# -----------------------------------------------------------------------------
# Loading in the background (num_workers > 0)
# -----------------------------------------------------------------------------
_POLL_SECONDS = 0.05  # how often a blocked thread looks whether it should stop
_live_prefetchers: weakref.WeakSet = weakref.WeakSet()


class _Prefetcher:
    """One background thread that builds ``batches`` (index arrays) in order into a queue
    of at most ``depth`` batches. ``get()`` returns them in order and re-raises the
    thread's exception; ``close()`` stops the thread and waits for it."""

    def __init__(self, make: Callable, batches: list, iteration: int, index: Any,
                 depth: int) -> None:
        self.iteration = iteration  # the loader iteration that the next get() serves
        self.index = index  # the epoch order these batches were cut from
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        # The thread gets the queue, the event and the batch maker, not self: dropping
        # the last reference to the prefetcher (with its loader) runs __del__, which stops it.
        self._thread = threading.Thread(target=_produce, daemon=True,
                                        name='zerograd-DataLoader-worker',
                                        args=(make, batches, self._queue, self._stop))
        self._thread.start()
        _live_prefetchers.add(self)

    def get(self) -> tuple[Any, Any]:
        while True:
            try:
                ok, value = self._queue.get(timeout=_POLL_SECONDS)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    # Cannot happen unless the thread was killed from outside.
                    raise RuntimeError('DataLoader: the background thread ended without '
                                       'giving the next batch') from None
        if not ok:
            raise value  # the exception from the worker, its traceback included
        self.iteration += 1
        return value

    def close(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        _live_prefetchers.discard(self)

    def __del__(self) -> None:
        # No join here: __del__ may run at any point of another thread's work; the thread
        # sees the event within _POLL_SECONDS and ends by itself.
        stop = getattr(self, '_stop', None)
        if stop is not None:
            stop.set()


def _produce(make: Callable, batches: list, out: queue.Queue, stop: threading.Event) -> None:
    """The background thread: build each batch in order and put it (or the exception that
    building it raised, then stop) into ``out``; give up as soon as ``stop`` is set."""
    for batch_index in batches:
        if stop.is_set():
            return
        try:
            item = (True, make(batch_index))
        except BaseException as error:  # handed to the loop, which raises it
            item = (False, error)
        while True:
            if stop.is_set():
                return
            try:
                out.put(item, timeout=_POLL_SECONDS)
                break
            except queue.Full:
                continue
        if not item[0]:
            return


@atexit.register
def _stop_all_prefetchers() -> None:
    # Daemon threads would be frozen mid-batch at interpreter exit; stop them cleanly.
    for prefetcher in list(_live_prefetchers):
        prefetcher.close()


class _EpochIterator:
    """What ``iter(loader)`` returns when ``num_workers > 0``: the loader's batches of
    this epoch; when it is dropped (a ``for`` loop ended by ``break`` or an exception)
    while its epoch is still the loader's current one, the background thread stops."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader
        self.epoch = loader._epoch_count

    def __iter__(self) -> _EpochIterator:
        return self

    def __next__(self) -> tuple[Any, Any]:
        return self.loader.__next__()

    def __len__(self) -> int:
        return len(self.loader)

    def __del__(self) -> None:
        loader = getattr(self, 'loader', None)
        if loader is not None and loader._epoch_count == self.epoch:
            loader.close()


class SeqDataLoader(DataLoader):
    """Batches for truncated BPTT: ``batch_size`` parallel streams through one sequence.

    The sequence of length N is cut into ``batch_size`` consecutive segments of
    ``jump = N // batch_size`` items. Batch k (k = 0 .. jump-1) takes item k of every
    segment, the items at ``(i * jump + k) % N`` for i in range(batch_size), so row i of
    successive batches walks through segment i in order. ``x`` has shape
    ``(batch_size, *example_shape)``. No shuffling (it would break the streams);
    ``max_iter = ceil(N / batch_size)`` as in the book, so when N is not a multiple of
    batch_size the last batch's rows step into the first item of the next segment.
    Each ``for`` loop is a new epoch, as in ``DataLoader``; ``num_workers`` as there.
    """

    def __init__(self, dataset: Any, batch_size: int, gpu: bool = False, *,
                 num_workers: int = 0) -> None:
        super().__init__(dataset, batch_size, shuffle=False, gpu=gpu, num_workers=num_workers)
        if self.batch_size > self.data_size:
            raise ValueError(f'SeqDataLoader: batch_size {self.batch_size} exceeds the '
                             f'sequence length {self.data_size}')
        self.jump = self.data_size // self.batch_size

    def _batch_index(self, iteration: int | None = None) -> np.ndarray:
        i = self.iteration if iteration is None else iteration
        offsets = np.arange(self.batch_size) * self.jump + i
        return offsets % self.data_size
