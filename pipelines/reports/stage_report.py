"""What a full-stage run shows about its model on the val split: figures, tables, metrics."""

import csv
import io
from dataclasses import dataclass, field

import keras
import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import classification_report, confusion_matrix

from pipelines.calibration.threshold import ARGMAX, ThresholdRule
from pipelines.data.datasets import ImageFolderData
from pipelines.evaluate import predict_split, roc_auc
from pipelines.reports import figures
from pipelines.reports.trust_report import (
    add_calibration_and_decision,
    add_gradcam_grid,
    split_scores,
)

GRID_SIZE = 16


@dataclass
class StageReport:
    """Artifact path → figure or CSV text, and metrics to log beside them."""

    figures: dict[str, Figure] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


def _csv(rows: list[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _report_table(report: dict, class_names: list[str]) -> str:
    rows = [["class", "precision", "recall", "f1", "support"]]
    for name in [*class_names, "macro avg", "weighted avg"]:
        scores = report[name]
        rows.append([name, *(f"{scores[key]:.4f}" for key in ("precision", "recall", "f1-score")),
                     int(scores["support"])])  # fmt: skip
    rows.append(["accuracy", "", "", f"{report['accuracy']:.4f}", rows[-1][-1]])
    return _csv(rows)


def grid_indices(labels, predicted, confidences, *, size: int, seed: int) -> np.ndarray:
    """Up to half the grid for the most confident mistakes, the rest right answers at random."""
    wrong = np.flatnonzero(labels != predicted)
    wrong = wrong[np.argsort(-confidences[wrong], kind="stable")]
    right = np.random.default_rng(seed).permutation(np.flatnonzero(labels == predicted))
    shown_wrong = wrong[: max(size // 2, size - len(right))]
    return np.concatenate([shown_wrong, right[: size - len(shown_wrong)]]).astype(int)


def _add_scores(report: StageReport, labels, predicted, class_names: list[str]) -> np.ndarray:
    """Macro and weighted precision/recall/F1 as metrics; the confusion matrix and the
    per-class report as tables. Returns the confusion matrix."""
    class_indices = list(range(len(class_names)))
    matrix = confusion_matrix(labels, predicted, labels=class_indices)
    scores = classification_report(
        labels, predicted, labels=class_indices, target_names=class_names,
        output_dict=True, zero_division=0,
    )  # fmt: skip
    for average in ("macro", "weighted"):
        for key, name in (("precision", "precision"), ("recall", "recall"), ("f1-score", "f1")):
            report.metrics[f"val_{average}_{name}"] = scores[f"{average} avg"][key]
    report.tables["report/confusion_matrix.csv"] = _csv(
        [["true \\ predicted", *class_names]]
        + [[name, *row] for name, row in zip(class_names, matrix.tolist(), strict=True)]
    )
    report.tables["report/classification_report.csv"] = _report_table(scores, class_names)
    return matrix


def _add_prediction_grids(
    report: StageReport, model: keras.Model, data: ImageFolderData, probabilities, seed: int
) -> None:
    """A grid of val images, the most confident mistakes first, and Grad-CAM over the same."""
    split, labels = data.splits["val"], data.splits["val"].labels
    predicted, confidences = probabilities.argmax(axis=1), probabilities.max(axis=1)
    shown = grid_indices(labels, predicted, confidences, size=GRID_SIZE, seed=seed)
    wrong_count = int(np.sum(labels != predicted))
    images = data.images(split)[shown]
    report.figures["report/val_predictions.png"] = figures.prediction_grid(
        images,
        labels[shown],
        predicted[shown],
        confidences[shown],
        data.class_names,
        title=(
            f"val predictions: {wrong_count} of {len(labels)} wrong "
            "(most confident mistakes first, marked ✗)"
        ),
    )
    add_gradcam_grid(
        report, model=model, images=images, labels=labels[shown], predicted=predicted[shown],
        confidences=confidences[shown], class_names=data.class_names,
    )  # fmt: skip


def build_stage_report(
    *,
    model: keras.Model,
    data: ImageFolderData,
    epoch_series: dict[str, list[tuple[int, float]]],
    seed: int = 0,
    threshold_rule: ThresholdRule = ARGMAX,
) -> StageReport:
    """Curves from the logged epochs; the rest from `model`'s predictions on the val split
    (calibration on test too), with the operating point `threshold_rule` chooses on val."""
    split, class_names = data.splits["val"], data.class_names
    labels = split.labels
    probabilities = predict_split(model, data, split)
    report = StageReport()
    matrix = _add_scores(report, labels, probabilities.argmax(axis=1), class_names)
    report.figures["report/training_curves.png"] = figures.training_curves(epoch_series)
    report.figures["report/confusion_matrix.png"] = figures.confusion_matrix_figure(
        matrix, class_names
    )
    auc = roc_auc(labels, probabilities)
    report.figures["report/roc_curve.png"] = figures.roc_figure(
        labels, probabilities, class_names, auc=auc
    )
    add_calibration_and_decision(
        report,
        scores=split_scores(model, data, val_probabilities=probabilities),
        rule=threshold_rule,
        roc_path="report/roc_curve.png",
        prefix="report/",
    )
    report.figures["report/precision_recall.png"] = figures.precision_recall_figure(
        labels, probabilities, class_names
    )
    _add_prediction_grids(report, model, data, probabilities, seed)
    return report
