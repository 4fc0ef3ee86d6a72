"""The augmentation_grid.png artifact: a few training images before and after augmentation."""

import keras
import numpy as np
from matplotlib.figure import Figure

from pipelines.data.datasets import ImageFolderData


def augmentation_grid(
    data: ImageFolderData, augmentation: keras.Layer | None, *, seed: int, count: int = 8
) -> Figure:
    """Two rows, as the usual notebook's plotImages shows them: the images, then augmented."""
    sample = data.splits["train"].take_per_class(max(1, count // data.num_classes), seed)
    images = data.images(sample)[:count].astype("float32")
    augmented = images if augmentation is None else np.asarray(augmentation(images, training=True))
    # A Figure without pyplot renders with Agg: no display, no global state between trials.
    figure = Figure(figsize=(1.5 * len(images), 3.4), layout="constrained")
    axes = figure.subplots(2, len(images), squeeze=False)
    for row, batch in enumerate((images, augmented)):
        for column, image in enumerate(np.clip(batch, 0, 255).astype(np.uint8)):
            axis = axes[row, column]
            if image.shape[-1] == 1:
                axis.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255)
            else:
                axis.imshow(image)
            axis.set_xticks([])
            axis.set_yticks([])
    for column, label in enumerate(sample.labels[:count]):
        axes[0, column].set_title(data.class_names[label], fontsize=8)
    axes[0, 0].set_ylabel("before")
    axes[1, 0].set_ylabel("after" if augmentation is not None else "after (none)")
    return figure
