"""Input scaling as Keras layers inside the model, so a saved model takes raw 0..255 pixels."""

import keras

PREPROCESSING_NAMES = ("rescale",)


def build_preprocessing(name: str) -> keras.Layer:
    """The named scaling layer: `rescale` maps 0..255 to 0..1."""
    if name == "rescale":
        return keras.layers.Rescaling(1.0 / 255, name="rescale")
    raise ValueError(
        f"data.preprocessing {name!r} is unknown; choose one of {PREPROCESSING_NAMES}"
    )
