"""Train-split augmentation as Keras preprocessing layers (ImageDataGenerator's arguments in
the usual Keras notebook).

Strengths are fractions as the Keras layers take them: rotation of a full turn, translation
and zoom of the image size, shear of the image size per unit of height (x and y), brightness
and contrast of the 0..255 pixel range.
"""

import keras


def build_augmentation(
    *,
    horizontal_flip: bool = False,
    vertical_flip: bool = False,
    rotation: float = 0.0,
    translation: float = 0.0,
    shear: float = 0.0,
    zoom: float = 0.0,
    brightness: float = 0.0,
    contrast: float = 0.0,
    seed: int = 0,
) -> keras.Sequential | None:
    """The random layers that are switched on, geometry first; None if none are."""
    layers = []
    flips = [
        mode for mode, on in (("horizontal", horizontal_flip), ("vertical", vertical_flip)) if on
    ]
    if flips:
        layers.append(keras.layers.RandomFlip("_and_".join(flips), seed=seed))
    if rotation > 0:
        layers.append(keras.layers.RandomRotation(rotation, fill_mode="nearest", seed=seed))
    if translation > 0:
        layers.append(
            keras.layers.RandomTranslation(
                translation, translation, fill_mode="nearest", seed=seed
            )
        )
    if shear > 0:
        layers.append(keras.layers.RandomShear(shear, shear, fill_mode="nearest", seed=seed))
    if zoom > 0:
        layers.append(keras.layers.RandomZoom(zoom, fill_mode="nearest", seed=seed))
    # Pixels are raw 0..255 here: the model's own preprocessing scales them afterwards.
    if brightness > 0:
        layers.append(keras.layers.RandomBrightness(brightness, value_range=(0, 255), seed=seed))
    if contrast > 0:
        layers.append(keras.layers.RandomContrast(contrast, value_range=(0, 255), seed=seed))
    return keras.Sequential(layers, name="augmentation") if layers else None
