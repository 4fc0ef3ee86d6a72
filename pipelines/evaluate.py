"""Scores of a trained model on a split, computed exactly (sklearn) from its predictions."""

import time
from dataclasses import dataclass

import keras
import numpy as np
from sklearn.metrics import roc_auc_score

from pipelines.data.datasets import ImageFolderData, build_batches
from pipelines.data.folders import FolderSplit


@dataclass(frozen=True)
class SplitScore:
    """A model's metrics on one split and how fast it predicted them."""

    metrics: dict[str, float]
    images_per_second: float


def class_probabilities(outputs: np.ndarray) -> np.ndarray:
    """A model's outputs as (n, num_classes) probabilities: a sigmoid's one column becomes two."""
    if outputs.shape[1] == 1:
        return np.hstack([1 - outputs, outputs])
    return outputs


def predict_probabilities(model: keras.Model, images) -> np.ndarray:
    """Class probabilities, one row per image, of a batch array or a tf.data dataset."""
    if isinstance(images, np.ndarray):
        # One batch already in memory: no tf.data pipeline to build around it.
        return class_probabilities(np.asarray(model.predict_on_batch(images)))
    return class_probabilities(np.asarray(model.predict(images, verbose=0)))


def predict_split(model: keras.Model, data: ImageFolderData, split: FolderSplit) -> np.ndarray:
    """Class probabilities, one row per image: (n, num_classes) for binary models too."""
    return predict_probabilities(model, build_batches(data, split, batch_size=256))


def roc_auc(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """ROC AUC for two classes; macro one-vs-rest AUC for more."""
    if probabilities.shape[1] == 2:
        return float(roc_auc_score(labels, probabilities[:, 1]))
    return float(roc_auc_score(labels, probabilities, multi_class="ovr", average="macro"))


def accuracy(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """The share of rows whose most probable class is the label."""
    return float(np.mean(probabilities.argmax(axis=1) == labels))


def evaluate_split(model: keras.Model, data: ImageFolderData, split: FolderSplit) -> dict:
    """ROC AUC and accuracy of `model` on `split`."""
    probabilities = predict_split(model, data, split)
    return {
        "auc": roc_auc(split.labels, probabilities),
        "accuracy": accuracy(split.labels, probabilities),
    }


def timed_evaluation(model: keras.Model, data: ImageFolderData, split: FolderSplit) -> SplitScore:
    """`evaluate_split`, and the images per second it predicted (batches of 256)."""
    started = time.perf_counter()
    metrics = evaluate_split(model, data, split)
    return SplitScore(metrics, len(split) / max(time.perf_counter() - started, 1e-9))
