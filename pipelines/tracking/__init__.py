"""MLflow tracking: the only part of pipelines/ that imports mlflow."""

from pipelines.tracking.client import RunStatus, Tracker
from pipelines.tracking.connect import connect_tracking
from pipelines.tracking.keras_logging import EpochMetricsLogger

__all__ = ["EpochMetricsLogger", "RunStatus", "Tracker", "connect_tracking"]
