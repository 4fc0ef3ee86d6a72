"""The full stage: the whole train split, tracked as a nested MLflow run, to a logged model."""

import math
from dataclasses import dataclass
from pathlib import Path

import keras

from pipelines.data.datasets import ImageFolderData, build_batches
from pipelines.metrics import resolve_metric
from pipelines.plan import TrainingPlan
from pipelines.planned_fit import compiled_model, fit_as_planned
from pipelines.stage_run import StageStopped, StageTimes, raise_if_stopped, stage_run
from pipelines.tracking import EpochMetricsLogger, Tracker
from pipelines.tracking.keras_logging import log_model_summary
from pipelines.tracking.reports import log_stage_report
from pipelines.train.augment import build_augmentation
from pipelines.train.augment_grid import augmentation_grid
from pipelines.train.callbacks import BestModelCheckpoint, FiniteLossGuard, StoppingCallback


@dataclass(frozen=True)
class FullResult:
    """The full stage's best epoch: by `metric` (its `best_value`), and that epoch's val AUC."""

    metric: str
    best_value: float
    best_val_auc: float
    best_epoch: int
    epochs_run: int
    checkpoint_path: Path
    model_uri: str
    model: keras.Model


def _record_full_result(
    tracker: Tracker,
    run_id: str,
    *,
    model: keras.Model,
    data: ImageFolderData,
    plan: TrainingPlan,
    checkpoint: BestModelCheckpoint,
    stage_times: StageTimes,
) -> FullResult:
    """The trained model (best epoch restored), its report and best-epoch metrics, logged."""
    sample_images = next(iter(build_batches(data, data.splits["val"], batch_size=4)))[0]
    model_uri = tracker.log_keras_model(run_id, model, sample_images.numpy())
    report_metrics = log_stage_report(
        tracker, run_id, model=model, data=data, seed=plan.seed,
        threshold_rule=plan.threshold_rule,
    )  # fmt: skip
    # Grad-CAM's share of the full stage, shown apart in the budget line.
    stage_times.seconds["gradcam"] = stage_times.seconds.get("gradcam", 0.0) + report_metrics.get(
        "gradcam_seconds", 0.0
    )
    result = FullResult(
        metric=checkpoint.monitor,
        best_value=checkpoint.best_value,
        best_val_auc=checkpoint.best_logs.get("val_auc", math.nan),
        best_epoch=checkpoint.best_epoch,
        epochs_run=stage_times.full_epochs,
        checkpoint_path=checkpoint.path,
        model_uri=model_uri,
        model=model,
    )
    # best_val_auc is the AUC of the best epoch, whichever metric chose that epoch.
    tracker.log_metrics(
        run_id,
        {
            "best_val_auc": result.best_val_auc,
            f"best_{result.metric}": result.best_value,
            "best_epoch": result.best_epoch,
        },
    )
    tracker.set_tags(run_id, {"model_uri": model_uri, "metric": result.metric})
    return result


def run_full(
    *,
    plan: TrainingPlan,
    data: ImageFolderData,
    tracker: Tracker,
    parent_run_id: str,
    checkpoint_path: Path,
    stage_times: StageTimes,
    extra_callbacks: list[StoppingCallback] = (),
) -> FullResult:
    """The whole train split with schedule, augmentation, early stopping and a best checkpoint,
    all by the study's metric (`search.metric`)."""
    metric = resolve_metric(plan.metric, data.num_classes)
    checkpoint = BestModelCheckpoint(checkpoint_path, monitor=metric.name, mode=metric.mode)
    stoppers = [FiniteLossGuard(), *extra_callbacks]
    augmentation = build_augmentation(**plan.augment_settings, seed=plan.seed)
    train_split = data.splits["train"]
    params = {
        "train_images": len(train_split),
        "val_images": len(data.splits["val"]),
        "batch_size": plan.full_batch_size,
        # The rate training starts at: optimizer.learning_rate scaled to this batch size.
        "effective_learning_rate": plan.optimizer_settings["learning_rate"],
    }
    with stage_run(tracker, "full", parent_run_id, params, stage_times) as run_id:
        model = compiled_model(plan, data)
        log_model_summary(tracker, parent_run_id, model)
        tracker.log_figure(
            run_id, augmentation_grid(data, augmentation, seed=plan.seed), "augmentation_grid.png"
        )
        stage_times.full_epochs = fit_as_planned(
            model,
            plan=plan,
            data=data,
            train_split=train_split,
            val_split=data.splits["val"],
            max_epochs=plan.full_max_epochs,
            callbacks=[
                EpochMetricsLogger(tracker, run_id),
                checkpoint,
                keras.callbacks.EarlyStopping(
                    monitor=metric.name, mode=metric.mode, patience=plan.full_patience
                ),
                *stoppers,
            ],
            stoppers=stoppers,
            augmentation=augmentation,
        )
        raise_if_stopped("full", stoppers)
        if checkpoint.best_epoch is None:
            raise StageStopped(f"full: {metric.name} was never finite", pruned=False)
        return _record_full_result(
            tracker,
            run_id,
            model=model,
            data=data,
            plan=plan,
            checkpoint=checkpoint,
            stage_times=stage_times,
        )
