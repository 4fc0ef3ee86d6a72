"""The decision threshold of a two-class model (`registry.threshold`), chosen on val.

argmax: the class with the higher probability (0.5). youden: the threshold that maximises
recall + specificity - 1 (Youden's J). recall:X: the highest threshold whose val recall is
at least X (so the best specificity that keeps it). specificity:X: the lowest threshold whose
val specificity is at least X (so the best recall that keeps it). The second class is the
positive one; an image is called positive when its probability is >= the threshold.
"""

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_curve

from pipelines.errors import ConfigError

RULES = ("argmax", "youden", "recall:X", "specificity:X")
TARGET_RULES = ("recall", "specificity")


@dataclass(frozen=True)
class ThresholdRule:
    """A parsed `registry.threshold`: its kind and, for recall/specificity, the target."""

    kind: str
    target: float | None = None

    def __str__(self) -> str:
        return self.kind if self.target is None else f"{self.kind}:{self.target:g}"


@dataclass(frozen=True)
class OperatingPoint:
    """Where a threshold cuts: recall (true positive rate) and specificity on one split."""

    threshold: float
    recall: float
    specificity: float


ARGMAX = ThresholdRule("argmax")


def parse_rule(text) -> ThresholdRule:
    """`registry.threshold` checked: one line naming the key and the accepted forms."""
    usage = f"choose one of: {', '.join(RULES)} (X in (0, 1], e.g. recall:0.95)"
    kind, colon, target = str(text).partition(":")
    if not colon and kind in ("argmax", "youden"):
        return ThresholdRule(kind)
    if colon and kind in TARGET_RULES:
        try:
            value = float(target)
        except ValueError:
            value = float("nan")
        if 0 < value <= 1:
            return ThresholdRule(kind, value)
        raise ConfigError(f"registry.threshold {text!r}: the target must be in (0, 1]; {usage}")
    raise ConfigError(f"registry.threshold {text!r} is unknown; {usage}")


def choose_threshold(rule: ThresholdRule, labels: np.ndarray, scores: np.ndarray) -> float:
    """The threshold `rule` names on val: `scores` are the positive class's probabilities."""
    if rule.kind == "argmax":
        return 0.5
    false_positive_rate, recall, thresholds = roc_curve(labels, scores)
    # roc_curve's first threshold is +inf (nothing called positive): keep it finite.
    thresholds = np.minimum(thresholds, 1.0)
    specificity = 1 - false_positive_rate
    if rule.kind == "youden":
        return float(thresholds[int(np.argmax(recall + specificity - 1))])
    if rule.kind == "recall":
        # Thresholds fall along the curve, so the first that reaches the target is the highest.
        return float(thresholds[int(np.argmax(recall >= rule.target))])
    meets = np.flatnonzero(specificity >= rule.target)
    return float(thresholds[meets[-1]])


def operating_point(labels: np.ndarray, scores: np.ndarray, threshold: float) -> OperatingPoint:
    """Recall and specificity of calling `scores >= threshold` positive."""
    called = scores >= threshold
    positives, negatives = labels == 1, labels != 1
    recall = float(called[positives].mean()) if positives.any() else float("nan")
    specificity = float((~called[negatives]).mean()) if negatives.any() else float("nan")
    return OperatingPoint(threshold, recall, specificity)


def predicted_classes(probabilities: np.ndarray, threshold: float | None) -> np.ndarray:
    """Class indices: argmax, or for two classes the second when its probability >= threshold."""
    if threshold is None or probabilities.shape[1] != 2:
        return probabilities.argmax(axis=1)
    return (probabilities[:, 1] >= threshold).astype(int)
