"""The full stage's fit: one phase, or two for a transfer model (head first, then fine-tune);
its first epoch whole, or in shares of the train split, each validated (subset rungs)."""

from collections.abc import Callable, Sequence

import keras

from pipelines.data.folders import FolderSplit
from pipelines.models.transfer import set_trainable_layers
from pipelines.train.callbacks import StoppingCallback, learning_rate_callback


def _first_epoch_in_shares(
    model: keras.Model,
    *,
    fit: Callable[..., keras.callbacks.History],
    shares: Sequence[FolderSplit],
    schedule: Callable[[int], float],
    callbacks: list[keras.callbacks.Callback],
    stoppers: list[StoppingCallback],
) -> bool:
    """Epoch 0 as one fit per share, each share's end validated; whether training goes on.

    Between shares only the stoppers that end a trial (the pruner, the NaN guard) run, so the
    pruner can decide after a share of an epoch; the time budget stops at whole epochs, as it
    does without shares. The last share runs every callback: to the best-epoch checkpoint, the
    metrics log and early stopping, the shares together are epoch 0, all of it seen once at
    the schedule's first learning rate.
    """
    trial_stoppers = [stopper for stopper in stoppers if stopper.ends_trial]
    for number, share in enumerate(shares, start=1):
        last = number == len(shares)
        fit(
            model,
            epochs=1,
            train_split=share,
            callbacks=[learning_rate_callback(schedule), *(callbacks if last else trial_stoppers)],
        )
        if any(stopper.stop_reason for stopper in stoppers):
            return False
    return True


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
    first_epoch_shares: Sequence[FolderSplit] = (),
) -> int:
    """Fit up to `max_epochs`; returns the number of epochs run.

    With `head_epochs` > 0 (transfer models): the whole backbone is frozen for the first
    `head_epochs` epochs, then its last `trainable_layers` (None: all) train too, at the
    schedule's learning rate divided by `lr_divisor`. Callbacks are shared by both phases,
    so the best checkpoint and the per-epoch metrics run on across the switch.

    With two or more `first_epoch_shares` (disjoint shares of the train split), epoch 0 is
    trained a share at a time (_first_epoch_in_shares); the epochs after it as usual.

    Args:
        fit: fit_classifier with the data bound: (model, *, epochs, callbacks, initial_epoch,
            and train_split for a share).
        recompile: compiles the model with a fresh optimizer after its trainable set changed.
    """
    epochs_run = 0
    if head_epochs:
        set_trainable_layers(model, 0)
        recompile(model)
    if len(first_epoch_shares) > 1:
        shares_done = _first_epoch_in_shares(
            model,
            fit=fit,
            shares=first_epoch_shares,
            schedule=schedule,
            callbacks=callbacks,
            stoppers=stoppers,
        )
        if not shares_done or max_epochs == 1:
            return 1
        epochs_run = 1
    # The one phase, or the head phase of two; the shares may have been all of it.
    first_phase_end = head_epochs or max_epochs
    if first_phase_end > epochs_run:
        first = fit(
            model,
            epochs=first_phase_end,
            initial_epoch=epochs_run,
            callbacks=[learning_rate_callback(schedule), *callbacks],
        )
        epochs_run += len(first.epoch)
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
