"""The Keras callback through which Optuna's pruner can stop a full-stage run."""

import math

import optuna

from pipelines.train.callbacks import StoppingCallback


class OptunaPruningCallback(StoppingCallback):
    """Report `monitor` to the trial each epoch (the pruner's resource is epochs); stop
    training when the pruner says so.

    The last epoch is never pruned: not `last_epoch` (the full stage's max_epochs - 1), nor an
    epoch at which another callback (early stopping, the time budget) already ended training,
    so a trial that trained to the end keeps its model.
    """

    def __init__(self, trial: optuna.Trial, *, monitor: str = "val_auc", last_epoch: int):
        super().__init__()
        self.trial = trial
        self.monitor = monitor
        self.last_epoch = last_epoch

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(value):
            return
        self.trial.report(float(value), step=epoch)
        if epoch >= self.last_epoch or self.model.stop_training:
            return
        if self.trial.should_prune():
            self.stop(f"pruned at epoch {epoch + 1} ({self.monitor} {value:.4f}, by the pruner)")
