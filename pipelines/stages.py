"""The three stages of a trial, each tracked as a nested MLflow run.

They live here rather than in sweep/ because they know nothing of Optuna: a study passes
its pruning callback in, and `python -m pipelines.train` runs the same stages without one.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from pipelines.data.datasets import ImageFolderData, build_batches
from pipelines.data.folders import FolderSplit
from pipelines.metrics import resolve_metric
from pipelines.plan import TrainingPlan
from pipelines.planned_fit import compiled_model, fit_as_planned
from pipelines.stage_run import StageBudget, StageStopped, raise_if_stopped, stage_run
from pipelines.tracking import EpochMetricsLogger, Tracker
from pipelines.tracking.keras_logging import log_model_summary
from pipelines.tracking.reports import log_stage_report
from pipelines.train.augment import build_augmentation
from pipelines.train.augment_grid import augmentation_grid
from pipelines.train.callbacks import (
    BestModelCheckpoint,
    FiniteLossGuard,
    LearningCheck,
    StoppingCallback,
)
from pipelines.train.fit import fit_classifier


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


def _check_outputs(model: keras.Model, data: ImageFolderData, split: FolderSplit) -> None:
    images = next(iter(build_batches(data, split, batch_size=8)))[0]
    # A direct call, not predict(): predict compiles a tf.function per new model.
    outputs = np.asarray(model(images, training=False))
    expected = (len(images), data.output_units)
    if outputs.shape != expected:
        raise ValueError(f"model outputs shape {outputs.shape}, expected {expected}")
    if not np.all(np.isfinite(outputs)):
        raise ValueError("model outputs are not finite")


def run_ablation(
    *,
    plan: TrainingPlan,
    data: ImageFolderData,
    tracker: Tracker,
    parent_run_id: str,
    budget: StageBudget,
) -> None:
    """A few images, one epoch: the model builds, trains to a finite loss, outputs right."""
    subset = data.splits["train"].take_per_class(plan.ablation_images_per_class, plan.seed)
    guard = FiniteLossGuard()
    with stage_run(tracker, "ablation", parent_run_id, {"images": len(subset)}, budget) as run_id:
        try:
            model = compiled_model(plan, data)
            fit_classifier(
                model,
                data=data,
                train_split=subset,
                val_split=None,
                epochs=plan.ablation_epochs,
                batch_size=plan.full_batch_size,
                seed=plan.seed,
                augmentation=build_augmentation(**plan.augment_settings, seed=plan.seed),
                callbacks=[guard, EpochMetricsLogger(tracker, run_id)],
            )
            if guard.stop_reason is None:
                _check_outputs(model, data, subset)
        except Exception as error:  # any failure here is the finding this stage exists for
            reason = f"ablation: {type(error).__name__}: {error}".splitlines()[0]
            raise StageStopped(reason, pruned=False) from error
        raise_if_stopped("ablation", [guard])


def run_overfit(
    *,
    plan: TrainingPlan,
    data: ImageFolderData,
    tracker: Tracker,
    parent_run_id: str,
    budget: StageBudget,
) -> float:
    """Fit a small train subset without augmentation until it shows it learns (LearningCheck).

    Accuracy and loss are scored after each epoch on the same images in inference mode (logged
    as `val_*`): the running figures of the epoch, with dropout on and the weights still
    moving, lag what the model has learned. Returns the best accuracy on the subset.
    """
    subset = data.splits["train"].take_per_class(plan.overfit_images_per_class, plan.seed)
    check = LearningCheck(
        chance=float(np.bincount(subset.labels).max() / len(subset)),
        num_classes=data.num_classes,
        accuracy_share=plan.overfit_accuracy_share,
        loss_drop=plan.overfit_loss_drop,
    )
    guard = FiniteLossGuard()
    params = {
        "images": len(subset),
        "accuracy_share": plan.overfit_accuracy_share,
        "loss_drop": plan.overfit_loss_drop,
    }
    with stage_run(tracker, "overfit", parent_run_id, params, budget) as run_id:
        fit_classifier(
            compiled_model(plan, data),
            data=data,
            train_split=subset,
            val_split=subset,
            epochs=plan.overfit_max_epochs,
            batch_size=plan.overfit_batch_size,
            seed=plan.seed,
            callbacks=[check, guard, EpochMetricsLogger(tracker, run_id)],
        )
        tracker.log_metrics(
            run_id,
            {"best_train_accuracy": check.best_accuracy, "epochs_to_learn": check.epochs_run},
        )
        raise_if_stopped("overfit", [guard])
        if not check.learned:
            raise StageStopped(f"overfit: {check.verdict(len(subset))}: not learning", pruned=True)
    return check.best_accuracy


def run_full(
    *,
    plan: TrainingPlan,
    data: ImageFolderData,
    tracker: Tracker,
    parent_run_id: str,
    checkpoint_path: Path,
    budget: StageBudget,
    extra_callbacks: list[StoppingCallback] = (),
) -> FullResult:
    """The whole train split with schedule, augmentation, early stopping and a best checkpoint,
    all by the study's metric (`search.metric`)."""
    metric = resolve_metric(plan.metric, data.num_classes)
    checkpoint = BestModelCheckpoint(checkpoint_path, monitor=metric.name, mode=metric.mode)
    stoppers = [FiniteLossGuard(), *extra_callbacks]
    augmentation = build_augmentation(**plan.augment_settings, seed=plan.seed)
    train_split = data.splits["train"]
    params = {"train_images": len(train_split), "val_images": len(data.splits["val"])}
    with stage_run(tracker, "full", parent_run_id, params, budget) as run_id:
        model = compiled_model(plan, data)
        log_model_summary(tracker, parent_run_id, model)
        tracker.log_figure(
            run_id, augmentation_grid(data, augmentation, seed=plan.seed), "augmentation_grid.png"
        )
        budget.full_epochs = fit_as_planned(
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
        sample_images = next(iter(build_batches(data, data.splits["val"], batch_size=4)))[0]
        model_uri = tracker.log_keras_model(run_id, model, sample_images.numpy())
        report_metrics = log_stage_report(
            tracker, run_id, model=model, data=data, seed=plan.seed,
            threshold_rule=plan.threshold_rule,
        )  # fmt: skip
        # Grad-CAM's share of the full stage, shown apart in the budget line.
        budget.seconds["gradcam"] = budget.seconds.get("gradcam", 0.0) + report_metrics.get(
            "gradcam_seconds", 0.0
        )
        result = FullResult(
            metric=metric.name,
            best_value=checkpoint.best_value,
            best_val_auc=checkpoint.best_logs.get("val_auc", math.nan),
            best_epoch=checkpoint.best_epoch,
            epochs_run=budget.full_epochs,
            checkpoint_path=checkpoint_path,
            model_uri=model_uri,
            model=model,
        )
        # best_val_auc is the AUC of the best epoch, whichever metric chose that epoch.
        tracker.log_metrics(
            run_id,
            {
                "best_val_auc": result.best_val_auc,
                f"best_{metric.name}": result.best_value,
                "best_epoch": result.best_epoch,
            },
        )
        tracker.set_tags(run_id, {"model_uri": model_uri, "metric": metric.name})
    return result


def run_stages(
    *,
    plan: TrainingPlan,
    data: ImageFolderData,
    tracker: Tracker,
    parent_run_id: str,
    checkpoint_path: Path,
    extra_callbacks: list[StoppingCallback] = (),
    budget: StageBudget | None = None,
) -> FullResult:
    """Ablation, overfit (each unless disabled), then full training, from a clean Keras
    session seeded by the plan; `budget` (if given) collects each stage's time."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(plan.seed)
    stage_args = {
        "plan": plan,
        "data": data,
        "tracker": tracker,
        "parent_run_id": parent_run_id,
        "budget": StageBudget() if budget is None else budget,
    }
    if plan.ablation_enabled:
        run_ablation(**stage_args)
    if plan.overfit_enabled:
        run_overfit(**stage_args)
    return run_full(**stage_args, checkpoint_path=checkpoint_path, extra_callbacks=extra_callbacks)
