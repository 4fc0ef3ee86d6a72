"""The data-quality report in a study: run (or read back) before any trial, warn, log, filter."""

import json
import os

from omegaconf import DictConfig

from champion.candidates import PromotedCandidates
from pipelines.config import data_name, resolve_path
from pipelines.evaluate import predict_split
from pipelines.quality.filters import files_to_remove, removed_counts, without_train_files
from pipelines.quality.labels import LabelCheckSkipped, label_issues_from_probabilities
from pipelines.quality.run import data_quality_report
from pipelines.quality.settings import QualitySettings, quality_settings
from pipelines.quality.summary import console_lines
from pipelines.tracking.keras_logging import load_keras_model
from pipelines.tracking.quality import (
    log_quality_report,
    log_removed_train_files,
    log_split_label_issues,
)

# The study's record of what the report cost the first time (the summary's budget line).
SECONDS_ATTRIBUTE = "data_report_seconds"
# The trial budget the report left, for the worker processes the sweep starts (they inherit
# its environment): {"study": name, "minutes": budget}. Workers started by hand keep theirs.
WORKER_BUDGET_VARIABLE = "IMGSWEEP_WORKER_BUDGET"


def _study_report(cfg: DictConfig, session, settings: QualitySettings):
    return data_quality_report(
        session.context.base_data,
        settings,
        cache_dir=resolve_path(cfg.tracking.mlruns_dir) / "cache",
        title=f"Data quality: {data_name(cfg.data.get('root'))}",
    )


def check_study_data_quality(cfg: DictConfig, session, settings: QualitySettings) -> None:
    """Report on the study's data before any trial; leave out of train what settings say."""
    os.environ.pop(WORKER_BUDGET_VARIABLE, None)
    if not settings.enabled:
        return
    report, folder, cached = _study_report(cfg, session, settings)
    for line in console_lines(report, cached=cached, report_path=str(folder / "report.html")):
        print(line, flush=True)
    if SECONDS_ATTRIBUTE not in session.study.user_attrs:
        session.study.set_user_attr(SECONDS_ATTRIBUTE, 0.0 if cached else report.total_seconds)
    if session.timeout_minutes and not cached:
        # The budget is the study's whole wall clock: the trials get what the report left
        # (a minute at least, so that the study still starts).
        left = session.timeout_minutes - report.total_seconds / 60
        session.timeout_minutes = max(left, 1.0)
        os.environ[WORKER_BUDGET_VARIABLE] = json.dumps(
            {"study": session.study.study_name, "minutes": session.timeout_minutes}
        )
    log_quality_report(session.tracker, session.parent_run_id, report=report, folder=folder)
    removed = files_to_remove(report, settings)
    if removed:
        session.context.base_data = without_train_files(session.context.base_data, removed)
        counts = removed_counts(removed)
        log_removed_train_files(
            session.tracker, session.parent_run_id, removed=removed, counts=counts
        )
        print(
            f"data quality: training without {len(removed)} train images "
            f"({counts['dq_removed_leaks']} copies of val/test images, "
            f"{counts['dq_removed_label_issues']} likely wrong labels); removed_from_train.csv "
            "on the study's run lists them",
            flush=True,
        )


def worker_budget_after_report(session) -> None:
    """A worker the sweep started: its trial budget less the report's time, as the sweep's."""
    budget = json.loads(os.environ.get(WORKER_BUDGET_VARIABLE) or "{}")
    if session.timeout_minutes and budget.get("study") == session.study.study_name:
        session.timeout_minutes = min(session.timeout_minutes, float(budget["minutes"]))


def leave_out_flagged_train_files(cfg: DictConfig, session) -> None:
    """A worker's share of drop_leaks / exclude_label_issues: the same reduced train split
    (the report read back from the cache the study wrote)."""
    settings = quality_settings(cfg)
    if settings.enabled and (settings.drop_leaks or settings.exclude_label_issues):
        report, _, _ = _study_report(cfg, session, settings)
        removed = files_to_remove(report, settings)
        session.context.base_data = without_train_files(session.context.base_data, removed)


def log_champion_label_issues(session, final: PromotedCandidates | None) -> None:
    """Val and test label issues from the promoted candidate's probabilities, on the study run."""
    if final is None or final.promotion is None:
        return
    promotion = final.promotion
    model = load_keras_model(f"models:/{promotion.model_name}/{promotion.version}")
    data = session.context.base_data
    issues = {}
    for split in ("val", "test"):
        if split not in data.splits:
            continue
        rows = data.splits[split]
        try:
            issues[split] = label_issues_from_probabilities(
                split=split,
                files=list(rows.files),
                labels=rows.labels,
                probabilities=predict_split(model, data, rows),
                class_names=data.class_names,
            )
        except LabelCheckSkipped as reason:
            print(f"data quality: note: {reason}", flush=True)
    if issues:
        log_split_label_issues(session.tracker, session.parent_run_id, issues)
        counts = ", ".join(f"{len(rows)} in {split}" for split, rows in issues.items())
        print(f"data quality: the candidate's predictions flag likely wrong labels: {counts}")
