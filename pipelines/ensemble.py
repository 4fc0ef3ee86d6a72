"""Greedy ensemble selection (Caruana et al., 2004) and the ensemble as one Keras model.

Selection works on the members' val-split probabilities alone: at each of `size` steps the
member (any, again or for the first time) whose addition most improves the averaged
probabilities' val metric joins, so a member's weight is how often it was picked / size.
The ensemble is a Functional model made of built-in layers only (each member as a nested
model, Rescaling by its weight, Add), so it saves, loads and predicts from raw pixels exactly
as a single model does, with no custom objects.
"""

from collections import Counter

import keras
import numpy as np
from sklearn.metrics import log_loss

from pipelines.evaluate import accuracy, roc_auc

# The val metrics selection can optimise, as (a function of labels and probabilities).
ENSEMBLE_METRICS = {
    "val_auc": roc_auc,
    "val_accuracy": accuracy,
    "val_loss": lambda labels, probabilities: _log_loss(labels, probabilities),
}


def _log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    # float32 softmax rows sum to 1 only within rounding, which scikit-learn warns about.
    rows = probabilities.astype("float64")
    rows /= rows.sum(axis=1, keepdims=True)
    return float(log_loss(labels, rows, labels=list(range(rows.shape[1]))))


def greedy_selection(
    member_probabilities: list[np.ndarray],
    labels: np.ndarray,
    *,
    size: int,
    metric: str = "val_auc",
    mode: str = "max",
) -> dict[int, float]:
    """Member index → weight after `size` greedy steps with replacement (weights sum to 1)."""
    score = ENSEMBLE_METRICS[metric]
    sign = 1.0 if mode == "max" else -1.0
    total = np.zeros_like(member_probabilities[0], dtype="float64")
    picked: list[int] = []
    for step in range(1, size + 1):
        # Ties go to the earlier member: callers list the best single member first.
        best = max(
            range(len(member_probabilities)),
            key=lambda index: (
                sign * score(labels, (total + member_probabilities[index]) / step),
                -index,
            ),
        )
        picked.append(best)
        total += member_probabilities[best]
    return {index: count / size for index, count in sorted(Counter(picked).items())}


def build_ensemble_model(
    members: list[keras.Model],
    weights: list[float],
    *,
    input_shape: tuple[int, int, int],
    member_names: list[str],
) -> keras.Model:
    """One model: the members' outputs (probabilities) averaged with `weights`."""
    inputs = keras.Input(shape=input_shape, name="image")
    weighted = []
    for member, weight, name in zip(members, weights, member_names, strict=True):
        # A new Functional model over the member's layers, so that each nested model has
        # a name of its own (every family's model is called e.g. "small_cnn").
        renamed = keras.Model(member.input, member.output, name=name)
        outputs = renamed(inputs)
        weighted.append(keras.layers.Rescaling(weight, name=f"{name}_weight")(outputs))
    combined = weighted[0] if len(weighted) == 1 else keras.layers.Add(name="average")(weighted)
    return keras.Model(inputs, combined, name="ensemble")
