"""Compile a classifier and fit it on image-folder splits."""

import logging

import keras

from pipelines.data.datasets import ImageFolderData, build_batches
from pipelines.data.folders import FolderSplit
from pipelines.stopping import deferred_stop
from pipelines.train.callbacks import StopAtSignal


class _SkipRetracingWarnings(logging.Filter):
    """Every trial builds new models, so fit() traces new functions by design, not by mistake."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


_SKIP_RETRACING_WARNINGS = _SkipRetracingWarnings()


def compile_classifier(
    model: keras.Model,
    *,
    optimizer: keras.optimizers.Optimizer,
    num_classes: int,
    label_smoothing: float = 0.0,
) -> keras.Model:
    """Binary cross-entropy for one sigmoid output, categorical otherwise; accuracy and ROC AUC."""
    # The output decides, not the class count: data.label_mode=categorical gives two classes
    # a softmax pair.
    binary = model.output_shape[-1] == 1
    # Macro one-vs-rest AUC for softmax outputs: one ROC curve per one-hot column, averaged.
    auc = keras.metrics.AUC(
        name="auc",
        num_thresholds=500,
        multi_label=not binary,
        num_labels=None if binary else num_classes,
    )
    if binary:
        loss = keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)
    else:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy", auc])
    return model


def fit_classifier(
    model: keras.Model,
    *,
    data: ImageFolderData,
    train_split: FolderSplit,
    val_split: FolderSplit | None,
    epochs: int,
    batch_size: int,
    seed: int,
    augmentation: keras.Layer | None = None,
    class_weight: dict[int, float] | None = None,
    callbacks: list[keras.callbacks.Callback] = (),
    verbose: bool = False,
    initial_epoch: int = 0,
) -> keras.callbacks.History:
    """model.fit over shuffled (and augmented) train batches, validating on val if given.

    Args:
        class_weight: class index → loss weight (e.g. balanced_class_weights of the train split).
        initial_epoch: where a continued fit (a second fine-tune phase) starts counting.
    """
    # Added where fit runs rather than on import; adding the same filter again is a no-op.
    logging.getLogger("tensorflow").addFilter(_SKIP_RETRACING_WARNINGS)
    train_batches = build_batches(
        data, train_split, batch_size=batch_size, shuffle_seed=seed, augmentation=augmentation
    )
    val_batches = (
        build_batches(data, val_split, batch_size=max(batch_size, 256)) if val_split else None
    )
    # SIGTERM or Ctrl-C ends training at the next epoch end, after the callbacks before
    # StopAtSignal (checkpoint, metrics) have written that epoch (pipelines/stopping.py).
    with deferred_stop():
        return model.fit(
            train_batches,
            validation_data=val_batches,
            epochs=epochs,
            class_weight=class_weight,
            initial_epoch=initial_epoch,
            shuffle=False,  # the train pipeline shuffles itself, seeded
            callbacks=[*callbacks, StopAtSignal()],
            verbose=2 if verbose else 0,
        )
