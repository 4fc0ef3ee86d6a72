"""The three stages of a trial, each tracked as a nested MLflow run: the ablation and
overfit checks here, the full stage in pipelines/full_stage.py.

They live here rather than in sweep/ because they know nothing of Optuna: a study passes
its pruning callback in, and `python -m pipelines.train` runs the same stages without one.
"""

from pathlib import Path

import keras
import numpy as np

from pipelines.data.datasets import ImageFolderData, build_batches
from pipelines.data.folders import FolderSplit
from pipelines.full_stage import FullResult, run_full
from pipelines.plan import TrainingPlan
from pipelines.planned_fit import compiled_model
from pipelines.stage_run import StageStopped, StageTimes, raise_if_stopped, stage_run
from pipelines.tracking import EpochMetricsLogger, Tracker
from pipelines.train.augment import build_augmentation
from pipelines.train.callbacks import (
    FiniteLossGuard,
    LearningCheck,
    StoppingCallback,
)
from pipelines.train.fit import fit_classifier


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
    stage_times: StageTimes,
) -> None:
    """A few images, one epoch: the model builds, trains to a finite loss, outputs right."""
    subset = data.splits["train"].take_per_class(plan.ablation_images_per_class, plan.seed)
    guard = FiniteLossGuard()
    with stage_run(
        tracker, "ablation", parent_run_id, {"images": len(subset)}, stage_times
    ) as run_id:
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


def _learning_check(plan: TrainingPlan, data: ImageFolderData, subset) -> LearningCheck:
    """The overfit gate's criteria, measured against chance on this subset."""
    return LearningCheck(
        chance=float(np.bincount(subset.labels).max() / len(subset)),
        num_classes=data.num_classes,
        accuracy_share=plan.overfit_accuracy_share,
        loss_drop=plan.overfit_loss_drop,
    )


def run_overfit(
    *,
    plan: TrainingPlan,
    data: ImageFolderData,
    tracker: Tracker,
    parent_run_id: str,
    stage_times: StageTimes,
) -> None:
    """Fit a small train subset without augmentation until it shows it learns (LearningCheck).

    Accuracy and loss are scored after each epoch on the same images in inference mode (logged
    as `val_*`): the running figures of the epoch, with dropout on and the weights still
    moving, lag what the model has learned. A model that does not learn is pruned.
    """
    subset = data.splits["train"].take_per_class(plan.overfit_images_per_class, plan.seed)
    check, guard = _learning_check(plan, data, subset), FiniteLossGuard()
    params = {
        "images": len(subset),
        "batch_size": plan.overfit_batch_size,
        "effective_learning_rate": plan.overfit_learning_rate,
        "accuracy_share": plan.overfit_accuracy_share,
        "loss_drop": plan.overfit_loss_drop,
    }
    with stage_run(tracker, "overfit", parent_run_id, params, stage_times) as run_id:
        fit_classifier(
            compiled_model(plan, data, learning_rate=plan.overfit_learning_rate),
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


def run_stages(
    *,
    plan: TrainingPlan,
    data: ImageFolderData,
    tracker: Tracker,
    parent_run_id: str,
    checkpoint_path: Path,
    extra_callbacks: list[StoppingCallback] = (),
    stage_times: StageTimes | None = None,
) -> FullResult:
    """Ablation, overfit (each unless disabled), then full training, from a clean Keras
    session seeded by the plan; `stage_times` (if given) collects each stage's time."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(plan.seed)
    stage_args = {
        "plan": plan,
        "data": data,
        "tracker": tracker,
        "parent_run_id": parent_run_id,
        "stage_times": StageTimes() if stage_times is None else stage_times,
    }
    if plan.ablation_enabled:
        run_ablation(**stage_args)
    if plan.overfit_enabled:
        run_overfit(**stage_args)
    return run_full(**stage_args, checkpoint_path=checkpoint_path, extra_callbacks=extra_callbacks)
