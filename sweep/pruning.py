"""The Keras callback through which Optuna's pruner can stop a full-stage run."""

import math

import optuna

from pipelines.train.callbacks import StoppingCallback


class OptunaPruningCallback(StoppingCallback):
    """Report `monitor` to the trial each epoch; stop training when the pruner says so."""

    def __init__(self, trial: optuna.Trial, *, monitor: str = "val_auc"):
        super().__init__()
        self.trial = trial
        self.monitor = monitor

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(value):
            return
        self.trial.report(float(value), step=epoch)
        if self.trial.should_prune():
            self.stop(
                f"pruned at epoch {epoch + 1} ({self.monitor} {value:.4f} below the "
                "pruner's threshold)"
            )
