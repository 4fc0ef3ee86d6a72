"""Keras optimizers by name, with the settings conf/optimizer/*.yaml gives them."""

import keras

from pipelines.config import BATCH_SCALINGS

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
}


def build_optimizer(
    *,
    name: str,
    learning_rate: float,
    weight_decay: float = 0.0,
    clipnorm: float | None = None,
    momentum: float = 0.9,
    nesterov: bool = False,
) -> keras.optimizers.Optimizer:
    """The named optimizer; its learning rate is later set per epoch by the schedule.

    Args:
        weight_decay: decoupled decay, `w -= learning_rate * weight_decay * w` each step.
        clipnorm: clip each weight's gradient to this L2 norm; None does not clip.
        momentum, nesterov: SGD's only.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer.name {name!r} is unknown; choose one of {list(OPTIMIZERS)}")
    settings = {"learning_rate": learning_rate, "clipnorm": clipnorm}
    # Keras skips decay only for None: 0.0 would still cost an update per weight per step.
    settings["weight_decay"] = weight_decay or None
    if name == "sgd":
        settings.update(momentum=momentum, nesterov=nesterov)
    return OPTIMIZERS[name](**settings)


def scaled_learning_rate(
    *, learning_rate: float, batch_size: int, reference_batch_size: int, rule: str
) -> float:
    """The learning rate at `batch_size`, when `learning_rate` is the one for the reference batch.

    linear: lr·B/ref (Goyal et al.: the same step per image seen); sqrt: lr·sqrt(B/ref) (the same
    gradient-noise scale, Krizhevsky's and Hoffer et al.'s rule for adaptive optimizers).
    """
    if rule not in BATCH_SCALINGS:
        raise ValueError(
            f"optimizer.batch_scaling {rule!r} is unknown; choose one of {list(BATCH_SCALINGS)}"
        )
    ratio = batch_size / reference_batch_size
    factor = {"none": 1.0, "linear": ratio, "sqrt": ratio**0.5}[rule]
    return learning_rate * factor
