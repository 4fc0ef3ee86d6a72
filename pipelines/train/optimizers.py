"""Keras optimizers by name, with the settings conf/optimizer/*.yaml gives them."""

import keras

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
