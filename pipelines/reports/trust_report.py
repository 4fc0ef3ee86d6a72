"""The part of a report that says how far to trust the model: calibration error and
reliability on val and test, the decision threshold's operating point, Grad-CAM overlays."""

import time
from dataclasses import dataclass

import keras
import numpy as np

from pipelines.calibration.ece import expected_calibration_error
from pipelines.calibration.threshold import (
    OperatingPoint,
    ThresholdRule,
    choose_threshold,
    operating_point,
)
from pipelines.data.datasets import ImageFolderData
from pipelines.errors import ImgsweepError
from pipelines.evaluate import predict_split
from pipelines.reports import figures
from pipelines.reports.gradcam import check_explainable, gradcam_maps, overlay
from pipelines.reports.trust_figures import mark_operating_point, reliability_figure

# split name → (labels, probabilities)
SplitScores = dict[str, tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Decision:
    """A rule's threshold on val and where it cuts on val and test (two classes only)."""

    rule: ThresholdRule
    threshold: float | None = None  # None: more than two classes, decided by argmax
    val: OperatingPoint | None = None
    test: OperatingPoint | None = None

    def tags(self) -> dict[str, str]:
        """What a registered version carries, for predict (and a server) to apply."""
        tags = {"decision_rule": str(self.rule)}
        if self.threshold is not None:
            tags["decision_threshold"] = f"{self.threshold:.6f}"
        if self.test is not None:
            tags["test_recall_at_threshold"] = f"{self.test.recall:.6f}"
            tags["test_specificity_at_threshold"] = f"{self.test.specificity:.6f}"
        return tags


def split_scores(
    model: keras.Model, data: ImageFolderData, *, val_probabilities: np.ndarray | None = None
) -> SplitScores:
    """Labels and probabilities on val and (when the data has one) test."""
    scores = {}
    for name in ("val", "test"):
        if name in data.splits:
            split = data.splits[name]
            known = val_probabilities if name == "val" else None
            probabilities = known if known is not None else predict_split(model, data, split)
            scores[name] = (split.labels, probabilities)
    return scores


def decide(rule: ThresholdRule, scores: SplitScores) -> Decision:
    """The rule's threshold chosen on val; its recall and specificity on val and test."""
    labels, probabilities = scores["val"]
    if probabilities.shape[1] != 2:
        return Decision(rule)
    threshold = choose_threshold(rule, labels, probabilities[:, 1])
    points = {
        name: operating_point(split_labels, split_probabilities[:, 1], threshold)
        for name, (split_labels, split_probabilities) in scores.items()
    }
    return Decision(rule, threshold, points["val"], points.get("test"))


def add_calibration_and_decision(
    report, *, scores: SplitScores, rule: ThresholdRule, roc_path: str, prefix: str
) -> Decision:
    """ECE per split and the reliability diagram; the operating point on the ROC figure."""
    for name, (labels, probabilities) in scores.items():
        report.metrics[f"{name}_ece"] = expected_calibration_error(labels, probabilities)
    report.figures[f"{prefix}reliability.png"] = reliability_figure(scores)
    decision = decide(rule, scores)
    if decision.val is not None:
        mark_operating_point(
            report.figures[roc_path], rule=str(rule), val=decision.val, test=decision.test
        )
        report.metrics["decision_threshold"] = decision.threshold
        if decision.test is not None:
            report.metrics["test_recall_at_threshold"] = decision.test.recall
            report.metrics["test_specificity_at_threshold"] = decision.test.specificity
    return decision


def add_gradcam_grid(
    report, *, model: keras.Model, images, labels, predicted, confidences, class_names
) -> None:
    """The prediction grid's images with Grad-CAM overlays for their predicted class, timed."""
    started = time.perf_counter()
    try:
        check_explainable(model)
    except ImgsweepError:
        return  # a model without convolutions has no maps to show
    maps = gradcam_maps(model, images, predicted)
    overlays = np.stack([overlay(image, heat) for image, heat in zip(images, maps, strict=True)])
    report.figures["report/val_gradcam.png"] = figures.prediction_grid(
        overlays, labels, predicted, confidences, class_names,
        title="Grad-CAM: where the model looked for the class it predicted (red: most)",
    )  # fmt: skip
    report.metrics["gradcam_seconds"] = time.perf_counter() - started
