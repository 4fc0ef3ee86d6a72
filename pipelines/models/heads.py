"""The head every model ends with: pooling, an optional dense layer, dropout, the output."""

import keras

HEAD_POOLING = ("flatten", "avg", "max")


def classifier_output(features, *, num_classes: int):
    """One sigmoid unit for two classes, softmax otherwise; float32 under mixed precision."""
    units, activation = (1, "sigmoid") if num_classes == 2 else (num_classes, "softmax")
    return keras.layers.Dense(units, activation=activation, dtype="float32", name="output")(
        features
    )


def classifier_head(
    feature_maps, *, num_classes: int, pooling: str, dense_units: int, dropout_rate: float
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
    return classifier_output(features, num_classes=num_classes)
