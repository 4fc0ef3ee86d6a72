"""The classification layer every model ends with."""

import keras


def classifier_output(features, *, num_classes: int):
    """One sigmoid unit for two classes, softmax otherwise; float32 under mixed precision."""
    units, activation = (1, "sigmoid") if num_classes == 2 else (num_classes, "softmax")
    return keras.layers.Dense(units, activation=activation, dtype="float32", name="output")(
        features
    )
