"""The head every model ends with: pooling, an optional dense layer, dropout, the output."""

import keras

HEAD_POOLING = ("flatten", "avg", "max")


def classifier_output(features, *, num_classes: int, label_mode: str = "auto"):
    """One sigmoid unit for binary labels (auto: two classes), softmax otherwise; float32."""
    binary = label_mode == "binary" or (label_mode == "auto" and num_classes == 2)
    units, activation = (1, "sigmoid") if binary else (num_classes, "softmax")
    return keras.layers.Dense(units, activation=activation, dtype="float32", name="output")(
        features
    )


def classifier_head(
    feature_maps,
    *,
    num_classes: int,
    pooling: str,
    dense_units: int,
    dropout_rate: float,
    label_mode: str = "auto",
):
    """Flatten or globally pool the feature maps, then dense (if units > 0), dropout, output."""
    if pooling == "flatten":
        features = keras.layers.Flatten(name="flatten")(feature_maps)
    elif pooling == "avg":
        features = keras.layers.GlobalAveragePooling2D(name="avg_pool")(feature_maps)
    elif pooling == "max":
        features = keras.layers.GlobalMaxPooling2D(name="max_pool")(feature_maps)
    else:
        raise ValueError(f"model.pooling {pooling!r} is unknown; choose one of {HEAD_POOLING}")
    if dense_units:
        features = keras.layers.Dense(dense_units, activation="relu", name="dense")(features)
    features = keras.layers.Dropout(dropout_rate, name="dropout")(features)
    return classifier_output(features, num_classes=num_classes, label_mode=label_mode)
