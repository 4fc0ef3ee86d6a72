"""Scores of a trained model on a split, computed exactly (sklearn) from its predictions."""

import keras
import numpy as np
from sklearn.metrics import roc_auc_score

from pipelines.data.datasets import ImageFolderData, build_batches
from pipelines.data.folders import FolderSplit


def class_probabilities(outputs: np.ndarray) -> np.ndarray:
    """A model's outputs as (n, num_classes) probabilities: a sigmoid's one column becomes two."""
    if outputs.shape[1] == 1:
        return np.hstack([1 - outputs, outputs])
    return outputs


def predict_split(model: keras.Model, data: ImageFolderData, split: FolderSplit) -> np.ndarray:
    """Class probabilities, one row per image: (n, num_classes) for binary models too."""
    return class_probabilities(
        model.predict(build_batches(data, split, batch_size=256), verbose=0)
    )


def roc_auc(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """ROC AUC for two classes; macro one-vs-rest AUC for more."""
    if probabilities.shape[1] == 2:
        return float(roc_auc_score(labels, probabilities[:, 1]))
    return float(roc_auc_score(labels, probabilities, multi_class="ovr", average="macro"))


def evaluate_split(model: keras.Model, data: ImageFolderData, split: FolderSplit) -> dict:
    """ROC AUC and accuracy of `model` on `split`."""
    probabilities = predict_split(model, data, split)
    accuracy = float(np.mean(probabilities.argmax(axis=1) == split.labels))
    return {"auc": roc_auc(split.labels, probabilities), "accuracy": accuracy}
