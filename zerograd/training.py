"""Training utilities: a loop with progress bars, a metric history, pictures and resumable
checkpoints. The ``zerograd`` command is built on these; they work from Python too::

    history = training.fit(model, optimizer, train_loader, epochs=5, test_loader=test_loader)
    training.plot_history(history, 'curves.png')

tqdm (progress bars) and matplotlib (pictures) are optional: imported only when used.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import sys
import time
from typing import Any, Callable, Iterable, Iterator

import numpy as np

import zerograd.functions as F
from zerograd import checkpoints, cuda, utils
from zerograd.core import no_grad, test_mode


# =============================================================================
# Metric history
# =============================================================================
class History:
    """Metrics per epoch: ``history.append(epoch=1, train_loss=0.3, ...)``, then
    ``history['train_loss']`` is the list of that metric over the epochs."""

    def __init__(self, records: list[dict] | None = None) -> None:
        self.records: list[dict[str, float]] = list(records or [])

    def append(self, **metrics: float) -> None:
        """Add one epoch's record (name=value, kept as floats)."""
        self.records.append({name: float(value) for name, value in metrics.items()})

    def __getitem__(self, name: str) -> list[float]:
        return [record[name] for record in self.records if name in record]

    def __len__(self) -> int:
        return len(self.records)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, History) and self.records == other.records

    def __repr__(self) -> str:
        return f'History({len(self)} epochs, metrics {sorted(self.names())})'

    def names(self) -> list[str]:
        """The metric names, in first-seen order."""
        seen: dict[str, None] = {}
        for record in self.records:
            seen.update(dict.fromkeys(record))
        return list(seen)

    def save(self, path: str) -> None:
        """Write the history as JSON (a temporary file, then renamed)."""
        _atomic_write_text(path, json.dumps(self.records, indent=1))

    @classmethod
    def load(cls, path: str) -> History:
        """Read a history written by ``save`` (plain JSON data: nothing is evaluated)."""
        with open(path) as file:
            try:
                records = json.load(file)
            except json.JSONDecodeError as error:
                raise ValueError(f'History.load: {path!r} is not valid JSON: {error}') from None
        if not isinstance(records, list) or not all(
                isinstance(r, dict) and all(isinstance(k, str) and isinstance(v, (int, float))
                                            and not isinstance(v, bool) for k, v in r.items())
                for r in records):
            raise ValueError(f'History.load: {path!r} does not hold a list of metric records '
                             '(name -> number)')
        return cls(records)


def _atomic_write_text(path: str, text: str) -> None:
    utils.atomic_write(path, text.encode())


# =============================================================================
# Progress
# =============================================================================
class Progress:
    """An epoch's progress: a tqdm bar on a terminal (when tqdm is installed), nothing
    otherwise. ``update(n, **postfix)`` after each batch; ``close()`` at the end."""

    def __init__(self, total: int, desc: str, quiet: bool = False, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.bar = None
        if not quiet and self.shows_bars(self.stream):
            from tqdm import tqdm
            self.bar = tqdm(total=total, desc=desc, unit='sample', file=self.stream,
                            leave=True, dynamic_ncols=True)

    @staticmethod
    def shows_bars(stream: Any = None) -> bool:
        """Whether bars are drawn on ``stream`` (stderr): a terminal, and tqdm installed.
        Otherwise ``fit`` prints progress lines instead."""
        stream = stream or sys.stderr
        if not getattr(stream, 'isatty', lambda: False)():
            return False
        try:
            import tqdm  # noqa: F401
        except ImportError:
            return False
        return True

    def update(self, n: int, **postfix: Any) -> None:
        """Advance by ``n`` samples, showing ``postfix`` (loss, accuracy) beside the bar."""
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        """End the bar (it stays on screen)."""
        if self.bar is not None:
            self.bar.close()


# =============================================================================
# The loop
# =============================================================================
def model_array_module(model: Any) -> Any:
    """The array module (``numpy``, or ``cupy`` after ``model.to_gpu()``) of the model's
    first created parameter; ``numpy`` when it has none yet. Use it to put inputs made on
    the host where the model is: ``model(model_array_module(model).asarray(x))``."""
    for param in getattr(model, 'params', lambda: ())():
        if param.data is not None:
            return cuda.get_array_module(param.data)
    return np


def evaluate(model: Callable, loader: Iterable, loss_fn: Callable = F.softmax_cross_entropy,
             metric: Callable | None = F.accuracy, comm: Any = None) -> dict[str, float]:
    """Mean loss (and metric) of ``model`` over ``loader``, weighted by batch size, in
    test mode and without recording graphs. With a communicator (``zerograd.distributed``)
    each process evaluates its own loader (its shard) and the sums and counts are added
    over the processes: the exact global means, whatever the shards' lengths; every
    process gets them (a collective call: every process must make it)."""
    total = sum_loss = sum_metric = 0.0
    with no_grad(), test_mode():
        for x, t in loader:
            y = model(x)
            n = len(x)
            sum_loss += float(loss_fn(y, t).data) * n
            if metric is not None:
                sum_metric += float(metric(y, t).data) * n
            total += n
    if _parallel(comm) is not None:
        total, sum_loss, sum_metric = (float(v) for v in _global_sums(
            comm, [total, sum_loss, sum_metric]))
    if total == 0:
        raise ValueError('evaluate: the loader gave no batches')
    result = {'loss': sum_loss / total}
    if metric is not None:
        result['accuracy'] = sum_metric / total
    return result


def _parallel(comm: Any) -> Any:
    """The communicator when it spans more than one process, else None (one process:
    ``fit`` and ``evaluate`` then run exactly as without one)."""
    return comm if comm is not None and comm.size > 1 else None


def _global_sums(comm: Any, values: list[float]) -> np.ndarray:
    """``values`` added over the processes (float64: counts stay exact)."""
    return np.asarray(comm.allreduce(np.asarray(values, dtype=np.float64), op='sum'))


def _averages_gradients(optimizer: Any) -> bool:
    """Whether ``optimizer`` is already a DistributedOptimizer (or acts as one)."""
    try:
        from zerograd.distributed import DistributedOptimizer
    except ImportError:  # no distributed module: only a stand-in can say so
        DistributedOptimizer = ()
    return isinstance(optimizer, DistributedOptimizer) or \
        bool(getattr(optimizer, 'averages_gradients', False))


def _create_lazy_parameters(model: Any, loader: Any) -> None:
    """One forward (no graph, test mode: no dropout draw) on the loader's first examples,
    so that lazy layers create their parameters before they are broadcast."""
    if all(param.data is not None for param in model.params()):
        return
    if not hasattr(loader, '_load') or not hasattr(loader, 'batch_size'):
        missing = [name for name, param in model.named_params().items() if param.data is None]
        raise ValueError(f'fit: parameters {missing} do not exist yet (lazy layers) and the '
                         f'{type(loader).__name__} cannot give a batch to create them; run one '
                         'forward before fit(..., comm=comm)')
    x, _ = loader._load(np.arange(min(loader.batch_size, len(loader.dataset))))
    with no_grad(), test_mode():
        model(x)


def _random_state() -> dict:
    """NumPy's global generator state as JSON data (each process keeps its own)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {'name': name, 'keys': _encode_array(keys), 'pos': int(pos),
            'has_gauss': int(has_gauss), 'cached_gaussian': float(cached)}


def _set_random_state(state: Any) -> None:
    if not isinstance(state, dict) or set(state) != {'name', 'keys', 'pos', 'has_gauss',
                                                     'cached_gaussian'}:
        raise ValueError('load_state: the checkpoint holds a broken random state of a process')
    keys = _decode_array(state['keys'], 'random state')
    np.random.set_state((state['name'], keys, state['pos'], state['has_gauss'],
                         state['cached_gaussian']))


def _new_sums() -> dict[str, float]:
    """The running sums of an epoch (what a mid-epoch checkpoint keeps of it)."""
    return {'total': 0.0, 'sum_loss': 0.0, 'sum_metric': 0.0, 'elapsed': 0.0}


def _train_batches(model: Any, optimizer: Any, batches: Iterable, loss_fn: Callable,
                   metric: Callable | None, sums: dict[str, float],
                   progress: Progress | None, after_batch: Callable[[float], None] | None,
                   scale: int = 1) -> None:
    """forward, backward, update per batch, adding to ``sums``; ``after_batch(loss)`` after
    each, with the batch's loss as a float. ``scale``: the processes training together (the
    bar counts the samples of all)."""
    mark = time.perf_counter()
    for x, t in batches:
        y = model(x)
        loss = loss_fn(y, t)
        model.cleargrads()
        loss.backward()
        optimizer.update()
        n = len(x)
        batch_loss = float(loss.data)
        sums['total'] += n
        sums['sum_loss'] += batch_loss * n
        postfix = {'loss': f'{sums["sum_loss"] / sums["total"]:.4f}'}
        if metric is not None:
            sums['sum_metric'] += float(metric(y, t).data) * n
            postfix['acc'] = f'{sums["sum_metric"] / sums["total"]:.4f}'
        if progress is not None:  # the bar itself shows the rate in samples/s
            progress.update(n * scale, **postfix)
        now = time.perf_counter()
        sums['elapsed'] += now - mark
        mark = now
        if after_batch is not None:
            after_batch(batch_loss)


def _sums_result(sums: dict[str, float], metric: Callable | None) -> dict[str, float]:
    total = sums['total']
    result = {'loss': sums['sum_loss'] / max(total, 1),
              'samples_per_second': total / max(sums['elapsed'], 1e-9)}
    if metric is not None:
        result['accuracy'] = sums['sum_metric'] / max(total, 1)
    return result


def train_epoch(model: Any, optimizer: Any, loader: Iterable,
                loss_fn: Callable = F.softmax_cross_entropy,
                metric: Callable | None = F.accuracy, progress: Progress | None = None,
                ) -> dict[str, float]:
    """One pass over ``loader``: forward, backward, ``optimizer.update()`` per batch.
    Returns the mean training loss (and metric) and the samples per second."""
    sums = _new_sums()
    _train_batches(model, optimizer, loader, loss_fn, metric, sums, progress, None)
    return _sums_result(sums, metric)


def _rest_of_epoch(loader: Any) -> Iterator:
    """The batches left in the loader's current epoch (``for`` over the loader would
    start a new one)."""
    while True:
        try:
            batch = next(loader)
        except StopIteration:
            return
        yield batch


def _duration(seconds: float) -> str:
    """'0:42', '12:05', '3:02:10'."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f'{hours}:{minutes:02d}:{seconds:02d}' if hours else f'{minutes}:{seconds:02d}'


def _check_seconds(who: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) \
            or value < 0:
        raise ValueError(f'{who}: {name} must be a number of seconds >= 0, got {value!r}')
    return float(value)


class _Callbacks:
    """The callbacks of a run (``zerograd.callbacks``' protocol): each method is called on
    every callback that has it, in the order given; their states go into the checkpoints
    as a list of ``{'class': name, 'state': state_dict()}``, by position."""

    def __init__(self, who: str, callbacks: Any, comm: Any) -> None:
        from zerograd.callbacks import Callback
        if callbacks is None:
            callbacks = []
        if isinstance(callbacks, Callback) or not isinstance(callbacks, (list, tuple)):
            raise TypeError(f'{who}: callbacks must be a list of callbacks, got '
                            f'{type(callbacks).__name__} (wrap one in a list: callbacks=[...])')
        for i, callback in enumerate(callbacks):
            if isinstance(callback, type):
                raise TypeError(f'{who}: callbacks[{i}] is the class {callback.__name__}, not a '
                                f'callback; give an instance: {callback.__name__}(...)')
        self.who, self.items = who, list(callbacks)
        for callback in self.items:
            if isinstance(callback, Callback):
                # Under data-parallel fit every process runs the callbacks (their decisions
                # agree); writers look at ``rank`` and write on rank 0 alone.
                callback.rank = 0 if comm is None else int(comm.rank)
            if hasattr(callback, 'stop_training'):
                callback.stop_training = False  # a request of an earlier run is not this one's

    def __bool__(self) -> bool:
        return bool(self.items)

    def call(self, method: str, *args: Any) -> None:
        for callback in self.items:
            function = getattr(callback, method, None)
            if function is not None:
                function(*args)

    def names(self) -> list[str]:
        return [type(callback).__name__ for callback in self.items]

    def stopping(self) -> list[str]:
        """The names of the callbacks asking to stop."""
        return [type(c).__name__ for c in self.items if getattr(c, 'stop_training', False)]

    def states(self) -> list[dict]:
        states = []
        for i, callback in enumerate(self.items):
            name = type(callback).__name__
            state = callback.state_dict() if hasattr(callback, 'state_dict') else {}
            try:
                if not isinstance(state, dict):
                    raise TypeError(f'it returned a {type(state).__name__}, not a dict')
                json.dumps(state)
            except (TypeError, ValueError) as error:
                raise TypeError(f'{self.who}: {name}.state_dict() (callbacks[{i}]) must return a '
                                'dict of JSON values (numbers, strings, lists, dicts, None) to '
                                f'be saved in the checkpoint: {error}') from None
            states.append({'class': name, 'state': state})
        return states

    def check_saved(self, saved: Any, path: str) -> None:
        """ValueError unless ``saved`` (a checkpoint's) matches these callbacks by count and
        class, position by position."""
        if not isinstance(saved, list) or not all(
                isinstance(entry, dict) and set(entry) == {'class', 'state'}
                and isinstance(entry['class'], str) and isinstance(entry['state'], dict)
                for entry in saved):
            raise ValueError(f'{self.who}: {path} holds broken callback states (not a list of '
                             '{"class", "state"} objects)')
        saved_names = [entry['class'] for entry in saved]
        if saved_names != self.names():
            raise ValueError(f'{self.who}: the checkpoint {path} was saved with the callbacks '
                             f'{saved_names}, this run has {self.names()}; a resume continues '
                             'the saved run with the same callbacks in the same order (or '
                             'start a new run in another folder)')

    def load(self, saved: list[dict]) -> None:
        for callback, entry in zip(self.items, saved):
            if hasattr(callback, 'load_state_dict'):
                callback.load_state_dict(entry['state'])


class _Run:
    """What fit and fit_bptt share: the history, when to save and what to print.

    Saves: every ``log_every`` epochs and at the last (then the epoch line is printed,
    after its checkpoint is on disk), and whenever ``checkpoint_every`` seconds have passed
    since the last save: at the end of an epoch or, with a loader that can ``seek``
    (DataLoader, SeqDataLoader), in the middle of one. Without progress bars (no terminal
    or no tqdm) a progress line is printed every 10% of an epoch, but at most every
    ``progress_every / 3`` seconds, and at least every ``progress_every`` seconds.
    """

    def __init__(self, who: str, model: Any, optimizer: Any, loader: Any, epochs: int,
                 out: str | None, quiet: bool, log: Callable[[str], None], log_every: int,
                 checkpoint_every: float, progress_every: float, comm: Any = None,
                 callbacks: Any = None) -> None:
        if isinstance(log_every, bool) or not isinstance(log_every, (int, np.integer)) \
                or log_every < 1:
            raise ValueError(f'{who}: log_every must be an int >= 1, got {log_every!r}')
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f'{who}: epochs must be an int >= 0, got {epochs!r}')
        self.checkpoint_every = _check_seconds(who, 'checkpoint_every', checkpoint_every)
        self.progress_every = _check_seconds(who, 'progress_every', progress_every)
        self.who, self.model, self.optimizer, self.loader = who, model, optimizer, loader
        # Data-parallel (more than one process): rank 0 alone prints and writes; the others
        # take part in every collective call (gathering their random states) and nothing else.
        self.comm = _parallel(comm)
        self.root = self.comm is None or self.comm.rank == 0
        self.callbacks = _Callbacks(who, callbacks, self.comm)
        from zerograd.schedulers import LRScheduler
        schedules = [type(c).__name__ for c in self.callbacks.items
                     if isinstance(c, LRScheduler)]
        if len(schedules) > 1:  # each would set the rate over the other's: neither's values
            raise ValueError(f'{who}: one learning-rate schedule drives an optimizer, got '
                             f'{len(schedules)} ({", ".join(schedules)}); write their product '
                             'as one schedulers.LambdaLR')
        quiet = quiet or not self.root
        self.processes = 1 if self.comm is None else self.comm.size
        self.epochs, self.out, self.quiet, self.log = int(epochs), out, quiet, log
        self.log_every = int(log_every)
        self.history = History()
        self.updates = 0  # the optimizer updates over the whole run (from 1; a resume goes on)
        self.lines = not quiet and not Progress.shows_bars()
        # Mid-epoch checkpoints are timed by a clock each process reads on its own: on one
        # process only (with several, checkpoints come at the end of epochs).
        self.can_seek = hasattr(loader, 'seek') and hasattr(loader, 'iteration') \
            and self.comm is None
        self.last_save = self.last_line = time.perf_counter()
        self.line_done = 0

    def start(self, resume: bool) -> tuple[int, dict | None]:
        """(0, None), or, resuming: the last completed epoch and the saved epoch in
        progress (None when the checkpoint was written at the end of an epoch)."""
        if not resume:
            return 0, None
        if self.out is None:
            raise ValueError(f'{self.who}: resume=True needs the out folder of the earlier run')
        info = checkpoint_info(self.out)
        epoch, state = info['epoch'], info['state']
        if state and state.get('kind', self.who) != self.who:
            raise ValueError(f'{self.who}: the checkpoint in {self.out!r} was written by '
                             f'{state["kind"]}, not {self.who}')
        saved_processes = state.get('processes', 1) if state else 1
        if saved_processes != self.processes:
            raise ValueError(f'{self.who}: the checkpoint in {self.out!r} was written by '
                             f'{saved_processes} process{"es" if saved_processes != 1 else ""}, '
                             f'this run has {self.processes}; a resume continues the saved run '
                             f'with as many processes (mpiexec -n {saved_processes}), or start '
                             'a new run in another folder')
        if self.epochs <= epoch:
            raise ValueError(f'{self.who}: nothing to train: the checkpoint in {self.out!r} is '
                             f'at epoch {epoch} and epochs={self.epochs} asks for no more (ask '
                             f'for more than {epoch} epochs to continue it)')
        saved_batch = info['batch_size']
        batch_size = getattr(self.loader, 'batch_size', None)
        if saved_batch is not None and batch_size is not None and saved_batch != batch_size:
            raise ValueError(f'{self.who}: the checkpoint in {self.out!r} was trained with batch '
                             f'size {saved_batch}, the loader has {batch_size}; a resume '
                             f'continues the saved run (use batch size {saved_batch}, or '
                             'start a new run in another folder)')
        # Checkpoints written before callbacks existed hold none: then they start afresh.
        saved_callbacks = state.get('callbacks') if state else None
        if saved_callbacks is not None:
            self.callbacks.check_saved(saved_callbacks, checkpoint_path(self.out))
        asked = self.optimizer.hyperparams()
        checkpoints.load(checkpoint_path(self.out), self.model, self.optimizer,
                         random_state=True)
        if self.comm is not None:  # each process continues its own random sequence
            states = state.get('random_states')
            if not isinstance(states, list) or len(states) != self.processes:
                raise ValueError(f'{self.who}: the checkpoint in {self.out!r} holds no random '
                                 f'state for each of its {self.processes} processes')
            _set_random_state(states[self.comm.rank])
        self.history = info['history']
        partial = state.get('partial') if state else None
        self.updates = int(state.get('updates', 0)) if state else 0
        if self.who == 'fit' and saved_callbacks is None:
            # fit counted no updates before callbacks existed: one per batch.
            self.updates = epoch * len(self.loader) + (partial['iteration'] if partial else 0)
        if saved_callbacks is not None:
            self.callbacks.load(saved_callbacks)
        if not self.quiet:
            where = f'resumed after epoch {epoch}'
            if partial is not None:
                where += (f', {partial["iteration"]} of {len(self.loader)} batches into epoch '
                          f'{epoch + 1}')
            self.log(f'{where} from {checkpoint_path(self.out)}')
            if saved_callbacks is None and self.callbacks:
                self.log(f'the checkpoint holds no callback state (written before callbacks '
                         f'existed): {", ".join(self.callbacks.names())} start afresh')
            # The checkpoint's hyper-parameters win (an exact resume), said aloud when they
            # differ from the optimizer's (e.g. another --lr on the command line); not the
            # learning rate a schedule among the callbacks has moved on.
            from zerograd.schedulers import LRScheduler
            scheduled = {getattr(self.optimizer, '_lr_name', None)
                         for callback in self.callbacks.items
                         if isinstance(callback, LRScheduler)}
            for name, value in self.optimizer.hyperparams().items():
                if name in asked and asked[name] != value and name not in scheduled:
                    self.log(f'{name} = {value:g} from the checkpoint, not {asked[name]:g} (a '
                             'resume continues the saved run; start a new one to change it)')
        return epoch, partial

    def begin(self) -> None:
        """``on_train_begin``: after a resume has loaded, before the first epoch."""
        self.callbacks.call('on_train_begin', self.model, self.optimizer)

    def start_epoch(self, epoch: int, resumed_inside: bool) -> None:
        """``on_epoch_start``, except for an epoch resumed in its middle: it ran before the
        checkpoint, whose callback states hold what it did (an exact resume)."""
        self.line_done = 0
        if not resumed_inside:
            self.callbacks.call('on_epoch_start', epoch)

    def batch_end(self, loss: float) -> None:
        """One more optimizer update: ``on_batch_end`` with the run's count."""
        self.updates += 1
        self.callbacks.call('on_batch_end', self.updates, loss)

    def finish(self) -> History:
        self.callbacks.call('on_train_end')
        return self.history

    def progress(self, epoch: int, done: float, size: float, rate: float, text: str) -> None:
        """A progress line, when one is due (see the class)."""
        if not self.lines or done >= size:  # the epoch's end has its own line
            return
        now = time.perf_counter()
        since = now - self.last_line
        if not (since >= self.progress_every or (done - self.line_done >= 0.1 * size
                                                 and since >= self.progress_every / 3)):
            return
        rate = max(rate, 1e-9)
        left = (size - done) / rate
        line = (f'epoch {epoch}/{self.epochs}  {100 * done / size:.0f}% ({done:,.0f}/{size:,.0f} '
                f'samples)  {text}  {rate:,.0f} samples/s  ETA {_duration(left)} this epoch')
        if epoch < self.epochs:
            line += f', {_duration(left + (self.epochs - epoch) * size / rate)} in all'
        self.log(line)
        self.last_line, self.line_done = now, done

    def save_partial(self, epoch_done: int, partial: Callable[[], dict]) -> None:
        """A mid-epoch checkpoint, when ``checkpoint_every`` seconds have passed."""
        if self.out is None or not self.can_seek:
            return
        if time.perf_counter() - self.last_save >= self.checkpoint_every:
            self.save(epoch_done, partial())

    def end_epoch(self, record: dict) -> bool:
        """Record the epoch; every ``log_every`` epochs and at the last, save and print.
        The callbacks see the record first (what they add to it is kept). Returns whether
        a callback asked to stop: this epoch is then the last, saved and printed."""
        epoch = int(record['epoch'])
        stopping: list[str] = []
        if self.callbacks:
            if self.comm is not None:  # one record for all (rank 0's clock for the rate)
                record.update(self.comm.bcast_obj(record, root=0))
            self.callbacks.call('on_epoch_end', epoch, record)
            stopping = self.callbacks.stopping()
            if self.comm is not None:  # rank 0 decides for all, should a callback disagree
                stopping = self.comm.bcast_obj(stopping, root=0)
        self.history.append(**record)
        logged = epoch % self.log_every == 0 or epoch == self.epochs or bool(stopping)
        due = time.perf_counter() - self.last_save >= self.checkpoint_every
        if self.comm is not None and self.out is not None and not logged:
            due = self.comm.bcast_obj(due, root=0)  # rank 0's clock decides, for all
        if self.out is not None and (logged or due):
            self.save(epoch, None)
        if logged and not self.quiet:  # after the save: a printed epoch is never lost
            self.log(format_record(record))
            if stopping and epoch < self.epochs:
                self.log(f'{", ".join(stopping)} stopped training after epoch {epoch} of '
                         f'{self.epochs}')
            self.last_line = time.perf_counter()
        return bool(stopping)

    def save(self, epoch: int, partial: dict | None) -> None:
        state = {'kind': self.who, 'updates': self.updates, 'partial': partial}
        if self.root:  # rank 0 alone writes; its callbacks' states are everyone's
            state['callbacks'] = self.callbacks.states()
        if self.comm is not None:
            # The weights are the same on every process; the random states (shuffling of
            # each shard, dropout) are not: all are kept, for an exact resume.
            states = self.comm.gather_obj(_random_state(), root=0)
            state.update(processes=self.processes, random_states=states)
        if self.root:
            save_state(self.out, self.model, self.optimizer, epoch, self.history, state=state,
                       batch_size=getattr(self.loader, 'batch_size', None))
        self.last_save = time.perf_counter()


def fit(model: Any, optimizer: Any, train_loader: Any, epochs: int, *,
        loss_fn: Callable = F.softmax_cross_entropy, metric: Callable | None = F.accuracy,
        test_loader: Any = None, out: str | None = None, resume: bool = False,
        quiet: bool = False, log: Callable[[str], None] = print, log_every: int = 1,
        checkpoint_every: float = 180.0, progress_every: float = 30.0,
        comm: Any = None, callbacks: list | None = None) -> History:
    """Train for ``epochs`` epochs, with a progress bar per epoch and a line of metrics
    after it; returns the History (``train_loss``, ``train_accuracy``, ``test_loss``, ...).

    With ``out`` (a folder), a checkpoint (weights, optimizer state, NumPy's random state)
    and the history are written there every ``log_every`` epochs and after the last, and
    whenever ``checkpoint_every`` seconds of training have passed since the last one (in
    the middle of an epoch too, with a DataLoader); with ``resume=True`` training continues
    from the checkpoint exactly as if it had never stopped, mid-epoch included.
    ``log_every``: print (and save) every that many epochs. Without a terminal (a log
    file) a progress line comes about every 10% of an epoch or ``progress_every`` seconds.

    ``comm`` (``zerograd.distributed.create_communicator()``), data-parallel on more than
    one process: every process passes loaders over its own shard of the data
    (``scatter_dataset``; the batch size is per process, the global batch is it times
    ``comm.size``). The initial weights come from rank 0 (lazy layers are created first by
    a forward on the loader's first examples), the gradients are averaged before the
    optimizer's hooks, the training and test figures are exact global means, batch norm's
    running statistics are averaged before evaluating and saving, and every process ends
    each epoch with the same weights, bit for bit. Rank 0 alone prints and writes ``out``
    (read by every process on a resume: a folder they all see); checkpoints come at the end
    of epochs and record the number of processes, and a resume needs as many. A
    communicator of size 1 (or None) changes nothing.

    ``callbacks``: a list of ``zerograd.callbacks.Callback`` (EarlyStopping,
    ModelCheckpoint, CSVLogger, a learning-rate schedule, ...), called at the points that
    module describes; ``on_epoch_end`` sees the record before the History does, so what a
    callback adds to it is kept, and a callback that sets ``stop_training`` ends training
    after that epoch (saved and printed as the last; the History holds the epochs that
    ran). Their ``state_dict()`` goes into every checkpoint, and ``resume=True`` restores it
    (the callbacks given must match the saved ones, by count and class). Data-parallel,
    every process runs them with the same record (rank 0's), so that their decisions
    agree; ``on_batch_end``'s loss is then the process's own batch loss.
    """
    run = _Run('fit', model, optimizer, train_loader, epochs, out, quiet, log, log_every,
               checkpoint_every, progress_every, comm, callbacks)
    parallel, quiet = run.comm, run.quiet
    scale, stepper = 1, optimizer
    if parallel is not None:
        counts = _global_sums(parallel, [len(train_loader), len(train_loader) ** 2])
        if counts[1] * parallel.size != counts[0] ** 2:  # not all equal (Cauchy-Schwarz)
            raise ValueError(f'fit: the processes have training loaders of different lengths '
                             f'(this one, rank {parallel.rank}, has {len(train_loader)} '
                             'batches); each would wait for the others at the end of an epoch: '
                             'give every process an equal shard (scatter_dataset)')
        _create_lazy_parameters(model, train_loader)
        scale = parallel.size
        if not _averages_gradients(optimizer):  # not wrapped already
            stepper = parallel.wrap(optimizer)
    start_epoch, partial = run.start(resume)
    if parallel is not None:
        parallel.bcast_data(model, root=0)  # the same start everywhere (rank 0's draw)
    run.begin()
    size = len(train_loader.dataset) * scale
    for epoch in range(start_epoch + 1, epochs + 1):
        # A bar per epoch, unless epochs are many and short (then only the logged ones).
        shown = log_every == 1 or epoch % log_every == 0
        progress = Progress(size, f'epoch {epoch}/{epochs}', quiet or not shown)
        sums, batches = _new_sums(), train_loader
        run.start_epoch(epoch, resumed_inside=partial is not None)
        if partial is not None:  # resumed in the middle of this epoch
            _check_sums('fit', partial, set(sums))
            sums.update(partial['sums'])
            train_loader.seek(partial['iteration'], _decode_array(partial['index'], 'index'))
            batches, partial = _rest_of_epoch(train_loader), None
            progress.update(int(sums['total']))

        def after_batch(loss: float) -> None:
            run.batch_end(loss)
            rate = sums['total'] / max(sums['elapsed'], 1e-9)
            text = f'loss {sums["sum_loss"] / sums["total"]:.4f}'
            if metric is not None:
                text += f' accuracy {sums["sum_metric"] / sums["total"]:.4f}'
            run.progress(epoch, sums['total'] * scale, size, rate * scale, text)
            if run.can_seek and train_loader.iteration < len(train_loader):
                run.save_partial(epoch - 1, lambda: {
                    'iteration': int(train_loader.iteration), 'sums': dict(sums),
                    'index': (_encode_array(train_loader.index)
                              if getattr(train_loader, 'shuffle', True) else None)})

        try:
            _train_batches(model, stepper, batches, loss_fn, metric, sums, progress,
                           after_batch, scale)
        finally:
            progress.close()
        if parallel is not None:  # the epoch's figures over all the processes
            sums['total'], sums['sum_loss'], sums['sum_metric'] = (float(v) for v in _global_sums(
                parallel, [sums['total'], sums['sum_loss'], sums['sum_metric']]))
            parallel.mean_persistent(model)  # before evaluating and saving
        train = _sums_result(sums, metric)
        record = {'epoch': epoch, 'train_loss': train['loss']}
        if 'accuracy' in train:
            record['train_accuracy'] = train['accuracy']
        record['samples_per_second'] = train['samples_per_second']
        if test_loader is not None:
            test = evaluate(model, test_loader, loss_fn, metric, comm=parallel)
            record.update({f'test_{name}': value for name, value in test.items()})
        if run.end_epoch(record):
            break
    return run.finish()


def fit_bptt(model: Any, optimizer: Any, loader: Any, epochs: int, bptt_length: int, *,
             loss_fn: Callable = F.mean_squared_error, out: str | None = None,
             resume: bool = False, quiet: bool = False, log: Callable[[str], None] = print,
             log_every: int = 1, on_update: Callable[[int], None] | None = None,
             checkpoint_every: float = 180.0, progress_every: float = 30.0,
             callbacks: list | None = None) -> History:
    """Train a recurrent model by truncated backpropagation through time (the book's
    steps 59-60): ``loader`` yields one time step ``(x, t)`` at a time, in order (e.g. a
    ``SeqDataLoader``); the loss is summed over ``bptt_length`` steps, then backward,
    ``unchain_backward`` (cut the graph so the next chunk starts fresh) and an update.
    ``model.reset_state()`` starts every epoch. History: ``train_loss`` = the summed loss
    divided by the steps of the epoch, as the book prints it. ``on_update(n)`` is called
    after the n-th update of the run (e.g. to print a sample); ``out``, ``resume``,
    ``checkpoint_every`` (mid-epoch checkpoints come after an update, with the recurrent
    layers' state ``h``/``c``), ``progress_every`` and ``callbacks`` as for ``fit``
    (``on_batch_end`` after each update, with the chunk's summed loss).
    """
    if isinstance(bptt_length, bool) or not isinstance(bptt_length, (int, np.integer)) \
            or bptt_length < 1:
        raise ValueError(f'fit_bptt: bptt_length must be an int >= 1, got {bptt_length!r}')
    run = _Run('fit_bptt', model, optimizer, loader, epochs, out, quiet, log, log_every,
               checkpoint_every, progress_every, callbacks=callbacks)
    start_epoch, partial = run.start(resume)
    run.begin()
    steps_per_epoch = len(loader)
    for epoch in range(start_epoch + 1, epochs + 1):
        shown = log_every == 1 or epoch % log_every == 0
        progress = Progress(steps_per_epoch, f'epoch {epoch}/{epochs}', quiet or not shown)
        model.reset_state()
        loss, sums, batches = 0, {'total': 0.0, 'count': 0, 'elapsed': 0.0}, loader
        run.start_epoch(epoch, resumed_inside=partial is not None)
        if partial is not None:  # resumed after an update in the middle of this epoch
            _check_sums('fit_bptt', partial, set(sums))
            sums.update(partial['sums'])
            loader.seek(partial['iteration'])
            _set_recurrent_state(model, partial.get('recurrent'))
            batches, partial = _rest_of_epoch(loader), None
            progress.update(int(sums['count']))
        count, total = int(sums['count']), sums['total']
        mark = time.perf_counter()
        x = None
        try:
            for x, t in batches:
                loss = loss + loss_fn(model(x), t)
                count += 1
                if count % bptt_length == 0 or count == steps_per_epoch:
                    model.cleargrads()
                    loss.backward()
                    loss.unchain_backward()
                    optimizer.update()
                    chunk_loss = float(loss.data)
                    total += chunk_loss
                    loss = 0
                    run.batch_end(chunk_loss)
                    progress.update(bptt_length, loss=f'{total / count:.4f}')
                    if on_update is not None:
                        on_update(run.updates)
                    now = time.perf_counter()
                    sums['elapsed'] += now - mark
                    mark = now
                    n = len(x)
                    run.progress(epoch, count * n, steps_per_epoch * n,
                                 count * n / max(sums['elapsed'], 1e-9),
                                 f'loss {total / count:.4f}')
                    if run.can_seek and count < steps_per_epoch:
                        run.save_partial(epoch - 1, lambda: {
                            'iteration': int(loader.iteration), 'index': None,
                            'sums': {'total': total, 'count': count,
                                     'elapsed': sums['elapsed']},
                            'recurrent': _recurrent_state(model)})
        finally:
            progress.close()
        sums['elapsed'] += time.perf_counter() - mark
        if count == 0:
            raise ValueError('fit_bptt: the loader gave no time steps')
        record = {'epoch': epoch, 'train_loss': total / count,
                  'samples_per_second': count * len(x) / max(sums['elapsed'], 1e-9)}
        if run.end_epoch(record):
            break
    return run.finish()


def format_record(record: dict[str, float]) -> str:
    """'epoch 3  train loss 0.1234 accuracy 0.9612  test loss ...  12,345 samples/s'."""
    parts = [f'epoch {int(record["epoch"])}']
    for split in ('train', 'test'):
        if f'{split}_loss' in record:
            text = f'{split} loss {record[f"{split}_loss"]:.4f}'
            if f'{split}_accuracy' in record:
                text += f' accuracy {record[f"{split}_accuracy"]:.4f}'
            parts.append(text)
    if 'samples_per_second' in record:
        parts.append(f'{record["samples_per_second"]:,.0f} samples/s')
    return '  '.join(parts)


# =============================================================================
# Run state: checkpoint + history, saved and checked together
# =============================================================================
def checkpoint_path(out: str) -> str:
    """Where ``fit`` keeps the checkpoint of a run writing into ``out``."""
    return os.path.join(out, 'checkpoint.npz')


def _history_digest(records: list[dict]) -> str:
    return hashlib.sha256(json.dumps(records).encode()).hexdigest()


def save_state(out: str, model: Any, optimizer: Any, epoch: int, history: History, *,
               state: dict | None = None, batch_size: int | None = None) -> None:
    """The checkpoint (with NumPy's random state) and the history of a run, into ``out``.

    The history goes first and the checkpoint records its length (``epoch``) and a digest
    of it: a kill between the two leaves a history ahead of the checkpoint, which
    ``load_state`` cuts back, never one behind it. ``state``: JSON data about the epoch
    in progress (what ``fit`` needs to resume mid-epoch); ``batch_size``: the loader's.
    """
    os.makedirs(out, exist_ok=True)
    history.save(os.path.join(out, 'history.json'))
    extra: dict[str, Any] = {'epoch': int(epoch),
                             'history_sha256': _history_digest(history.records)}
    if batch_size is not None:
        extra['batch_size'] = int(batch_size)
    if state is not None:
        extra['run_state'] = json.dumps(state)
    checkpoints.save(checkpoint_path(out), model, optimizer, random_state=True, **extra)


def checkpoint_info(out: str) -> dict[str, Any]:
    """What the checkpoint in ``out`` says about its run, checked: ``epoch`` (the epochs
    completed), ``history`` (history.json cut to those epochs, matching the checkpoint),
    ``batch_size`` (None if not recorded) and ``state`` (the epoch in progress, or None)."""
    from zerograd.layers import read_npz
    who = 'load_state'
    path = checkpoint_path(out)
    if not os.path.exists(path):
        raise FileNotFoundError(f'no checkpoint to resume from: {path} does not exist')
    arrays = read_npz(path, who)
    extras = {name[len('extra/'):]: value for name, value in arrays.items()
              if name.startswith('extra/')}
    for name, value in extras.items():
        if value.shape != ():
            raise ValueError(f'{who}: extra {name!r} in {path} is not a scalar')

    def number(name: str, required: bool) -> int | None:
        if name not in extras:
            if required:
                raise ValueError(f'{who}: {path} records no {name}')
            return None
        value = extras[name]
        if value.dtype.kind not in 'iu' or int(value) < (0 if name == 'epoch' else 1):
            raise ValueError(f'{who}: {path} records {name} {value.item()!r}; it must be an '
                             f'int >= {0 if name == "epoch" else 1}')
        return int(value)

    epoch = number('epoch', True)
    batch_size = number('batch_size', False)
    state = None
    if 'run_state' in extras:
        try:
            state = json.loads(str(extras['run_state']))
        except json.JSONDecodeError as error:
            raise ValueError(f'{who}: {path} holds a broken run state: {error}') from None
        if not isinstance(state, dict) or (state.get('partial') is not None
                                           and not isinstance(state['partial'], dict)):
            raise ValueError(f'{who}: {path} holds a broken run state (not a JSON object)')
        updates = state.get('updates', 0)
        if isinstance(updates, bool) or not isinstance(updates, int) or updates < 0:
            raise ValueError(f'{who}: {path} records {updates!r} updates; it must be an int >= 0')
    history_path = os.path.join(out, 'history.json')
    history = History.load(history_path)
    history.records = [r for r in history.records if r.get('epoch', 0) <= epoch]
    if history['epoch'] != list(range(1, epoch + 1)):
        got = history['epoch']
        held = f'epochs {int(got[0])} to {int(got[-1])} ({len(got)} records)' if got \
            else 'no epochs'
        raise ValueError(f'{who}: {history_path} holds {held}, but the checkpoint {path} is '
                         f'at epoch {epoch}: the history does not belong to it')
    if 'history_sha256' in extras and \
            str(extras['history_sha256']) != _history_digest(history.records):
        raise ValueError(f'{who}: {history_path} does not match the checkpoint {path} (edited, '
                         'or from another run)')
    return {'epoch': epoch, 'history': history, 'batch_size': batch_size, 'state': state}


def load_state(out: str, model: Any, optimizer: Any) -> tuple[int, History]:
    """Restore what ``save_state`` wrote: returns (last completed epoch, history)."""
    info = checkpoint_info(out)
    checkpoints.load(checkpoint_path(out), model, optimizer, random_state=True)
    return info['epoch'], info['history']


def _check_sums(who: str, partial: dict, names: set[str]) -> None:
    sums = partial.get('sums')
    if not isinstance(sums, dict) or set(sums) != names or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and v >= 0 for v in sums.values()) or isinstance(partial.get('iteration'), bool) \
            or not isinstance(partial.get('iteration'), int):
        raise ValueError(f'{who}: the checkpoint holds a broken epoch in progress '
                         f'(sums {sums!r}, iteration {partial.get("iteration")!r})')


_ARRAY_DTYPES = ('<i4', '<i8', '<u4', '<u8', '<f2', '<f4', '<f8')


def _encode_array(array: Any) -> dict:
    """An array as JSON data, exactly (its bytes in base64)."""
    array = np.ascontiguousarray(cuda.as_numpy(array))
    array = array.astype(array.dtype.newbyteorder('<'))
    return {'dtype': array.dtype.str, 'shape': list(array.shape),
            'data': base64.b64encode(array.tobytes()).decode('ascii')}


def _decode_array(data: Any, what: str) -> np.ndarray | None:
    """The array ``_encode_array`` wrote (None stays None), checked."""
    if data is None:
        return None
    problem = None
    if not isinstance(data, dict) or set(data) != {'dtype', 'shape', 'data'}:
        problem = 'not an encoded array'
    elif data['dtype'] not in _ARRAY_DTYPES:
        problem = f'dtype {data["dtype"]!r}'
    elif not isinstance(data['shape'], list) or len(data['shape']) > 8 or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in data['shape']):
        problem = f'shape {data["shape"]!r}'
    elif not isinstance(data['data'], str):
        problem = 'data not a string'
    if problem is None:
        try:
            raw = base64.b64decode(data['data'], validate=True)
        except ValueError:
            raw, problem = b'', 'data not base64'
        dtype = np.dtype(data['dtype'])
        if problem is None and len(raw) != math.prod(data['shape']) * dtype.itemsize:
            problem = f'{len(raw)} bytes for shape {data["shape"]}'
    if problem is not None:
        raise ValueError(f'load_state: the checkpoint holds a broken {what} ({problem})')
    return np.frombuffer(raw, dtype=dtype).reshape(data['shape']).astype(dtype.newbyteorder('='))


def _recurrent_layers(layer: Any, prefix: str = '') -> Iterator[tuple[str, Any]]:
    """(path, layer) for the layers that keep a state between calls (``h``, and ``c``),
    the root included."""
    from zerograd.layers import Layer
    if 'h' in layer.__dict__ and hasattr(layer, 'reset_state'):
        yield prefix, layer
    for name in layer.__dict__.get('_params', []):
        obj = layer.__dict__[name]
        if isinstance(obj, Layer):
            yield from _recurrent_layers(obj, f'{prefix}{name}/')


def _recurrent_state(model: Any) -> dict[str, dict | None]:
    state = {}
    for path, layer in _recurrent_layers(model):
        for name in ('h', 'c'):
            if name in layer.__dict__:
                value = layer.__dict__[name]
                # The generation too: it orders the next backward's sums (to the last bit).
                state[path + name] = None if value is None else {
                    'array': _encode_array(value.data), 'generation': int(value.generation)}
    return state


def _set_recurrent_state(model: Any, state: Any) -> None:
    from zerograd.core import Variable
    expected = {path + name for path, layer in _recurrent_layers(model)
                for name in ('h', 'c') if name in layer.__dict__}
    if not isinstance(state, dict) or set(state) != expected:
        raise ValueError(f'load_state: the checkpoint holds the recurrent state of '
                         f'{sorted(state) if isinstance(state, dict) else state!r}, the model '
                         f'has {sorted(expected)}')
    xp = model_array_module(model)
    for path, layer in _recurrent_layers(model):
        for name in ('h', 'c'):
            if name in layer.__dict__:
                saved = state[path + name]
                if saved is None:
                    setattr(layer, name, None)
                    continue
                generation = saved.get('generation') if isinstance(saved, dict) else None
                if isinstance(generation, bool) or not isinstance(generation, int) \
                        or generation < 0:
                    raise ValueError(f'load_state: recurrent state {path + name!r} in the '
                                     f'checkpoint is broken (generation {generation!r})')
                array = _decode_array(saved.get('array'), f'recurrent state {path + name!r}')
                if array is None or array.dtype.kind != 'f':
                    raise ValueError(f'load_state: recurrent state {path + name!r} in the '
                                     'checkpoint is not a float array')
                variable = Variable(xp.asarray(array))
                variable.generation = generation
                setattr(layer, name, variable)


# =============================================================================
# Pictures (matplotlib, without pyplot: no display is ever needed)
# =============================================================================
def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("zerograd.training: pictures need matplotlib; install it with "
                          "pip install 'zerograd[plot]'") from None
    return Figure(figsize=(width, height), dpi=100)


def _layout(fig: Any, title: str | None, height: float) -> None:
    """Lay the axes out, leaving room above them for ``title`` (one or more lines)."""
    if title is None:
        fig.tight_layout()
        return
    fig.suptitle(title, fontsize=9)
    lines = title.count('\n') + 1
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.13 * lines / height))


def plot_history(history: History, path: str, title: str | None = None) -> str:
    """Loss and accuracy curves (train and test) against the epoch, side by side, under
    ``title`` (say which data set and run they come from)."""
    epochs = history['epoch']
    panels = [name for name in ('loss', 'accuracy')
              if history[f'train_{name}'] or history[f'test_{name}']]
    fig = _figure(5 * len(panels), 4)
    for i, name in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), i)
        for split, style in (('train', 'o-'), ('test', 's--')):
            if len(epochs) > 30:  # markers only while they can be told apart
                style = style[1:]
            values = history[f'{split}_{name}']
            if values:
                ax.plot(epochs[:len(values)], values, style, label=split)
        ax.set_xlabel('epoch')
        ax.xaxis.get_major_locator().set_params(integer=True)  # no epoch 2.5
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        ax.legend()
    _layout(fig, title, 4)
    fig.savefig(path)
    return path


def plot_digits(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, path: str,
                cols: int = 10, title: str | None = None) -> str:
    """A grid of images (N, H, W), each captioned with the predicted label. A wrong
    prediction reads ``✗ 7 (true 1)``: the mark and the true label say it in text, and red
    only repeats it (colour alone fails readers who cannot tell red from green, and grey
    prints). The figure's title is ``title`` (say which data set, split and run) above a line
    counting the wrong ones and explaining the mark."""
    n = len(images)
    labels, predicted = np.asarray(labels).astype(int), np.asarray(predicted).astype(int)
    wrong = int(np.sum(labels[:n] != predicted[:n]))
    rows = max(1, math.ceil(n / cols))
    fig = _figure(max(cols * 0.9, 6.5), rows * 1.05 + 0.7)
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(images[i], cmap='gray_r')
        if predicted[i] == labels[i]:
            ax.set_title(f'{predicted[i]}', fontsize=9)
        else:
            ax.set_title(f'✗ {predicted[i]} (true {labels[i]})', color='red',
                         fontsize=8, fontweight='bold')
        ax.axis('off')
    legend = (f'captions: the predicted label; {wrong} of {n} wrong, shown as '
              '"✗ predicted (true label)"')
    fig.suptitle(legend if title is None else f'{title}\n{legend}', fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.55 / (rows * 1.05 + 0.7)))
    fig.savefig(path)
    return path


def plot_decision_boundary(model: Callable, x: np.ndarray, t: np.ndarray, path: str,
                           step: float = 0.01, title: str | None = None) -> str:
    """The classes ``model`` predicts over the plane around the 2-D points x, and the
    points coloured by their labels t, under ``title`` (say which points and run)."""
    x_min, y_min = x.min(axis=0) - 0.1
    x_max, y_max = x.max(axis=0) + 0.1
    xx, yy = np.meshgrid(np.arange(x_min, x_max, step), np.arange(y_min, y_max, step))
    grid = np.c_[xx.ravel(), yy.ravel()].astype(x.dtype)
    xp = model_array_module(model)  # the grid goes where the model is (a GPU, maybe)
    with no_grad(), test_mode():
        scores = cuda.as_numpy(model(xp.asarray(grid)).data)
    predicted = np.argmax(scores, axis=1).reshape(xx.shape)
    fig = _figure(6, 6)
    ax = fig.add_subplot(1, 1, 1)
    ax.contourf(xx, yy, predicted, alpha=0.3)
    for label, marker in zip(np.unique(t), 'ox^sd*'):
        points = x[t == label]
        ax.scatter(points[:, 0], points[:, 1], marker=marker, s=25, label=str(label))
    ax.legend(title='label')
    _layout(fig, title, 6)
    fig.savefig(path)
    return path


def plot_curves(x: np.ndarray, curves: dict[str, np.ndarray], path: str,
                points: tuple[np.ndarray, np.ndarray] | None = None,
                title: str | None = None) -> str:
    """Lines y(x) by name (e.g. prediction and target), over optional scattered points,
    under ``title`` (say which data and run)."""
    fig = _figure(7, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    if points is not None:
        ax.scatter(points[0].ravel(), points[1].ravel(), s=8, alpha=0.5, label='data')
    for name, y in curves.items():
        ax.plot(np.ravel(x), np.ravel(y), label=name)
    ax.legend()
    ax.grid(True, alpha=0.3)
    _layout(fig, title, 4.5)
    fig.savefig(path)
    return path


def batches(x: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive slices of x of ``batch_size`` rows (the last may be shorter)."""
    for i in range(0, len(x), batch_size):
        yield x[i:i + batch_size]
