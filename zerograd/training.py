"""Training utilities: a loop with progress bars, a metric history, pictures and resumable
checkpoints. The ``zerograd`` command is built on these; they work from Python too::

    history = training.fit(model, optimizer, train_loader, epochs=5, test_loader=test_loader)
    training.plot_history(history, 'curves.png')

tqdm (progress bars) and matplotlib (pictures) are optional: imported only when used.
"""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from typing import Any, Callable, Iterable, Iterator

import numpy as np

import zerograd.functions as F
from zerograd import checkpoints, cuda
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
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp_path = tempfile.mkstemp(suffix='.tmp', dir=folder)
    try:
        with os.fdopen(handle, 'w') as file:
            file.write(text)
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


# =============================================================================
# Progress
# =============================================================================
class Progress:
    """An epoch's progress: a tqdm bar on a terminal (when tqdm is installed), nothing
    otherwise. ``update(n, **postfix)`` after each batch; ``close()`` at the end."""

    def __init__(self, total: int, desc: str, quiet: bool = False, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.bar = None
        if not quiet and getattr(self.stream, 'isatty', lambda: False)():
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, desc=desc, unit='sample', file=self.stream,
                                leave=True, dynamic_ncols=True)

    def update(self, n: int, **postfix: Any) -> None:
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
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
             metric: Callable | None = F.accuracy) -> dict[str, float]:
    """Mean loss (and metric) of ``model`` over ``loader``, weighted by batch size, in
    test mode and without recording graphs."""
    total = sum_loss = sum_metric = 0.0
    with no_grad(), test_mode():
        for x, t in loader:
            y = model(x)
            n = len(x)
            sum_loss += float(loss_fn(y, t).data) * n
            if metric is not None:
                sum_metric += float(metric(y, t).data) * n
            total += n
    if total == 0:
        raise ValueError('evaluate: the loader gave no batches')
    result = {'loss': sum_loss / total}
    if metric is not None:
        result['accuracy'] = sum_metric / total
    return result


def train_epoch(model: Any, optimizer: Any, loader: Iterable,
                loss_fn: Callable = F.softmax_cross_entropy,
                metric: Callable | None = F.accuracy, progress: Progress | None = None,
                ) -> dict[str, float]:
    """One pass over ``loader``: forward, backward, ``optimizer.update()`` per batch.
    Returns the mean training loss (and metric) and the samples per second."""
    total = sum_loss = sum_metric = 0.0
    start = time.perf_counter()
    for x, t in loader:
        y = model(x)
        loss = loss_fn(y, t)
        model.cleargrads()
        loss.backward()
        optimizer.update()
        n = len(x)
        total += n
        sum_loss += float(loss.data) * n
        postfix = {'loss': f'{sum_loss / total:.4f}'}
        if metric is not None:
            sum_metric += float(metric(y, t).data) * n
            postfix['acc'] = f'{sum_metric / total:.4f}'
        if progress is not None:  # the bar itself shows the rate in samples/s
            progress.update(n, **postfix)
    elapsed = time.perf_counter() - start
    result = {'loss': sum_loss / max(total, 1), 'samples_per_second': total / max(elapsed, 1e-9)}
    if metric is not None:
        result['accuracy'] = sum_metric / max(total, 1)
    return result


def fit(model: Any, optimizer: Any, train_loader: Any, epochs: int, *,
        loss_fn: Callable = F.softmax_cross_entropy, metric: Callable | None = F.accuracy,
        test_loader: Any = None, out: str | None = None, resume: bool = False,
        quiet: bool = False, log: Callable[[str], None] = print, log_every: int = 1,
        ) -> History:
    """Train for ``epochs`` epochs, with a progress bar per epoch and a line of metrics
    after it; returns the History (``train_loss``, ``train_accuracy``, ``test_loss``, ...).

    With ``out`` (a folder), a checkpoint (weights, optimizer state, NumPy's random state)
    and the history are written there every ``log_every`` epochs and after the last; with
    ``resume=True`` training continues after the last saved epoch, exactly as if it had
    never stopped. ``log_every``: print (and save) every that many epochs.
    """
    if log_every < 1:
        raise ValueError(f'fit: log_every must be >= 1, got {log_every}')
    if epochs < 0:
        raise ValueError(f'fit: epochs must be >= 0, got {epochs}')
    start_epoch, history = _start('fit', model, optimizer, out, resume, quiet, log)
    for epoch in range(start_epoch + 1, epochs + 1):
        # A bar per epoch, unless epochs are many and short (then only the logged ones).
        shown = log_every == 1 or epoch % log_every == 0
        progress = Progress(len(train_loader.dataset), f'epoch {epoch}/{epochs}',
                            quiet or not shown)
        try:
            train = train_epoch(model, optimizer, train_loader, loss_fn, metric, progress)
        finally:
            progress.close()
        record = {'epoch': epoch, 'train_loss': train['loss']}
        if 'accuracy' in train:
            record['train_accuracy'] = train['accuracy']
        record['samples_per_second'] = train['samples_per_second']
        if test_loader is not None:
            test = evaluate(model, test_loader, loss_fn, metric)
            record.update({f'test_{name}': value for name, value in test.items()})
        _end_epoch(record, history, epochs, log_every, model, optimizer, out, quiet, log)
    return history


def _start(who: str, model: Any, optimizer: Any, out: str | None, resume: bool, quiet: bool,
           log: Callable[[str], None]) -> tuple[int, History]:
    """(0, a new History), or, resuming, the last saved epoch and its history."""
    if not resume:
        return 0, History()
    if out is None:
        raise ValueError(f'{who}: resume=True needs the out folder of the earlier run')
    asked = optimizer.hyperparams()
    start_epoch, history = load_state(out, model, optimizer)
    if not quiet:
        log(f'resumed after epoch {start_epoch} from {checkpoint_path(out)}')
        # The checkpoint's hyper-parameters win (an exact resume), said aloud when they
        # differ from the optimizer's (e.g. another --lr on the command line).
        for name, value in optimizer.hyperparams().items():
            if name in asked and asked[name] != value:
                log(f'{name} = {value:g} from the checkpoint, not {asked[name]:g} (a resume '
                    'continues the saved run; start a new one to change it)')
    return start_epoch, history


def _end_epoch(record: dict, history: History, epochs: int, log_every: int, model: Any,
               optimizer: Any, out: str | None, quiet: bool, log: Callable[[str], None]) -> None:
    """Record the epoch; every ``log_every`` epochs and at the last, print and save."""
    history.append(**record)
    epoch = int(record['epoch'])
    if epoch % log_every == 0 or epoch == epochs:
        if not quiet:
            log(format_record(record))
        if out is not None:
            save_state(out, model, optimizer, epoch, history)


def fit_bptt(model: Any, optimizer: Any, loader: Any, epochs: int, bptt_length: int, *,
             loss_fn: Callable = F.mean_squared_error, out: str | None = None,
             resume: bool = False, quiet: bool = False, log: Callable[[str], None] = print,
             log_every: int = 1, on_update: Callable[[int], None] | None = None) -> History:
    """Train a recurrent model by truncated backpropagation through time (the book's
    steps 59-60): ``loader`` yields one time step ``(x, t)`` at a time, in order (e.g. a
    ``SeqDataLoader``); the loss is summed over ``bptt_length`` steps, then backward,
    ``unchain_backward`` (cut the graph so the next chunk starts fresh) and an update.
    ``model.reset_state()`` starts every epoch. History: ``train_loss`` = the summed loss
    divided by the steps of the epoch, as the book prints it. ``on_update(n)`` is called
    after the n-th update (e.g. to print a sample); ``out``/``resume`` as for ``fit``.
    """
    if bptt_length < 1:
        raise ValueError(f'fit_bptt: bptt_length must be >= 1, got {bptt_length}')
    start_epoch, history = _start('fit_bptt', model, optimizer, out, resume, quiet, log)
    updates = 0
    steps_per_epoch = len(loader)
    for epoch in range(start_epoch + 1, epochs + 1):
        shown = log_every == 1 or epoch % log_every == 0
        progress = Progress(steps_per_epoch, f'epoch {epoch}/{epochs}', quiet or not shown)
        model.reset_state()
        loss, total, count = 0, 0.0, 0
        start = time.perf_counter()
        try:
            for x, t in loader:
                loss = loss + loss_fn(model(x), t)
                count += 1
                if count % bptt_length == 0 or count == steps_per_epoch:
                    model.cleargrads()
                    loss.backward()
                    loss.unchain_backward()
                    optimizer.update()
                    total += float(loss.data)
                    loss = 0
                    updates += 1
                    progress.update(bptt_length, loss=f'{total / count:.4f}')
                    if on_update is not None:
                        on_update(updates)
        finally:
            progress.close()
        if count == 0:
            raise ValueError('fit_bptt: the loader gave no time steps')
        elapsed = time.perf_counter() - start
        record = {'epoch': epoch, 'train_loss': total / count,
                  'samples_per_second': count * len(x) / max(elapsed, 1e-9)}
        _end_epoch(record, history, epochs, log_every, model, optimizer, out, quiet, log)
    return history


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


def checkpoint_path(out: str) -> str:
    """Where ``fit`` keeps the checkpoint of a run writing into ``out``."""
    return os.path.join(out, 'checkpoint.npz')


def save_state(out: str, model: Any, optimizer: Any, epoch: int, history: History) -> None:
    """The checkpoint (with NumPy's random state) and the history of a run, into ``out``."""
    os.makedirs(out, exist_ok=True)
    checkpoints.save(checkpoint_path(out), model, optimizer, random_state=True, epoch=epoch)
    history.save(os.path.join(out, 'history.json'))


def load_state(out: str, model: Any, optimizer: Any) -> tuple[int, History]:
    """Restore what ``save_state`` wrote: returns (last epoch, history)."""
    path = checkpoint_path(out)
    if not os.path.exists(path):
        raise FileNotFoundError(f'no checkpoint to resume from: {path} does not exist')
    extras = checkpoints.load(path, model, optimizer, random_state=True)
    history = History.load(os.path.join(out, 'history.json'))
    epoch = int(extras.get('epoch', len(history)))
    history.records = [r for r in history.records if r.get('epoch', 0) <= epoch]
    return epoch, history


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


def plot_history(history: History, path: str) -> str:
    """Loss and accuracy curves (train and test) against the epoch, side by side."""
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
    fig.tight_layout()
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
                           step: float = 0.01) -> str:
    """The classes ``model`` predicts over the plane around the 2-D points x, and the
    points coloured by their labels t."""
    x_min, y_min = x.min(axis=0) - 0.1
    x_max, y_max = x.max(axis=0) + 0.1
    xx, yy = np.meshgrid(np.arange(x_min, x_max, step), np.arange(y_min, y_max, step))
    grid = np.c_[xx.ravel(), yy.ravel()].astype(x.dtype)
    xp = model_array_module(model)  # the grid goes where the model is (a GPU, maybe)
    with no_grad(), test_mode():
        scores = cuda.as_numpy(model(xp.asarray(grid)).data)
    predicted = np.argmax(scores, axis=1).reshape(xx.shape)
    fig = _figure(5, 5)
    ax = fig.add_subplot(1, 1, 1)
    ax.contourf(xx, yy, predicted, alpha=0.3)
    for label, marker in zip(np.unique(t), 'ox^sd*'):
        points = x[t == label]
        ax.scatter(points[:, 0], points[:, 1], marker=marker, s=25, label=str(label))
    ax.legend()
    fig.savefig(path)
    return path


def plot_curves(x: np.ndarray, curves: dict[str, np.ndarray], path: str,
                points: tuple[np.ndarray, np.ndarray] | None = None) -> str:
    """Lines y(x) by name (e.g. prediction and target), over optional scattered points."""
    fig = _figure(6, 4)
    ax = fig.add_subplot(1, 1, 1)
    if points is not None:
        ax.scatter(points[0].ravel(), points[1].ravel(), s=8, alpha=0.5, label='data')
    for name, y in curves.items():
        ax.plot(np.ravel(x), np.ravel(y), label=name)
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.savefig(path)
    return path


def batches(x: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive slices of x of ``batch_size`` rows (the last may be shorter)."""
    for i in range(0, len(x), batch_size):
        yield x[i:i + batch_size]
