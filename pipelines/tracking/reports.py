"""A full-stage run's report (pipelines/reports) logged to its MLflow run as artifacts."""

import logging
import tempfile
import time
import traceback
from pathlib import Path

import keras
from matplotlib.figure import Figure

from pipelines.calibration.threshold import ARGMAX, ThresholdRule
from pipelines.data.datasets import ImageFolderData
from pipelines.reports import build_stage_report
from pipelines.tracking.client import Tracker

# The per-epoch metrics EpochMetricsLogger logs, read back from the run so the curves are
# exactly what the run's charts show, however many fit() calls produced them.
EPOCH_METRICS = ("loss", "val_loss", "accuracy", "val_accuracy", "auc", "val_auc", "lr")
FIGURE_DPI = 100

logger = logging.getLogger(__name__)


def epoch_series(tracker: Tracker, run_id: str) -> dict[str, list[tuple[int, float]]]:
    """Each per-epoch metric of the run as (epoch, value) pairs in epoch order."""
    return {
        key: sorted((metric.step, metric.value) for metric in tracker.metric_history(run_id, key))
        for key in EPOCH_METRICS
    }


def log_report_files(
    tracker: Tracker,
    run_id: str,
    *,
    figures: dict[str, Figure],
    tables: dict[str, str],
    trim_figures: bool = False,
) -> None:
    """Save figures as PNG and tables as text under their artifact paths, in one upload.

    `trim_figures` crops each PNG to what was drawn, for figures laid out by someone else
    (it draws every figure twice, so ours use constrained layout instead).
    """
    with tempfile.TemporaryDirectory(prefix="imgsweep-report-") as folder:
        for name, content in [*figures.items(), *tables.items()]:
            path = Path(folder, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                path.write_text(content)
            else:
                content.savefig(
                    path, dpi=FIGURE_DPI, bbox_inches="tight" if trim_figures else None
                )
        # One call for the whole folder: fewer round trips when the store is a server.
        tracker.log_artifacts(run_id, folder)


def record_report_failure(tracker: Tracker, run_id: str, error: Exception) -> None:
    """A report that failed leaves a warning, a `report_error` tag and its traceback."""
    reason = f"{type(error).__name__}: {error}".splitlines()[0][:500]
    logger.warning("the report of run %s failed: %s", run_id, reason)
    tracker.set_tags(run_id, {"report_error": reason})
    tracker.log_text(run_id, traceback.format_exc(), "report_error.txt")


def log_stage_report(
    tracker: Tracker,
    run_id: str,
    *,
    model: keras.Model,
    data: ImageFolderData,
    seed: int = 0,
    threshold_rule: ThresholdRule = ARGMAX,
) -> dict[str, float]:
    """Log the val report under `report/` with its metrics; a failure is recorded, not raised.

    The model is trained by then: a plotting error must not cost the trial its result.
    Returns the metrics logged (none after a failure).
    """
    started = time.perf_counter()
    try:
        report = build_stage_report(
            model=model,
            data=data,
            epoch_series=epoch_series(tracker, run_id),
            seed=seed,
            threshold_rule=threshold_rule,
        )
        log_report_files(tracker, run_id, figures=report.figures, tables=report.tables)
        report.metrics["report_seconds"] = time.perf_counter() - started
        tracker.log_metrics(run_id, report.metrics)
    except Exception as error:
        record_report_failure(tracker, run_id, error)
        return {}
    return report.metrics
