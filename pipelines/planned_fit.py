"""A TrainingPlan's model and its fit: what the full stage and the refit train the same way."""

import functools
from collections.abc import Callable

import keras

from pipelines.data.datasets import ImageFolderData, balanced_class_weights
from pipelines.data.folders import FolderSplit
from pipelines.models import build_model
from pipelines.plan import TrainingPlan
from pipelines.train.augment import build_augmentation
from pipelines.train.callbacks import StoppingCallback
from pipelines.train.fine_tune import fit_full_stage
from pipelines.train.fit import compile_classifier, fit_classifier
from pipelines.train.optimizers import build_optimizer
from pipelines.train.schedules import build_lr_schedule


def compiled_model(
    plan: TrainingPlan, data: ImageFolderData, *, learning_rate: float | None = None
) -> keras.Model:
    """The plan's model, compiled; `learning_rate` replaces the plan's (a stage's own batch)."""
    model = build_model(
        name=plan.model_name,
        input_shape=data.input_shape,
        num_classes=data.num_classes,
        preprocessing=plan.preprocessing,
        label_mode=data.label_mode,
        **plan.model_settings,
    )
    return _compile(model, plan=plan, num_classes=data.num_classes, learning_rate=learning_rate)


def _compile(
    model: keras.Model,
    *,
    plan: TrainingPlan,
    num_classes: int,
    learning_rate: float | None = None,
) -> keras.Model:
    settings = dict(plan.optimizer_settings)
    if learning_rate is not None:
        settings["learning_rate"] = learning_rate
    optimizer = build_optimizer(name=plan.optimizer_name, **settings)
    return compile_classifier(
        model, optimizer=optimizer, num_classes=num_classes, label_smoothing=plan.label_smoothing
    )


def fit_as_planned(
    model: keras.Model,
    *,
    plan: TrainingPlan,
    data: ImageFolderData,
    train_split: FolderSplit,
    val_split: FolderSplit,
    max_epochs: int,
    callbacks: list[keras.callbacks.Callback],
    stoppers: list[StoppingCallback],
    augmentation: keras.layers.Layer | None = None,
    schedule: Callable[[int], float] | None = None,
) -> int:
    """Fit `model` as the plan trains it (its schedule over the plan's max epochs, augmentation,
    class weights, transfer models' two phases) for up to `max_epochs`; returns epochs run.

    The full stage and the refit both train this way, so a refit repeats its trial's epochs;
    a budget refit passes its stretched `schedule` in place of the plan's.
    """
    class_weight = (
        balanced_class_weights(train_split.labels, data.num_classes)
        if plan.class_weight == "balanced"
        else None
    )
    return fit_full_stage(
        model,
        fit=functools.partial(
            fit_classifier,
            data=data,
            train_split=train_split,
            val_split=val_split,
            batch_size=plan.full_batch_size,
            seed=plan.seed,
            augmentation=augmentation
            or build_augmentation(**plan.augment_settings, seed=plan.seed),
            class_weight=class_weight,
            verbose=plan.full_verbose,
        ),
        recompile=functools.partial(_compile, plan=plan, num_classes=data.num_classes),
        schedule=schedule
        or build_lr_schedule(
            name=plan.schedule_name,
            initial_learning_rate=plan.optimizer_settings["learning_rate"],
            max_epochs=plan.full_max_epochs,
            **plan.schedule_settings,
        ),
        max_epochs=max_epochs,
        callbacks=callbacks,
        stoppers=stoppers,
        # A refit shorter than the head phase fine-tunes in its last epoch at least.
        head_epochs=min(plan.fine_tune_head_epochs, max(max_epochs - 1, 0)),
        lr_divisor=plan.fine_tune_lr_divisor,
        trainable_layers=plan.model_settings.get("trainable_layers"),
    )
