"""Keras callbacks the stages share: best-epoch checkpoint, accuracy target, lr schedule."""

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import keras


class BestModelCheckpoint(keras.callbacks.Callback):
    """Save the best epoch by `monitor` to a `.keras` file and restore its weights at the end.

    The file is written beside its final name and renamed into place, so a process killed
    mid-save never leaves a half-written best checkpoint.
    """

    def __init__(self, path: Path, *, monitor: str = "val_auc"):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.best_value = -math.inf
        self.best_epoch: int | None = None
        self._best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(value) or value <= self.best_value:
            return
        self.best_value, self.best_epoch = float(value), epoch
        self._best_weights = self.model.get_weights()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.stem}.partial.keras")
        self.model.save(partial)
        os.replace(partial, self.path)

    def on_train_end(self, logs=None):
        if self._best_weights is not None:
            self.model.set_weights(self._best_weights)


class StopAtAccuracy(keras.callbacks.Callback):
    """Stop as soon as `monitor` reaches the target; remembers the best value seen."""

    def __init__(self, target: float, *, monitor: str = "accuracy"):
        super().__init__()
        self.target = target
        self.monitor = monitor
        self.best_accuracy = 0.0
        self.epochs_run = 0

    def on_epoch_end(self, epoch, logs=None):
        accuracy = float((logs or {}).get(self.monitor, 0.0))
        self.best_accuracy = max(self.best_accuracy, accuracy)
        self.epochs_run = epoch + 1
        if accuracy >= self.target:
            self.model.stop_training = True


def learning_rate_callback(schedule: Callable[[int], float]) -> keras.callbacks.Callback:
    """Set the optimizer's learning rate at the start of each epoch (logged as `learning_rate`)."""
    return keras.callbacks.LearningRateScheduler(lambda epoch, current: schedule(epoch))


class StoppingCallback(keras.callbacks.Callback):
    """A callback that may stop training early and says why in `stop_reason`.

    A stop with a reason ends the trial (pruned); `ended_training`, as a time budget sets it,
    only ends training: the best epoch so far is the trial's result.
    """

    stop_reason: str | None = None
    # Training ended without ending the trial (a time budget).
    ended_training: bool = False

    @property
    def stopped(self) -> bool:
        return self.stop_reason is not None or self.ended_training

    def stop(self, reason: str) -> None:
        self.stop_reason = reason
        self.model.stop_training = True


class StopAtDeadline(StoppingCallback):
    """End training at the first epoch end past `deadline` (a `time.monotonic()` value)."""

    def __init__(self, deadline: float):
        super().__init__()
        self.deadline = deadline

    def on_epoch_end(self, epoch, logs=None):
        if time.monotonic() >= self.deadline:
            self.ended_training = True
            self.model.stop_training = True


class FiniteLossGuard(StoppingCallback, keras.callbacks.TerminateOnNaN):
    """Keras' TerminateOnNaN (stop at the first batch whose loss is NaN or infinite), with
    the epoch as the stop reason and without its console line."""

    def __init__(self):
        super().__init__(raise_error=True)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        try:
            super().on_batch_end(batch, logs)
        except RuntimeError:  # raised in place of the print; the stop stays graceful
            self.stop(f"nan loss at epoch {self.epoch + 1}")
