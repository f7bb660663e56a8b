"""Callbacks: code that ``training.fit`` runs at fixed points of training.

A callback is an object with any of these methods (``Callback`` has them all, doing
nothing; subclass it and override the ones you need):

- ``on_train_begin(model, optimizer)``: once, before the first epoch (after a resume has
  loaded the checkpoint, so the callback sees the weights it continues from);
- ``on_epoch_start(epoch)``: ``epoch`` counts from 1, as fit's lines do;
- ``on_batch_end(iteration, loss)``: after each optimizer update; ``iteration`` counts the
  updates since the start of the run (from 1; a resume continues the count), ``loss`` is
  that batch's loss as a float;
- ``on_epoch_end(epoch, record)``: after the epoch is evaluated, with the record that goes
  into the History (``train_loss``, ``test_accuracy``, ...); a callback may add entries to
  ``record`` (a learning rate, say) and they are kept;
- ``on_train_end()``: once, after the last epoch (or after a stop).

A callback asks fit to stop by setting ``stop_training = True`` (EarlyStopping does); fit
ends after that epoch. ``state_dict()`` returns what the callback must remember across a
resume (JSON values only: numbers, strings, lists, dicts, None), saved in fit's
checkpoints, and ``load_state_dict(state)`` puts it back (before ``on_train_begin``). A run
resumed in the middle of an epoch does not call that epoch's ``on_epoch_start`` again: it
ran before the checkpoint, and its effects are in the saved state. Under data-parallel
``fit`` every process runs the callbacks, with the same records; fit sets ``rank`` (0 on
one process) and the callbacks that write files write on rank 0 alone.

Here: ``EarlyStopping``, ``ModelCheckpoint`` (the best weights by a monitored metric) and
``CSVLogger``, with Keras's semantics.

>>> class PrintLoss(Callback):
...     def on_epoch_end(self, epoch, record):
...         print(epoch, round(record['train_loss'], 2))
"""
from __future__ import annotations

import csv
import io
import math
import os
from typing import Any

import numpy as np

from zerograd import utils


class Callback:
    """The callback protocol of ``training.fit``; every method does nothing here."""

    stop_training: bool = False
    rank: int = 0  # this process's rank under data-parallel fit (set by fit)

    def on_train_begin(self, model: Any, optimizer: Any) -> None:
        """Before the first epoch of this run (after a resume has loaded its checkpoint)."""

    def on_epoch_start(self, epoch: int) -> None:
        """Before epoch ``epoch`` (from 1)."""

    def on_batch_end(self, iteration: int, loss: float) -> None:
        """After update number ``iteration`` (from 1 over the whole run), of batch loss ``loss``."""

    def on_epoch_end(self, epoch: int, record: dict[str, float]) -> None:
        """After epoch ``epoch``, with its History record (entries may be added)."""

    def on_train_end(self) -> None:
        """After the last epoch, or after a callback stopped training."""

    def state_dict(self) -> dict[str, Any]:
        """What a resume needs to continue exactly (JSON values); {} by default."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""


# =============================================================================
# A monitored metric: which entry of the record, and which way is better
# =============================================================================
_MODES = ('min', 'max', 'auto')


def _check_monitor(who: str, monitor: Any, mode: Any) -> str:
    """The mode ('min' or 'max') for ``monitor``; 'auto' decides by the name, as Keras
    does: a loss is minimized, an accuracy (or AUC) maximized, anything else must be told."""
    if not isinstance(monitor, str) or not monitor:
        raise TypeError(f'{who}: monitor must be the name of a record entry (a str such as '
                        f"'test_loss'), got {monitor!r}")
    if mode not in _MODES:
        raise ValueError(f"{who}: mode must be 'min', 'max' or 'auto', got {mode!r}")
    if mode != 'auto':
        return mode
    name = monitor.lower()
    if name.endswith(('accuracy', 'acc', 'auc')):
        return 'max'
    if name.endswith('loss'):
        return 'min'
    raise ValueError(f"{who}: mode='auto' cannot tell whether {monitor!r} is better smaller or "
                     "larger; give mode='min' or mode='max'")


def _monitored(who: str, monitor: str, record: dict[str, float]) -> float:
    if monitor not in record:
        hint = ' (fit records test_* entries only with a test_loader)' \
            if monitor.startswith('test_') else ''
        raise ValueError(f'{who}: monitor {monitor!r} is not in the epoch record, which holds '
                         f'{list(record)}{hint}')
    return float(record[monitor])


def _improves(mode: str, value: float, best: float | None, min_delta: float = 0.0) -> bool:
    """Whether ``value`` beats ``best`` by more than ``min_delta`` (NaN never does)."""
    if math.isnan(value):
        return False
    if best is None:
        return True
    return value - min_delta > best if mode == 'max' else value + min_delta < best


def _model_weights(model: Any, who: str) -> dict[str, np.ndarray]:
    """A copy of every created parameter of ``model`` (host arrays)."""
    return {key: np.array(value, copy=True)
            for key, value in model.weight_arrays(who).items()}


# =============================================================================
# EarlyStopping
# =============================================================================
class EarlyStopping(Callback):
    """Stop training when ``monitor`` (an entry of fit's record) has stopped improving, as
    Keras's EarlyStopping does.

    Each epoch counts one more epoch waited; an epoch whose value beats the best so far by
    more than ``min_delta`` (smaller for mode 'min', larger for 'max'; 'auto' reads the
    name: a loss is minimized, an accuracy maximized) becomes the best and resets the count.
    When the count reaches ``patience`` without a new best (patience 0: the first epoch
    that does not improve), ``stop_training`` is set and fit ends after that epoch. With
    ``restore_best_weights`` the model then gets the weights of its best epoch back (kept
    in memory, and in the checkpoints' callback state: a resume continues exactly).
    After training: ``best``, ``best_epoch``, ``stopped_epoch`` (0: did not stop).

    >>> stop = EarlyStopping(monitor='test_loss', patience=5)
    """

    def __init__(self, monitor: str = 'test_loss', patience: int = 0, min_delta: float = 0.0,
                 mode: str = 'auto', restore_best_weights: bool = False) -> None:
        who = 'EarlyStopping'
        self.mode = _check_monitor(who, monitor, mode)
        if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)):
            raise TypeError(f'{who}: patience must be an int, got {type(patience).__name__} '
                            f'{patience!r}')
        if patience < 0:
            raise ValueError(f'{who}: patience must be >= 0 (epochs to wait), got {patience}')
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float, np.floating)):
            raise TypeError(f'{who}: min_delta must be a number, got {min_delta!r}')
        if not (math.isfinite(min_delta) and min_delta >= 0):
            raise ValueError(f'{who}: min_delta must be a finite number >= 0, got {min_delta!r}')
        self.monitor, self.patience, self.min_delta = monitor, int(patience), float(min_delta)
        self.restore_best_weights = bool(restore_best_weights)
        self.model: Any = None
        self._resumed = False
        self._reset()

    def _reset(self) -> None:
        self.wait, self.best, self.best_epoch, self.stopped_epoch = 0, None, 0, 0
        self.best_weights: dict[str, np.ndarray] | None = None

    def on_train_begin(self, model: Any, optimizer: Any) -> None:
        """A new run starts afresh (a resumed one keeps its loaded state)."""
        self.model = model
        if not self._resumed:
            self._reset()
        self._resumed = False

    def on_epoch_end(self, epoch: int, record: dict[str, float]) -> None:
        """Count the epoch, keep a new best, and stop once ``patience`` is exhausted."""
        current = _monitored('EarlyStopping', self.monitor, record)
        if self.restore_best_weights and self.best_weights is None:
            # Nothing better seen yet: the weights at hand are the best ones (as in Keras).
            self.best_weights = _model_weights(self.model, 'EarlyStopping')
            self.best_epoch = epoch
        self.wait += 1
        if _improves(self.mode, current, self.best, self.min_delta):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_weights = _model_weights(self.model, 'EarlyStopping')
            return
        if self.wait >= self.patience and epoch > 1:
            self.stopped_epoch = epoch
            self.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                self.model._set_weights(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        """The count, the best value and epoch (and the best weights, when restored)."""
        from zerograd.training import _encode_array
        weights = None if self.best_weights is None else {
            key: _encode_array(value) for key, value in self.best_weights.items()}
        return {'wait': self.wait, 'best': self.best, 'best_epoch': self.best_epoch,
                'stopped_epoch': self.stopped_epoch, 'best_weights': weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state_dict()``'s values (a resume)."""
        from zerograd.training import _decode_array
        self.wait, self.best = int(state['wait']), state['best']
        self.best_epoch, self.stopped_epoch = int(state['best_epoch']), int(state['stopped_epoch'])
        weights = state.get('best_weights')
        self.best_weights = None if weights is None else {
            key: _decode_array(value, f'EarlyStopping best weight {key!r}')
            for key, value in weights.items()}
        self._resumed = True


# =============================================================================
# ModelCheckpoint
# =============================================================================
class ModelCheckpoint(Callback):
    """Keep the model's best weights by ``monitor``, as Keras's ModelCheckpoint does.

    ``path``: the weights file (``save_weights``'s format; ``.npz`` is added when missing),
    or a folder (an existing one, or a path ending in ``/``) to hold ``best.npz``. It may
    name record entries, ``'w-{epoch:03d}-{test_loss:.3f}.npz'``. With ``save_best_only``
    (the default) the weights are written after each epoch whose value beats the best so
    far (mode as in ``EarlyStopping``), else after every epoch. Files are written atomically
    (never half of one), on rank 0 alone under data-parallel fit. ``best`` and
    ``best_epoch`` are kept in the checkpoints' callback state: a resume goes on comparing
    with the best of the whole run. ``last_path``: the file written last (None: none yet).

    >>> keep = ModelCheckpoint('run/best.npz', monitor='test_accuracy')
    """

    def __init__(self, path: str, monitor: str = 'test_loss', mode: str = 'auto',
                 save_best_only: bool = True) -> None:
        who = 'ModelCheckpoint'
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise TypeError(f'{who}: path must be a file or folder name, got {path!r}')
        path = os.fspath(path)
        if path.endswith(os.sep) or (os.altsep and path.endswith(os.altsep)) \
                or os.path.isdir(path):
            path = os.path.join(path, 'best.npz')
        if not path.endswith('.npz'):
            path += '.npz'
        self.path, self.save_best_only = path, bool(save_best_only)
        self.monitor = monitor
        self.mode = _check_monitor(who, monitor, mode)
        self.model: Any = None
        self.best: float | None = None
        self.best_epoch = 0
        self.last_path: str | None = None
        self._resumed = False

    def on_train_begin(self, model: Any, optimizer: Any) -> None:
        """A new run starts with no best (a resumed one keeps its loaded best)."""
        self.model = model
        if not self._resumed:
            self.best, self.best_epoch = None, 0
        self._resumed = False

    def on_epoch_end(self, epoch: int, record: dict[str, float]) -> None:
        """Write the weights when the epoch is the best so far (or always)."""
        if self.save_best_only:
            current = _monitored('ModelCheckpoint', self.monitor, record)
            if not _improves(self.mode, current, self.best):
                return
            self.best, self.best_epoch = current, epoch
        try:
            path = self.path.format(**{**record, 'epoch': epoch})
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(f'ModelCheckpoint: cannot fill in the path {self.path!r} from '
                             f'epoch and the record {list(record)}: {error!r}') from None
        if self.rank == 0:
            self.model.save_weights(path)  # atomic: a temporary file, then renamed
        self.last_path = path

    def state_dict(self) -> dict[str, Any]:
        """The best value so far and its epoch."""
        return {'best': self.best, 'best_epoch': self.best_epoch, 'last_path': self.last_path}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state_dict()``'s values (a resume)."""
        self.best, self.best_epoch = state['best'], int(state['best_epoch'])
        self.last_path = state.get('last_path')
        self._resumed = True


# =============================================================================
# CSVLogger
# =============================================================================
class CSVLogger(Callback):
    """One row per epoch into the CSV file ``path``: a header of the record's entries
    (``epoch``, ``train_loss``, ...), then their values (full precision, ``repr``). A new
    run starts the file afresh; a resumed one goes on appending (rows after the
    checkpoint, from epochs that are trained again, are cut first). An entry that appears
    in a later epoch adds a column (the file is rewritten with it, earlier rows left
    empty there); one missing from an epoch is left empty. Rank 0 alone writes.

    >>> log = CSVLogger('run/log.csv')
    """

    def __init__(self, path: str, separator: str = ',') -> None:
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise TypeError(f'CSVLogger: path must be a file name, got {path!r}')
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f'CSVLogger: separator must be one character, got {separator!r}')
        self.path, self.separator = os.fspath(path), separator
        self.fields: list[str] = []
        self.rows = 0
        self._resumed = False

    def on_train_begin(self, model: Any, optimizer: Any) -> None:
        """A new run empties the file; a resumed one cuts it back to its saved rows."""
        resumed, self._resumed = self._resumed, False
        if not resumed:
            self.fields, self.rows = [], 0
        if self.rank != 0:  # the other processes keep the count, and write nothing
            return
        if not resumed:
            utils.atomic_write(self.path, b'')
        elif os.path.exists(self.path):
            header, rows = self._read()
            if header != self.fields or len(rows) != self.rows:
                self._rewrite(rows[:self.rows])

    def on_epoch_end(self, epoch: int, record: dict[str, float]) -> None:
        """Write the epoch's row (a new entry rewrites the file with its column)."""
        new = [name for name in record if name not in self.fields]
        self.fields += new
        row = {name: _csv_value(value) for name, value in record.items()}
        if self.rank == 0:
            if self.rows == 0 or new or not os.path.exists(self.path):
                _, rows = self._read() if self.rows and os.path.exists(self.path) else ([], [])
                self._rewrite(rows + [row])
            else:
                with open(self.path, 'a', newline='', encoding='utf-8') as file:
                    self._writer(file).writerow(row)
        self.rows += 1

    def _writer(self, file: Any) -> csv.DictWriter:
        return csv.DictWriter(file, self.fields, restval='', delimiter=self.separator)

    def _read(self) -> tuple[list[str], list[dict[str, str]]]:
        with open(self.path, newline='', encoding='utf-8') as file:
            reader = csv.reader(file, delimiter=self.separator)
            lines = list(reader)
        if not lines:
            return [], []
        header = lines[0]
        return header, [dict(zip(header, line)) for line in lines[1:]]

    def _rewrite(self, rows: list[dict[str, str]]) -> None:
        text = io.StringIO(newline='')
        writer = self._writer(text)
        writer.writeheader()
        for row in rows:
            writer.writerow({name: row.get(name, '') for name in self.fields})
        utils.atomic_write(self.path, text.getvalue().encode('utf-8'))

    def state_dict(self) -> dict[str, Any]:
        """The columns and the number of rows written."""
        return {'fields': list(self.fields), 'rows': self.rows}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state_dict()``'s values (a resume)."""
        self.fields, self.rows = [str(name) for name in state['fields']], int(state['rows'])
        self._resumed = True


def _csv_value(value: Any) -> str:
    """An int as an int, a float to the last bit (``repr``)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    return repr(float(value))
