"""A final-model candidate's report: ROC with its operating point, reliability, ECE."""

import keras

from pipelines.calibration.threshold import ThresholdRule
from pipelines.data.datasets import ImageFolderData
from pipelines.evaluate import roc_auc
from pipelines.reports import figures
from pipelines.reports.stage_report import StageReport
from pipelines.reports.trust_report import Decision, add_calibration_and_decision, split_scores

PREFIX = "candidate/"


def build_candidate_report(
    *, model: keras.Model, data: ImageFolderData, rule: ThresholdRule
) -> tuple[StageReport, Decision]:
    """The candidate scored on val and test: figures under `candidate/`, and its decision."""
    scores = split_scores(model, data)
    labels, probabilities = scores["val"]
    report = StageReport()
    roc_path = f"{PREFIX}roc_curve.png"
    report.figures[roc_path] = figures.roc_figure(
        labels, probabilities, data.class_names, auc=roc_auc(labels, probabilities)
    )
    decision = add_calibration_and_decision(
        report, scores=scores, rule=rule, roc_path=roc_path, prefix=PREFIX
    )
    return report, decision
