"""The classification layer every model ends with."""

import keras


def classifier_output(features, *, num_classes: int, label_mode: str = "auto"):
    """One sigmoid unit for binary labels (auto: two classes), softmax otherwise; float32."""
    binary = label_mode == "binary" or (label_mode == "auto" and num_classes == 2)
    units, activation = (1, "sigmoid") if binary else (num_classes, "softmax")
    return keras.layers.Dense(units, activation=activation, dtype="float32", name="output")(
        features
    )
