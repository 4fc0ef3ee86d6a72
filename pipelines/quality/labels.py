"""Train images whose label looks wrong: out-of-sample probabilities, then confident learning.

Why this model: cleanlab needs, for every train image, probabilities from a model that never
saw it, so every image is predicted by the fold it was held out of. A small two-block CNN for a
few epochs, on images at most 32 pixels a side, is the cheapest model that learns the default
pair's shapes well enough (logistic regression on the pixels, 15 s, ranked fewer of the flipped
labels first: 51 % against 56-57 % in the top 3 %; more epochs, 3 folds of 6 epochs, mirrored
images in training or at test time reach 85-87 % out-of-fold accuracy but move that figure by a
few images at most: see BENCHMARKS.md §9): five folds of three epochs take 1.5-2 minutes for its
11,000 train images on 2 shared cores. Larger train splits are sampled to
data.quality.label_max_images first (pipelines/quality/check.py), so the time stays there.
"""

from dataclasses import dataclass

import numpy as np
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores
from PIL import Image
from sklearn.model_selection import StratifiedKFold

# The cheap model's input side: more detail costs time and finds no more wrong labels.
MODEL_SIDE = 32


@dataclass(frozen=True)
class LabelIssue:
    split: str
    file: str
    given_label: str
    suggested_label: str
    score: float  # cleanlab's label quality (self-confidence): low = likely mislabeled
    rank: int  # 1 = most likely mislabeled


class LabelCheckSkipped(Exception):
    """The label check cannot run on this data: the message says why, in one line."""


def _downsampled(images: np.ndarray) -> np.ndarray:
    """float32 0..1 images, at most MODEL_SIDE pixels a side."""
    height, width = images.shape[1:3]
    if max(height, width) > MODEL_SIDE:
        size = (min(width, MODEL_SIDE), min(height, MODEL_SIDE))
        images = np.stack(
            [
                np.asarray(
                    Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).resize(
                        size, Image.BILINEAR
                    )
                ).reshape(size[1], size[0], -1)
                for image in images
            ]
        )
    return images.astype(np.float32) / 255.0


def _small_cnn(input_shape: tuple[int, ...], num_classes: int):
    import keras

    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(32, 3, activation="relu", padding="same")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Dropout(0.4)(keras.layers.Flatten()(x))
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
    return model


def out_of_fold_probabilities(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int,
    folds: int,
    epochs: int,
    seed: int,
    class_names: list[str],
) -> np.ndarray:
    """(n, classes) probabilities, each image's from the model of the fold it was left out of."""
    # Imported here: the package is imported before the entry quiets TensorFlow's start-up.
    import keras

    counts = np.bincount(labels, minlength=num_classes)
    if counts.min() < folds:
        name = class_names[int(np.argmin(counts))]
        raise LabelCheckSkipped(
            f"class '{name}' has {counts.min()} train images, fewer than data.quality.folds="
            f"{folds}; set data.quality.folds={max(2, int(counts.min()))} or lower"
        )
    pixels = _downsampled(images)
    probabilities = np.zeros((len(labels), num_classes), dtype=np.float32)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (fit_rows, held_rows) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        keras.utils.set_random_seed(seed + fold)
        model = _small_cnn(pixels.shape[1:], num_classes)
        model.fit(pixels[fit_rows], labels[fit_rows], epochs=epochs, batch_size=128, verbose=0)
        probabilities[held_rows] = model.predict(pixels[held_rows], batch_size=512, verbose=0)
        keras.backend.clear_session()
    return probabilities


def label_issues_from_probabilities(
    *,
    split: str,
    files: list[str],
    labels: np.ndarray,
    probabilities: np.ndarray,
    class_names: list[str],
) -> list[LabelIssue]:
    """cleanlab's find_label_issues on out-of-sample probabilities: a list, most likely first.

    Args:
        probabilities: (n, classes), or (n,)/(n, 1) for a sigmoid model's positive class.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim == 1 or probabilities.shape[1] == 1:
        positive = probabilities.reshape(-1)
        probabilities = np.stack([1 - positive, positive], axis=1)
    labels = np.asarray(labels, dtype=int)
    missing = sorted(set(range(len(class_names))) - set(labels.tolist()))
    if missing:
        raise LabelCheckSkipped(
            f"the {split} split has no image of class '{class_names[missing[0]]}': "
            "confident learning needs every class in it"
        )
    ranked = find_label_issues(labels, probabilities, return_indices_ranked_by="self_confidence")
    scores = get_label_quality_scores(labels, probabilities, method="self_confidence")
    return [
        LabelIssue(
            split=split,
            file=files[index],
            given_label=class_names[labels[index]],
            suggested_label=class_names[int(np.argmax(probabilities[index]))],
            score=round(float(scores[index]), 4),
            rank=rank,
        )
        for rank, index in enumerate(ranked, start=1)
    ]
