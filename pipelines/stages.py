"""The three stages of a trial, each tracked as a nested MLflow run.

They live here rather than in sweep/ because they know nothing of Optuna: a study passes
its pruning callback in, and `python -m pipelines.train` runs the same stages without one.
"""

import functools
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from pipelines.data.datasets import ImageFolderData, balanced_class_weights, build_batches
from pipelines.data.folders import FolderSplit
from pipelines.models import build_model
from pipelines.plan import TrainingPlan
from pipelines.tracking import EpochMetricsLogger, RunStatus, Tracker
from pipelines.tracking.keras_logging import log_model_summary
from pipelines.tracking.reports import log_stage_report
from pipelines.train.augment import build_augmentation
from pipelines.train.augment_grid import augmentation_grid
from pipelines.train.callbacks import (
    BestModelCheckpoint,
    FiniteLossGuard,
    StopAtAccuracy,
    StoppingCallback,
)
from pipelines.train.fine_tune import fit_full_stage
from pipelines.train.fit import compile_classifier, fit_classifier
from pipelines.train.optimizers import build_optimizer
from pipelines.train.schedules import build_lr_schedule


class StageStopped(Exception):
    """A stage ended the trial: `pruned` when the setup is sound but not worth going on."""

    def __init__(self, reason: str, *, pruned: bool):
        super().__init__(reason)
        self.reason = reason
        self.pruned = pruned


@dataclass(frozen=True)
class FullResult:
    best_val_auc: float
    best_epoch: int
    epochs_run: int
    checkpoint_path: Path
    model_uri: str
    model: keras.Model


def compiled_model(plan: TrainingPlan, data: ImageFolderData) -> keras.Model:
    model = build_model(
        name=plan.model_name,
        input_shape=data.input_shape,
        num_classes=data.num_classes,
        preprocessing=plan.preprocessing,
        label_mode=data.label_mode,
        **plan.model_settings,
    )
    return _compile(model, plan=plan, num_classes=data.num_classes)


def _compile(model: keras.Model, *, plan: TrainingPlan, num_classes: int) -> keras.Model:
    optimizer = build_optimizer(name=plan.optimizer_name, **plan.optimizer_settings)
    return compile_classifier(
        model, optimizer=optimizer, num_classes=num_classes, label_smoothing=plan.label_smoothing
    )


def _stage_run(tracker: Tracker, name: str, parent_run_id: str, params: dict) -> str:
    run_id = tracker.start_run(name, parent_run_id=parent_run_id, tags={"stage": name})
    tracker.log_params(run_id, params)
    return run_id


def _finish_stage(
    tracker: Tracker, run_id: str, stage: str, stoppers: list[StoppingCallback]
) -> None:
    """End the stage run: KILLED and a pruned StageStopped if a callback stopped training."""
    reason = next((stopper.stop_reason for stopper in stoppers if stopper.stop_reason), None)
    if reason:
        tracker.end_run(run_id, RunStatus.KILLED, f"{stage}: {reason}")
        # Pruned, not failed: a diverging learning rate tells the sampler where not to look.
        raise StageStopped(f"{stage}: {reason}", pruned=True)
    tracker.end_run(run_id, RunStatus.FINISHED)


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
    *, plan: TrainingPlan, data: ImageFolderData, tracker: Tracker, parent_run_id: str
) -> None:
    """A few images, one epoch: the model builds, trains to a finite loss, outputs right."""
    subset = data.splits["train"].take_per_class(plan.ablation_images_per_class, plan.seed)
    run_id = _stage_run(tracker, "ablation", parent_run_id, {"images": len(subset)})
    guard = FiniteLossGuard()
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
        tracker.end_run(run_id, RunStatus.FAILED, reason)
        raise StageStopped(reason, pruned=False) from error
    _finish_stage(tracker, run_id, "ablation", [guard])


def run_overfit(
    *, plan: TrainingPlan, data: ImageFolderData, tracker: Tracker, parent_run_id: str
) -> float:
    """Fit a small train subset without augmentation; returns the best train accuracy.

    The accuracy is scored after each epoch on the same images in inference mode (logged as
    `val_accuracy`): the running accuracy of the epoch, with dropout on and the weights still
    moving, lags what the model has learned and failed sound setups with heavy dropout.
    """
    subset = data.splits["train"].take_per_class(plan.overfit_images_per_class, plan.seed)
    run_id = _stage_run(
        tracker,
        "overfit",
        parent_run_id,
        {"images": len(subset), "target_accuracy": plan.overfit_target_accuracy},
    )
    stopper = StopAtAccuracy(plan.overfit_target_accuracy, monitor="val_accuracy")
    guard = FiniteLossGuard()
    try:
        fit_classifier(
            compiled_model(plan, data),
            data=data,
            train_split=subset,
            val_split=subset,
            epochs=plan.overfit_max_epochs,
            batch_size=plan.overfit_batch_size,
            seed=plan.seed,
            callbacks=[stopper, guard, EpochMetricsLogger(tracker, run_id)],
        )
    except Exception as error:
        tracker.end_run(run_id, RunStatus.FAILED, f"overfit: {error}".splitlines()[0])
        raise
    tracker.log_metrics(run_id, {"best_train_accuracy": stopper.best_accuracy})
    if guard.stop_reason:
        _finish_stage(tracker, run_id, "overfit", [guard])
    if stopper.best_accuracy < plan.overfit_target_accuracy:
        reason = (
            f"overfit: best train accuracy {stopper.best_accuracy:.2f} after "
            f"{stopper.epochs_run} epochs on {len(subset)} images"
        )
        tracker.end_run(run_id, RunStatus.KILLED, reason)
        raise StageStopped(reason, pruned=True)
    tracker.end_run(run_id, RunStatus.FINISHED)
    return stopper.best_accuracy


def run_full(
    *,
    plan: TrainingPlan,
    data: ImageFolderData,
    tracker: Tracker,
    parent_run_id: str,
    checkpoint_path: Path,
    extra_callbacks: list[StoppingCallback] = (),
) -> FullResult:
    """The whole train split with schedule, augmentation, early stopping and a best checkpoint."""
    run_id = _stage_run(
        tracker,
        "full",
        parent_run_id,
        {"train_images": len(data.splits["train"]), "val_images": len(data.splits["val"])},
    )
    schedule = build_lr_schedule(
        name=plan.schedule_name,
        initial_learning_rate=plan.optimizer_settings["learning_rate"],
        max_epochs=plan.full_max_epochs,
        **plan.schedule_settings,
    )
    checkpoint = BestModelCheckpoint(checkpoint_path, monitor="val_auc")
    stoppers = [FiniteLossGuard(), *extra_callbacks]
    augmentation = build_augmentation(**plan.augment_settings, seed=plan.seed)
    train_split = data.splits["train"]
    class_weight = (
        balanced_class_weights(train_split.labels, data.num_classes)
        if plan.class_weight == "balanced"
        else None
    )
    model = compiled_model(plan, data)
    log_model_summary(tracker, parent_run_id, model)
    try:
        tracker.log_figure(
            run_id,
            augmentation_grid(data, augmentation, seed=plan.seed),
            "augmentation_grid.png",
        )
        epochs_run = fit_full_stage(
            model,
            fit=functools.partial(
                fit_classifier,
                data=data,
                train_split=train_split,
                val_split=data.splits["val"],
                batch_size=plan.full_batch_size,
                seed=plan.seed,
                augmentation=augmentation,
                class_weight=class_weight,
                verbose=plan.full_verbose,
            ),
            recompile=functools.partial(_compile, plan=plan, num_classes=data.num_classes),
            schedule=schedule,
            max_epochs=plan.full_max_epochs,
            callbacks=[
                EpochMetricsLogger(tracker, run_id),
                checkpoint,
                keras.callbacks.EarlyStopping(
                    monitor="val_auc", mode="max", patience=plan.full_patience
                ),
                *stoppers,
            ],
            stoppers=stoppers,
            head_epochs=plan.fine_tune_head_epochs,
            lr_divisor=plan.fine_tune_lr_divisor,
            trainable_layers=plan.model_settings.get("trainable_layers"),
        )
    except Exception as error:
        tracker.end_run(run_id, RunStatus.FAILED, f"full: {error}".splitlines()[0])
        raise
    if any(stopper.stop_reason for stopper in stoppers):
        _finish_stage(tracker, run_id, "full", stoppers)
    if checkpoint.best_epoch is None:
        reason = "full: val_auc was never finite"
        tracker.end_run(run_id, RunStatus.FAILED, reason)
        raise StageStopped(reason, pruned=False)
    sample_images = next(iter(build_batches(data, data.splits["val"], batch_size=4)))[0].numpy()
    model_uri = tracker.log_keras_model(run_id, model, sample_images)
    log_stage_report(tracker, run_id, model=model, data=data, seed=plan.seed)
    result = FullResult(
        best_val_auc=checkpoint.best_value,
        best_epoch=checkpoint.best_epoch,
        epochs_run=epochs_run,
        checkpoint_path=checkpoint_path,
        model_uri=model_uri,
        model=model,
    )
    tracker.log_metrics(
        run_id, {"best_val_auc": result.best_val_auc, "best_epoch": result.best_epoch}
    )
    tracker.set_tags(run_id, {"model_uri": model_uri})
    tracker.end_run(run_id, RunStatus.FINISHED)
    return result


def run_stages(
    *,
    plan: TrainingPlan,
    data: ImageFolderData,
    tracker: Tracker,
    parent_run_id: str,
    checkpoint_path: Path,
    extra_callbacks: list[StoppingCallback] = (),
) -> FullResult:
    """Ablation, overfit (each unless disabled), then full training, from a clean Keras
    session seeded by the plan."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(plan.seed)
    stage_args = {"plan": plan, "data": data, "tracker": tracker, "parent_run_id": parent_run_id}
    if plan.ablation_enabled:
        run_ablation(**stage_args)
    if plan.overfit_enabled:
        run_overfit(**stage_args)
    return run_full(**stage_args, checkpoint_path=checkpoint_path, extra_callbacks=extra_callbacks)
