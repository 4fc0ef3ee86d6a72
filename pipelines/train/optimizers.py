"""Keras optimizers by name, with the settings conf/optimizer/*.yaml gives them."""

import keras


def build_optimizer(
    *, name: str, learning_rate: float, momentum: float = 0.9, nesterov: bool = False
) -> keras.optimizers.Optimizer:
    """The named optimizer; its learning rate is later set per epoch by the schedule."""
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(
            learning_rate=learning_rate, momentum=momentum, nesterov=nesterov
        )
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=learning_rate)
    raise ValueError(f"optimizer.name {name!r} is unknown; choose adam, sgd or rmsprop")
