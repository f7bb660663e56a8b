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
checkpoints, and ``load_state_dict(state)`` puts it back.

>>> class PrintLoss(Callback):
...     def on_epoch_end(self, epoch, record):
...         print(epoch, round(record['train_loss'], 2))
"""
from __future__ import annotations

from typing import Any


class Callback:
    """The callback protocol of ``training.fit``; every method does nothing here."""

    stop_training: bool = False

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
