"""Learning-rate schedules: change an optimizer's learning rate as training goes on.

Each schedule is a ``zerograd.callbacks.Callback`` for ``training.fit`` and can also be
driven by hand, as in PyTorch::

    optimizer = MomentumSGD(lr=0.1).setup(model)
    scheduler = StepLR(optimizer, step_size=30, gamma=0.1)   # lr 0.1, then 0.01 at 30, ...
    for epoch in range(100):
        ...                       # train one epoch (optimizer.update() per batch)
        scheduler.step()          # or: fit(..., callbacks=[scheduler]) does it

The learning rate is the optimizer's ``lr`` (SGD, MomentumSGD, RMSprop, AdaGrad) or
``alpha`` (Adam, AdamW: the book's name of the base learning rate); AdaDelta has none and
is refused. A schedule takes the optimizer's learning rate when it is made as ``base_lr``
and sets it at once to the value of step 0 (which is ``base_lr`` except during a warm-up).
After ``n`` calls of ``step()`` the learning rate is the value of step ``n`` (a closed
form of ``base_lr`` and ``n``, below), the value PyTorch's scheduler of the same name
gives after ``n`` steps. One schedule drives an optimizer: a second one would overwrite
the first's values (write the product as a ``LambdaLR``).

In ``fit``, ``interval='epoch'`` (the default) steps once per epoch, in ``on_epoch_end``;
``interval='iteration'`` steps after each update, in ``on_batch_end``. Either way
``on_epoch_end`` adds ``record['lr']``, the learning rate the epoch's last update used,
so the History and the loggers see it. ``ReduceLROnPlateau`` steps per epoch on a
monitored entry of the record (``'test_loss'``, say).

``state_dict()`` returns JSON values only (the step count, base_lr, the current learning
rate; ReduceLROnPlateau's best value and counters) and ``load_state_dict`` puts them back
and sets the optimizer's learning rate, so a restored schedule continues exactly. The
schedule's own settings (step_size, gamma, LambdaLR's function, ...) are not saved, as in
PyTorch: build the same schedule, then load its state.

>>> from zerograd.layers import Linear
>>> from zerograd.optimizers import SGD
>>> optimizer = SGD(lr=0.1).setup(Linear(1, in_size=2))
>>> scheduler = StepLR(optimizer, step_size=2, gamma=0.5)
>>> for _ in range(4):
...     scheduler.step()
>>> scheduler.get_last_lr(), optimizer.lr
([0.025], 0.025)
"""
from __future__ import annotations

import bisect
import math
from typing import Any, Callable, Iterable

import numpy as np

from zerograd.callbacks import Callback

INTERVALS = ('epoch', 'iteration')


# =============================================================================
# Checks of the arguments (errors name the schedule, the argument and the value)
# =============================================================================
def _real(who: str, name: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or \
            not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f'{who}: {name} must be a real number, got {value!r} '
                        f'({type(value).__name__})')
    return float(value)  # a Python float: JSON-able, and never promotes float32 arrays


def _at_least(who: str, name: str, value: Any, low: float) -> float:
    value = _real(who, name, value)
    if not value >= low or math.isinf(value):  # `not >=` also refuses NaN
        raise ValueError(f'{who}: {name} must be a finite number >= {low:g}, got {value!r}')
    return value


def _integer(who: str, name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not hasattr(value, '__index__'):
        raise TypeError(f'{who}: {name} must be an integer, got {value!r} '
                        f'({type(value).__name__})')
    value = int(value)
    if value < low:
        raise ValueError(f'{who}: {name} must be an integer >= {low}, got {value}')
    return value


def _choice(who: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f'{who}: {name} must be one of {choices}, got {value!r}')
    return value


def _lr_name(who: str, optimizer: Any) -> str:
    """The name of the optimizer's learning rate ('lr' or 'alpha'), or a clear error."""
    if not (callable(getattr(optimizer, 'update', None))
            and callable(getattr(optimizer, 'hyperparams', None))):
        raise TypeError(f'{who}: optimizer must be a zerograd Optimizer, got '
                        f'{type(optimizer).__name__}')
    name = getattr(optimizer, '_lr_name', 'lr')
    if name is None:
        raise TypeError(f'{who}: {type(optimizer).__name__} has no learning rate (its '
                        'steps come from its other hyper-parameters), so no schedule can '
                        'change it; use an optimizer with one (SGD, MomentumSGD, Adam, '
                        'AdamW, RMSprop, AdaGrad)')
    if not isinstance(getattr(optimizer, name, None), (int, float)):
        raise TypeError(f'{who}: {type(optimizer).__name__} has no learning rate {name!r}')
    return name


def _unwrapped(optimizer: Any) -> Any:
    # distributed.DistributedOptimizer wraps the optimizer that holds the learning rate.
    return getattr(optimizer, 'optimizer', optimizer)


# =============================================================================
# The base class
# =============================================================================
class LRScheduler(Callback):
    """Base class of the schedules: ``lr_at(n)`` is the learning rate after ``n`` steps.

    ``optimizer``: a set-up or not yet set-up zerograd optimizer with a learning rate;
    ``interval``: ``'epoch'`` or ``'iteration'``, when ``fit`` steps the schedule.
    Attributes: ``base_lr`` (the optimizer's learning rate when the schedule was made),
    ``last_epoch`` (PyTorch's name of the number of steps taken, whatever the interval).
    """
    _state_keys: tuple[str, ...] = ()  # a subclass's extra entries of state_dict()

    def __init__(self, optimizer: Any, interval: str = 'epoch') -> None:
        who = type(self).__name__
        self._lr_name = _lr_name(who, optimizer)
        self.optimizer = optimizer
        self.interval = _choice(who, 'interval', interval, INTERVALS)
        self.base_lr = float(getattr(optimizer, self._lr_name))
        self.last_epoch = 0
        self._lr_in_epoch: float | None = None  # per iteration: the lr of the last update
        self._set_lr(self._first_lr())

    def lr_at(self, step: int) -> float:
        """The learning rate after ``step`` steps (step 0: when the schedule is made)."""
        raise NotImplementedError(f'{type(self).__name__}.lr_at is not written')

    def _first_lr(self) -> float:
        return self.lr_at(0)

    def _set_lr(self, lr: float) -> None:
        try:
            setattr(self.optimizer, self._lr_name, lr)
        except (TypeError, ValueError) as error:
            raise type(error)(f'{type(self).__name__}: step {self.last_epoch} gives the '
                              f'learning rate {lr!r}, which the optimizer refuses: '
                              f'{error}') from error
        self._last_lr = float(getattr(self.optimizer, self._lr_name))

    def step(self) -> None:
        """Take one step: set the optimizer's learning rate to ``lr_at(last_epoch + 1)``."""
        self.last_epoch += 1
        self._set_lr(self.lr_at(self.last_epoch))

    def get_last_lr(self) -> list[float]:
        """The learning rate the schedule set last, as PyTorch gives it: a list of one
        float per parameter group (zerograd's optimizers have one group)."""
        return [self._last_lr]

    # -- the callback protocol ------------------------------------------------------
    def on_train_begin(self, model: Any, optimizer: Any) -> None:
        """Check that fit trains with the optimizer this schedule drives."""
        if _unwrapped(optimizer) is not _unwrapped(self.optimizer):
            raise ValueError(f'{type(self).__name__}: fit trains with another optimizer '
                             f'({optimizer!r}) than the one this schedule drives '
                             f'({self.optimizer!r}); make the schedule on fit\'s optimizer')

    def on_batch_end(self, iteration: int, loss: float) -> None:
        """Per iteration: step after each update."""
        if self.interval == 'iteration':
            self._lr_in_epoch = self._last_lr
            self.step()

    def on_epoch_end(self, epoch: int, record: dict[str, float]) -> None:
        """Add ``record['lr']`` (the epoch's last update's learning rate); per epoch: step."""
        if self.interval == 'iteration' and self._lr_in_epoch is not None:
            record['lr'] = self._lr_in_epoch
        else:
            record['lr'] = self._last_lr
        if self.interval == 'epoch':
            self.step()

    # -- state ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The progress of the schedule, JSON values only: ``{'class', 'last_epoch',
        'base_lr', 'last_lr', 'lr_in_epoch', ...}`` (and a subclass's own counters)."""
        state = {'class': type(self).__name__, 'last_epoch': self.last_epoch,
                 'base_lr': self.base_lr, 'last_lr': self._last_lr,
                 'lr_in_epoch': self._lr_in_epoch}
        for key in self._state_keys:
            state[key] = getattr(self, key)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict()`` and set the optimizer's learning rate to its
        ``last_lr``. Everything is checked first; on a difference nothing changes."""
        who = f'{type(self).__name__}.load_state_dict'
        if not isinstance(state, dict):
            raise TypeError(f'{who}: state must be a dict, got {type(state).__name__}')
        expected = {'class', 'last_epoch', 'base_lr', 'last_lr', 'lr_in_epoch',
                    *self._state_keys}
        if set(state) != expected:
            raise ValueError(f'{who}: the state has the entries {sorted(state)}, a '
                             f'{type(self).__name__} has {sorted(expected)}')
        if state['class'] != type(self).__name__:
            raise ValueError(f'{who}: the state is that of a {state["class"]}, not of a '
                             f'{type(self).__name__}')
        last_epoch = _integer(who, 'last_epoch', state['last_epoch'], 0)
        base_lr = _at_least(who, 'base_lr', state['base_lr'], 0)
        last_lr = _at_least(who, 'last_lr', state['last_lr'], 0)
        lr_in_epoch = state['lr_in_epoch']
        if lr_in_epoch is not None:
            lr_in_epoch = _at_least(who, 'lr_in_epoch', lr_in_epoch, 0)
        own = self._check_own_state(who, state)
        self.last_epoch, self.base_lr, self._lr_in_epoch = last_epoch, base_lr, lr_in_epoch
        for key, value in own.items():
            setattr(self, key, value)
        self._set_lr(last_lr)

    def _check_own_state(self, who: str, state: dict[str, Any]) -> dict[str, Any]:
        """A subclass's entries of ``state``, checked: {attribute: value}."""
        return {}

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(base_lr={self.base_lr!r}, '
                f'last_epoch={self.last_epoch}, lr={self._last_lr!r})')


# =============================================================================
# The schedules
# =============================================================================
class LambdaLR(LRScheduler):
    """``lr = base_lr * lr_lambda(n)`` after n steps (PyTorch's LambdaLR).

    ``lr_lambda(n)`` takes the step count (an int >= 0) and returns a factor >= 0. The
    function is not in ``state_dict()`` (as in PyTorch): give the same one when resuming.

    >>> from zerograd.layers import Linear
    >>> from zerograd.optimizers import Adam
    >>> optimizer = Adam(lr=0.01)
    >>> scheduler = LambdaLR(optimizer, lambda n: min(1.0, (n + 1) / 5))  # a warm-up
    >>> optimizer.alpha
    0.002
    """

    def __init__(self, optimizer: Any, lr_lambda: Callable[[int], float],
                 interval: str = 'epoch') -> None:
        if not callable(lr_lambda):
            raise TypeError(f'LambdaLR: lr_lambda must be callable (step -> factor), got '
                            f'{lr_lambda!r}')
        self.lr_lambda = lr_lambda
        super().__init__(optimizer, interval)

    def lr_at(self, step: int) -> float:
        """``base_lr * lr_lambda(step)``."""
        factor = _real('LambdaLR', f'lr_lambda({step})', self.lr_lambda(step))
        return self.base_lr * factor


class StepLR(LRScheduler):
    """``lr = base_lr * gamma ** (n // step_size)`` after n steps (PyTorch's StepLR):
    multiplied by gamma every ``step_size`` steps. step_size >= 1, gamma >= 0."""

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1,
                 interval: str = 'epoch') -> None:
        self.step_size = _integer('StepLR', 'step_size', step_size, 1)
        self.gamma = _at_least('StepLR', 'gamma', gamma, 0)
        super().__init__(optimizer, interval)

    def lr_at(self, step: int) -> float:
        """``base_lr * gamma ** (step // step_size)``."""
        return self.base_lr * self.gamma ** (step // self.step_size)


class MultiStepLR(LRScheduler):
    """``lr = base_lr * gamma ** k`` where k counts the milestones <= n (PyTorch's
    MultiStepLR): multiplied by gamma at each milestone (a milestone given twice counts
    twice, as in PyTorch). milestones: integers >= 1; gamma >= 0."""

    def __init__(self, optimizer: Any, milestones: Iterable[int], gamma: float = 0.1,
                 interval: str = 'epoch') -> None:
        if not isinstance(milestones, Iterable) or isinstance(milestones, str):
            raise TypeError(f'MultiStepLR: milestones must be a list of integers, got '
                            f'{milestones!r}')
        self.milestones = sorted(_integer('MultiStepLR', 'a milestone', m, 1)
                                 for m in milestones)
        self.gamma = _at_least('MultiStepLR', 'gamma', gamma, 0)
        super().__init__(optimizer, interval)

    def lr_at(self, step: int) -> float:
        """``base_lr * gamma ** (number of milestones <= step)``."""
        return self.base_lr * self.gamma ** bisect.bisect_right(self.milestones, step)


class ExponentialLR(LRScheduler):
    """``lr = base_lr * gamma ** n`` after n steps (PyTorch's ExponentialLR). gamma >= 0."""

    def __init__(self, optimizer: Any, gamma: float, interval: str = 'epoch') -> None:
        self.gamma = _at_least('ExponentialLR', 'gamma', gamma, 0)
        super().__init__(optimizer, interval)

    def lr_at(self, step: int) -> float:
        """``base_lr * gamma ** step``."""
        return self.base_lr * self.gamma ** step


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from base_lr to eta_min over T_max steps, after an optional linear
    warm-up of ``warmup_steps`` steps from ``warmup_start_factor * base_lr``. With
    ``W = warmup_steps`` and ``s = warmup_start_factor``, after n steps::

        n < W:   lr = base_lr * (s + (1 - s) * n / W)
        n >= W:  lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * (n - W) / T_max)) / 2

    so lr reaches eta_min at n = W + T_max. Past it the cosine goes on, rising again
    (PyTorch's CosineAnnealingLR does the same): make T_max the length of training.
    Without warm-up this is PyTorch's ``CosineAnnealingLR(T_max, eta_min)``; with it,
    ``SequentialLR([LinearLR(start_factor=s, total_iters=W), CosineAnnealingLR(T_max,
    eta_min)], milestones=[W])``. T_max >= 1, eta_min >= 0, warmup_steps >= 0,
    warmup_start_factor in [0, 1] (default 1/3, LinearLR's).
    """

    def __init__(self, optimizer: Any, T_max: int, eta_min: float = 0.0,
                 warmup_steps: int = 0, warmup_start_factor: float = 1 / 3,
                 interval: str = 'epoch') -> None:
        who = 'CosineAnnealingLR'
        self.T_max = _integer(who, 'T_max', T_max, 1)
        self.eta_min = _at_least(who, 'eta_min', eta_min, 0)
        self.warmup_steps = _integer(who, 'warmup_steps', warmup_steps, 0)
        self.warmup_start_factor = _at_least(who, 'warmup_start_factor',
                                             warmup_start_factor, 0)
        if self.warmup_start_factor > 1:
            raise ValueError(f'{who}: warmup_start_factor must be in [0, 1], got '
                             f'{self.warmup_start_factor!r}')
        super().__init__(optimizer, interval)

    def lr_at(self, step: int) -> float:
        """The formula of the class docstring."""
        warmup, start = self.warmup_steps, self.warmup_start_factor
        if step < warmup:
            return self.base_lr * (start + (1 - start) * step / warmup)
        cosine = (1 + math.cos(math.pi * (step - warmup) / self.T_max)) / 2
        return self.eta_min + (self.base_lr - self.eta_min) * cosine


class ReduceLROnPlateau(LRScheduler):
    """Multiply the learning rate by ``factor`` when a monitored value has not improved
    for more than ``patience`` epochs (PyTorch's ReduceLROnPlateau, same rules).

    ``step(value)`` takes the epoch's value of the metric; in ``fit`` the schedule reads
    ``record[monitor]`` at each epoch's end (``'test_loss'`` by default: fit needs a test
    loader for it; ``'train_loss'`` works without one). A value is an improvement when,
    with ``best`` the best value so far:

    ==========  ===========================  ======================
    mode        threshold_mode='rel'         threshold_mode='abs'
    ==========  ===========================  ======================
    ``'min'``   value < best * (1 - thr)     value < best - thr
    ``'max'``   value > best * (1 + thr)     value > best + thr
    ==========  ===========================  ======================

    After an improvement the count of bad epochs restarts at 0; when it exceeds
    ``patience``, ``lr = max(lr * factor, min_lr)`` (skipped when that changes lr by eps
    or less), then ``cooldown`` epochs follow in which bad epochs are not counted.
    factor in [0, 1), patience >= 0, threshold >= 0, cooldown >= 0, min_lr >= 0, eps >= 0.
    """
    _state_keys = ('best', 'num_bad_epochs', 'cooldown_counter')

    def __init__(self, optimizer: Any, monitor: str = 'test_loss', mode: str = 'min',
                 factor: float = 0.1, patience: int = 10, threshold: float = 1e-4,
                 threshold_mode: str = 'rel', cooldown: int = 0, min_lr: float = 0.0,
                 eps: float = 1e-8) -> None:
        who = 'ReduceLROnPlateau'
        if not isinstance(monitor, str):
            raise TypeError(f'{who}: monitor must be the name of a record entry (a str), '
                            f'got {monitor!r}')
        self.monitor = monitor
        self.mode = _choice(who, 'mode', mode, ('min', 'max'))
        self.factor = _at_least(who, 'factor', factor, 0)
        if self.factor >= 1:
            raise ValueError(f'{who}: factor must be < 1 (the learning rate is multiplied '
                             f'by it), got {self.factor!r}')
        self.patience = _integer(who, 'patience', patience, 0)
        self.threshold = _at_least(who, 'threshold', threshold, 0)
        self.threshold_mode = _choice(who, 'threshold_mode', threshold_mode, ('rel', 'abs'))
        self.cooldown = _integer(who, 'cooldown', cooldown, 0)
        self.min_lr = _at_least(who, 'min_lr', min_lr, 0)
        self.eps = _at_least(who, 'eps', eps, 0)
        self.best: float | None = None  # None: no value seen yet (PyTorch's inf)
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        super().__init__(optimizer, 'epoch')

    def _first_lr(self) -> float:
        return self.base_lr

    def lr_at(self, step: int) -> float:
        """Not a function of the step alone: refused (the value depends on the metric)."""
        raise TypeError('ReduceLROnPlateau: the learning rate depends on the monitored '
                        'values, not on the step count alone')

    def is_better(self, value: float, best: float | None) -> bool:
        """Whether ``value`` improves on ``best`` (see the class's table)."""
        if best is None:
            best = math.inf if self.mode == 'min' else -math.inf
        if self.mode == 'min' and self.threshold_mode == 'rel':
            return value < best * (1 - self.threshold)
        if self.mode == 'min':
            return value < best - self.threshold
        if self.threshold_mode == 'rel':
            return value > best * (self.threshold + 1)
        return value > best + self.threshold

    def step(self, metrics: float) -> None:  # type: ignore[override]
        """One epoch's value of the monitored metric (NaN counts as no improvement)."""
        current = _real('ReduceLROnPlateau.step', 'the metric', metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in the cooldown are not counted
        if self.num_bad_epochs > self.patience:
            old_lr = self._last_lr
            new_lr = max(old_lr * self.factor, self.min_lr)
            if old_lr - new_lr > self.eps:
                self._set_lr(new_lr)
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0

    def on_batch_end(self, iteration: int, loss: float) -> None:
        """Nothing: the schedule steps per epoch, on the monitored value."""

    def on_epoch_end(self, epoch: int, record: dict[str, float]) -> None:
        """Add ``record['lr']``, then ``step(record[monitor])``."""
        if self.monitor not in record:
            raise ValueError(f'ReduceLROnPlateau: the record of epoch {epoch} has no '
                             f'{self.monitor!r} to monitor; it has {sorted(record)} (give '
                             'monitor= one of these, or fit a test loader for test_loss)')
        record['lr'] = self._last_lr
        self.step(record[self.monitor])

    def _check_own_state(self, who: str, state: dict[str, Any]) -> dict[str, Any]:
        best = state['best']
        if best is not None:
            best = _real(who, 'best', best)
            if math.isnan(best):
                raise ValueError(f'{who}: best must be a number or None, got nan')
        return {'best': best,
                'num_bad_epochs': _integer(who, 'num_bad_epochs', state['num_bad_epochs'], 0),
                'cooldown_counter': _integer(who, 'cooldown_counter',
                                             state['cooldown_counter'], 0)}
