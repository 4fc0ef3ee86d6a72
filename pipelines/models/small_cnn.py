"""The seeds' CNN: Conv2D–MaxPool blocks (filters doubling), Flatten, Dense, Dropout."""

import keras

from pipelines.models.heads import classifier_output
from pipelines.models.preprocessing import build_preprocessing


def build_small_cnn(
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    preprocessing: str = "auto",
    label_mode: str = "auto",
    conv_blocks: int = 2,
    base_filters: int = 32,
    kernel_size: int = 3,
    dense_units: int = 128,
    dropout_rate: float = 0.3,
) -> keras.Model:
    """A small convolutional classifier over raw 0..255 pixels."""
    inputs = keras.Input(shape=input_shape, name="image")
    features = build_preprocessing(preprocessing)(inputs)
    for block in range(conv_blocks):
        features = keras.layers.Conv2D(
            base_filters * 2**block,
            kernel_size,
            padding="same",
            activation="relu",
            name=f"conv{block + 1}",
        )(features)
        features = keras.layers.MaxPooling2D(name=f"pool{block + 1}")(features)
    features = keras.layers.Flatten(name="flatten")(features)
    features = keras.layers.Dense(dense_units, activation="relu", name="dense")(features)
    features = keras.layers.Dropout(dropout_rate, name="dropout")(features)
    outputs = classifier_output(features, num_classes=num_classes, label_mode=label_mode)
    return keras.Model(inputs, outputs, name="small_cnn")
