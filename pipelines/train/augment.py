"""Train-split augmentation as Keras preprocessing layers (the seeds' ImageDataGenerator args)."""

import keras


def build_augmentation(
    *,
    horizontal_flip: bool = False,
    rotation: float = 0.0,
    translation: float = 0.0,
    zoom: float = 0.0,
    seed: int = 0,
) -> keras.Sequential | None:
    """The random layers that are switched on, in ImageDataGenerator's order; None if none are."""
    layers = []
    if horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if rotation > 0:
        layers.append(keras.layers.RandomRotation(rotation, fill_mode="nearest", seed=seed))
    if translation > 0:
        layers.append(
            keras.layers.RandomTranslation(
                translation, translation, fill_mode="nearest", seed=seed
            )
        )
    if zoom > 0:
        layers.append(keras.layers.RandomZoom(zoom, fill_mode="nearest", seed=seed))
    return keras.Sequential(layers, name="augmentation") if layers else None
