"""Keras callbacks the stages share: best-epoch checkpoint, learning check, lr schedule, stops."""

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import keras

from pipelines.disk import written_whole
from pipelines.stopping import mark_epoch, raise_if_stop_requested


def _saved_bytes(model: keras.Model) -> int:
    """About what model.save writes: the weights and the optimizer's state, 4 bytes a value."""
    optimizer = getattr(model, "optimizer", None)
    variables = [*model.variables, *(optimizer.variables if optimizer else [])]
    return sum(4 * math.prod(variable.shape) for variable in variables)


class BestModelCheckpoint(keras.callbacks.Callback):
    """Save the best epoch by `monitor` to a `.keras` file and restore its weights at the end.

    The file is written beside its final name and renamed into place, so a process killed
    mid-save never leaves a half-written best checkpoint. `best_logs` keeps every metric of
    the best epoch (its val AUC, say, when the study optimizes val accuracy).
    """

    def __init__(self, path: Path, *, monitor: str = "val_auc", mode: str = "max"):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.mode = mode
        self.best_value = -math.inf if mode == "max" else math.inf
        self.best_epoch: int | None = None
        self.best_logs: dict[str, float] = {}
        self._best_weights = None

    def _improves(self, value: float) -> bool:
        return value > self.best_value if self.mode == "max" else value < self.best_value

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(value) or not self._improves(value):
            return
        self.best_value, self.best_epoch = float(value), epoch
        self.best_logs = {name: float(logged) for name, logged in logs.items()}
        self._best_weights = self.model.get_weights()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.stem}.partial.keras")
        # A full disk or a stop mid-save leaves the previous best checkpoint as it was.
        with written_whole(
            self.path, partial, what="the checkpoint", needed_bytes=_saved_bytes(self.model)
        ):
            self.model.save(partial)
            os.replace(partial, self.path)

    def on_train_end(self, logs=None):
        if self._best_weights is not None:
            self.model.set_weights(self._best_weights)


class LearningCheck(keras.callbacks.Callback):
    """The overfit gate: does the model learn a small subset at all? Stops once it does.

    It has learned when its accuracy on the subset (inference mode, logged as `val_accuracy`)
    reaches chance plus `accuracy_share` of the way to 1, or when its loss on the subset
    (`val_loss`) falls by `loss_drop` below its first epoch's, and below the loss of
    guessing (ln of the class count), so a diverging first epoch does not count as a start.
    Either criterion may be None (off); a slow learner passes, a stuck or diverging one not.
    """

    def __init__(
        self, *, chance: float, num_classes: int, accuracy_share: float | None, loss_drop=None
    ):
        super().__init__()
        self.chance = chance
        self.guess_loss = math.log(max(num_classes, 2))
        self.target_accuracy = (
            None if accuracy_share is None else chance + accuracy_share * (1 - chance)
        )
        self.loss_drop = loss_drop
        self.best_accuracy = 0.0
        self.first_loss: float | None = None
        self.last_loss = math.nan
        self.epochs_run = 0
        self.learned = False

    @property
    def target_loss(self) -> float | None:
        if self.loss_drop is None or self.first_loss is None:
            return None
        return (1 - self.loss_drop) * min(self.first_loss, self.guess_loss)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        accuracy = float(logs.get("val_accuracy", 0.0))
        self.last_loss = float(logs.get("val_loss", math.nan))
        if self.first_loss is None and math.isfinite(self.last_loss):
            self.first_loss = self.last_loss
        self.best_accuracy = max(self.best_accuracy, accuracy)
        self.epochs_run = epoch + 1
        target_loss = self.target_loss
        self.learned = (self.target_accuracy is not None and accuracy >= self.target_accuracy) or (
            target_loss is not None and self.last_loss <= target_loss
        )
        if self.learned:
            self.model.stop_training = True

    def verdict(self, images: int) -> str:
        """What the check saw, with the figures: for the overfit stage's reason line."""
        first = "nan" if self.first_loss is None else f"{self.first_loss:.2f}"
        needed = []
        if self.target_accuracy is not None:
            needed.append(f"accuracy {self.target_accuracy:.2f}")
        if self.target_loss is not None:
            needed.append(f"loss {self.target_loss:.2f}")
        return (
            f"accuracy {self.best_accuracy:.2f} (chance {self.chance:.2f}) and loss {first} -> "
            f"{self.last_loss:.2f} after {self.epochs_run} epochs on {images} images "
            f"(needed {' or '.join(needed) or 'nothing'})"
        )


def learning_rate_callback(schedule: Callable[[int], float]) -> keras.callbacks.Callback:
    """Set the optimizer's learning rate at the start of each epoch (logged as `learning_rate`)."""
    return keras.callbacks.LearningRateScheduler(lambda epoch, current: schedule(epoch))


class StoppingCallback(keras.callbacks.Callback):
    """A callback that may stop training early and says why in `stop_reason`.

    Whether that stop also ends the trial (pruned) is the class's `ends_trial`: a time
    budget only ends training, and the best epoch so far is the trial's result.
    """

    stop_reason: str | None = None
    ends_trial: bool = True

    def stop(self, reason: str) -> None:
        self.stop_reason = reason
        self.model.stop_training = True


class StopAtDeadline(StoppingCallback):
    """End training at the first epoch end past `deadline` (a `time.monotonic()` value)."""

    ends_trial = False

    def __init__(self, deadline: float):
        super().__init__()
        self.deadline = deadline

    def on_epoch_end(self, epoch, logs=None):
        if time.monotonic() >= self.deadline:
            self.stop(f"time budget reached at epoch {epoch + 1}")


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


class StopAtSignal(keras.callbacks.Callback):
    """At each epoch end, after the callbacks before it (checkpoint, metrics) have run: stop
    training with a Stopped exception if SIGTERM or SIGINT asked for it (pipelines/stopping.py).
    """

    def on_epoch_begin(self, epoch, logs=None):
        mark_epoch(epoch)

    def on_epoch_end(self, epoch, logs=None):
        mark_epoch(None)
        raise_if_stop_requested(f" at epoch {epoch + 1}")

    def on_train_end(self, logs=None):
        mark_epoch(None)
