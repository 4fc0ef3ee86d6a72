"""Expected calibration error (ECE) and the reliability bins behind it.

Top-label ECE: each image's confidence is its highest class probability, scored against
whether that class is right, so two classes and ten are measured the same way. The bins hold
equal numbers of images (equal-mass bins), not equal widths of confidence: a confident model
puts most images above 0.9, where equal-width bins would leave the lower bins nearly empty.
"""

from dataclasses import dataclass

import numpy as np

DEFAULT_BINS = 15


@dataclass(frozen=True)
class ReliabilityBins:
    """Per bin: mean confidence, accuracy and image count (equal-mass, in confidence order)."""

    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: the count-weighted mean |accuracy - confidence|."""
        total = self.count.sum()
        if total == 0:
            return float("nan")
        gaps = np.abs(self.accuracy - self.confidence)
        return float(np.sum(gaps * self.count) / total)


def reliability_bins(
    labels: np.ndarray, probabilities: np.ndarray, *, bins: int = DEFAULT_BINS
) -> ReliabilityBins:
    """Top-label confidences sorted and cut into `bins` bins of (nearly) equal image counts."""
    confidences = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == labels).astype("float64")
    order = np.argsort(confidences, kind="stable")
    groups = [group for group in np.array_split(order, min(bins, len(order))) if len(group)]
    return ReliabilityBins(
        confidence=np.array([confidences[group].mean() for group in groups]),
        accuracy=np.array([correct[group].mean() for group in groups]),
        count=np.array([len(group) for group in groups]),
    )


def expected_calibration_error(
    labels: np.ndarray, probabilities: np.ndarray, *, bins: int = DEFAULT_BINS
) -> float:
    """Top-label ECE over equal-mass bins (0: each confidence is the accuracy it promises)."""
    return reliability_bins(labels, probabilities, bins=bins).ece
