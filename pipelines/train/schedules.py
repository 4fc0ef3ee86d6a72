"""Per-epoch learning-rate schedules: Keras' decay schedules stepped once per epoch, as the
notebook's LearningRateScheduler callbacks step them."""

from collections.abc import Callable

import keras

DECAYS = keras.optimizers.schedules


def build_lr_schedule(
    *,
    name: str,
    initial_learning_rate: float,
    max_epochs: int,
    factor: float = 0.5,
    every_epochs: int = 1,
    decay_rate: float = 0.9,
    min_fraction: float = 0.0,
) -> Callable[[int], float]:
    """epoch (0-based) → learning rate."""
    if name == "constant":
        return lambda epoch: initial_learning_rate
    if name == "step":
        decay = DECAYS.ExponentialDecay(
            initial_learning_rate, decay_steps=every_epochs, decay_rate=factor, staircase=True
        )
    elif name == "exponential":
        decay = DECAYS.ExponentialDecay(
            initial_learning_rate, decay_steps=1, decay_rate=decay_rate
        )
    elif name == "cosine":
        # Down to the floor at the last epoch (epoch max_epochs - 1), then held there.
        decay = DECAYS.CosineDecay(
            initial_learning_rate, decay_steps=max(max_epochs - 1, 1), alpha=min_fraction
        )
    else:
        raise ValueError(
            f"schedule.name {name!r} is unknown; choose constant, step, exponential, cosine"
        )
    # A Python float: what LearningRateScheduler accepts and what the curve plot records.
    return lambda epoch: float(decay(epoch))
