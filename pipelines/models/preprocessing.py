"""Input scaling inside the model, so a saved model takes raw 0..255 pixels at predict time.

Each kind is built from Keras' own layers and ops (a small nested functional model where it
needs per-image statistics), so a saved model loads anywhere without custom objects.
"""

import math

import keras
from keras import ops

# auto: a model with a backbone uses the backbone's preprocess_input, any other uses rescale.
# backbone: only transfer models, which apply it themselves and never call build_preprocessing.
PREPROCESSING_NAMES = ("auto", "rescale", "minmax", "percentile", "standardize", "backbone")
PERCENTILES = (0.05, 0.95)
EPSILON = 1e-6


def uses_backbone_preprocessing(name: str) -> bool:
    """For transfer-model builders: whether `data.preprocessing` asks for the backbone's own."""
    return name in ("auto", "backbone")


def _per_image(input_shape, name: str, scale) -> keras.Model:
    images = keras.Input(shape=input_shape)
    return keras.Model(images, scale(images), name=name)


def _minmax(images):
    low = ops.min(images, axis=(1, 2, 3), keepdims=True)
    high = ops.max(images, axis=(1, 2, 3), keepdims=True)
    return (images - low) / ops.maximum(high - low, EPSILON)


def _percentile_stretch(images):
    # p5..p95 → 0..1, clipped: a few very bright or dark pixels (labels, borders) set no scale.
    flat = ops.reshape(images, (-1, math.prod(images.shape[1:])))
    bounds = ops.quantile(flat, PERCENTILES, axis=1)  # (2, batch)
    low, high = ops.reshape(bounds[0], (-1, 1, 1, 1)), ops.reshape(bounds[1], (-1, 1, 1, 1))
    return ops.clip((images - low) / ops.maximum(high - low, EPSILON), 0.0, 1.0)


def build_preprocessing(name: str):
    """A callable from raw images to scaled ones: one named layer in the model.

    rescale: 0..255 → 0..1. minmax: each image's own min..max → 0..1. percentile: each
    image's 5th..95th percentile → 0..1 (X-rays and other non-natural images).
    standardize: each image to mean 0, standard deviation 1.
    """
    if name in ("auto", "rescale"):
        return keras.layers.Rescaling(1.0 / 255, name="rescale")
    if name == "standardize":
        # Over height, width and channels of each image: tf.image.per_image_standardization.
        return keras.layers.LayerNormalization(
            axis=(1, 2, 3), center=False, scale=False, name="standardize"
        )
    per_image = {"minmax": _minmax, "percentile": _percentile_stretch}
    if name in per_image:
        return lambda images: _per_image(images.shape[1:], name, per_image[name])(images)
    if name == "backbone":
        raise ValueError(
            "data.preprocessing 'backbone' needs a transfer model with its own preprocess_input; "
            "this model takes auto, rescale, minmax, percentile or standardize"
        )
    raise ValueError(
        f"data.preprocessing {name!r} is unknown; choose one of {PREPROCESSING_NAMES}"
    )
