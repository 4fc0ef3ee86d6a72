"""The full stage's fit: one phase, or two for a transfer model (head first, then fine-tune)."""

from collections.abc import Callable

import keras

from pipelines.models.transfer import set_trainable_layers
from pipelines.train.callbacks import StoppingCallback, learning_rate_callback


def fit_full_stage(
    model: keras.Model,
    *,
    fit: Callable[..., keras.callbacks.History],
    recompile: Callable[[keras.Model], keras.Model],
    schedule: Callable[[int], float],
    max_epochs: int,
    callbacks: list[keras.callbacks.Callback],
    stoppers: list[StoppingCallback],
    head_epochs: int = 0,
    lr_divisor: float = 1.0,
    trainable_layers: int | None = 0,
) -> int:
    """Fit up to `max_epochs`; returns the number of epochs run.

    With `head_epochs` > 0 (transfer models): the whole backbone is frozen for the first
    `head_epochs` epochs, then its last `trainable_layers` (None: all) train too, at the
    schedule's learning rate divided by `lr_divisor`. Callbacks are shared by both phases,
    so the best checkpoint and the per-epoch metrics run on across the switch.

    Args:
        fit: fit_classifier with the data bound: (model, *, epochs, callbacks, initial_epoch).
        recompile: compiles the model with a fresh optimizer after its trainable set changed.
    """
    if head_epochs:
        set_trainable_layers(model, 0)
        recompile(model)
    # The one phase, or the head phase of two.
    first = fit(
        model,
        epochs=head_epochs or max_epochs,
        callbacks=[learning_rate_callback(schedule), *callbacks],
    )
    epochs_run = len(first.epoch)
    if not head_epochs or any(stopper.stop_reason for stopper in stoppers) or not first.epoch:
        return epochs_run
    set_trainable_layers(model, trainable_layers)
    recompile(model)
    tuned = fit(
        model,
        epochs=max_epochs,
        # Early stopping may have ended the head phase before head_epochs.
        initial_epoch=epochs_run,
        callbacks=[
            learning_rate_callback(lambda epoch: schedule(epoch) / lr_divisor),
            *callbacks,
        ],
    )
    return epochs_run + len(tuned.epoch)
