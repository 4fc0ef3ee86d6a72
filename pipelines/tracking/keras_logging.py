"""Keras ↔ MLflow: per-epoch metrics while fitting, and the trained model as an MLflow model."""

import contextlib
import math
import os
import time
from importlib.metadata import version

import keras
import mlflow
import mlflow.keras
import numpy as np
from mlflow.models import infer_signature

# Registers TemperatureScaling (a calibrated ensemble's last layer) so such models load.
import pipelines.calibration.temperature  # noqa: F401
from pipelines.tracking.client import Tracker

# Keras' log keys → the metric names runs carry (the schedule logs `learning_rate`).
METRIC_NAMES = {"learning_rate": "lr"}
SUMMARY_WIDTH = 130


def package_requirements() -> list[str]:
    """Pinned requirements of a logged Keras model, given so MLflow does not infer them (~6 s)."""
    return [f"{name}=={version(name)}" for name in ("keras", "tensorflow", "numpy", "pillow")]


class EpochMetricsLogger(keras.callbacks.Callback):
    """Log every epoch's metrics (loss, accuracy, auc, val_*, lr) to one run.

    Epochs are sent together at most every `flush_seconds`: a full-stage epoch of seconds
    still shows up live in the UI, while the overfit stage's 30 sub-second epochs cost one
    or two store writes instead of 30.
    """

    def __init__(self, tracker: Tracker, run_id: str, *, flush_seconds: float = 2.0):
        super().__init__()
        self.tracker = tracker
        self.run_id = run_id
        self.flush_seconds = flush_seconds
        self._pending: list[tuple[int, dict[str, float]]] = []
        self._last_flush = time.monotonic()

    def _flush(self) -> None:
        if self._pending:
            self.tracker.log_metric_steps(self.run_id, self._pending)
            self._pending = []
        self._last_flush = time.monotonic()

    def on_train_end(self, logs=None):
        self._flush()

    def on_epoch_end(self, epoch, logs=None):
        metrics = {
            METRIC_NAMES.get(key, key): float(value)
            for key, value in (logs or {}).items()
            if np.ndim(value) == 0
        }
        # MLflow stores NaN but not every backend takes inf; a diverged loss stays visible as NaN.
        metrics = {
            key: value if math.isfinite(value) else math.nan for key, value in metrics.items()
        }
        self._pending.append((epoch, metrics))
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self._flush()


def log_keras_model(tracker: Tracker, run_id: str, model: keras.Model, sample_images) -> str:
    """Log `model` with a signature into `run_id`; returns the model's URI (models:/<id>).

    Its class names are the run's (or its trial run's) `class_names.json` artifact.
    """
    signature = infer_signature(sample_images, np.asarray(model(sample_images, training=False)))
    # log_model works on the fluent active run: attach to ours, then leave its status to us.
    with mlflow.start_run(run_id=run_id, nested=True):
        info = mlflow.keras.log_model(
            model,
            name="model",
            signature=signature,
            pip_requirements=package_requirements(),
        )
    tracker.resume_run(run_id)
    return info.model_uri


def load_keras_model(model_uri: str) -> keras.Model:
    """A logged or registered Keras model (runs:/, models:/<id>, models:/<name>@<alias>)."""
    return mlflow.keras.load_model(model_uri)


@contextlib.contextmanager
def _terminal_columns(columns: int):
    # Keras draws its summary with rich, which crops the table to the terminal's width (80
    # columns without a terminal, dropping the trainable column) read from $COLUMNS.
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(columns)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def model_summary(model: keras.Model) -> tuple[str, dict[str, int]]:
    """Keras' summary (nested backbones expanded, trainable flags shown) and the param counts."""
    lines = []
    with _terminal_columns(SUMMARY_WIDTH):
        model.summary(
            line_length=SUMMARY_WIDTH,
            expand_nested=True,
            show_trainable=True,
            print_fn=lambda line, line_break=False: lines.append(line),
        )
    total = int(model.count_params())
    trainable = int(sum(np.prod(weight.shape) for weight in model.trainable_weights))
    counts = {
        "total_params": total,
        "trainable_params": trainable,
        "non_trainable_params": total - trainable,
    }
    return "\n".join(lines), counts


def log_model_summary(tracker: Tracker, run_id: str, model: keras.Model) -> None:
    """The summary as `model_summary.txt` and the parameter counts as params of `run_id`."""
    text, counts = model_summary(model)
    tracker.log_text(run_id, text, "model_summary.txt")
    tracker.log_params(run_id, counts)
