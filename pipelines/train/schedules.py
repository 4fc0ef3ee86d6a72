"""Per-epoch learning-rate schedules, the seeds' LearningRateScheduler callbacks generalised."""

import math
from collections.abc import Callable


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
        return lambda epoch: initial_learning_rate * factor ** (epoch // every_epochs)
    if name == "exponential":
        return lambda epoch: initial_learning_rate * decay_rate**epoch
    if name == "cosine":
        floor = initial_learning_rate * min_fraction

        def cosine(epoch: int) -> float:
            progress = min(epoch / max(max_epochs - 1, 1), 1.0)
            return floor + (initial_learning_rate - floor) * 0.5 * (
                1 + math.cos(math.pi * progress)
            )

        return cosine
    raise ValueError(
        f"schedule.name {name!r} is unknown; choose constant, step, exponential, cosine"
    )
