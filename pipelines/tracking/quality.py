"""The data-quality report on an MLflow run: its folder of files, dq_* metrics, removals."""

import csv
import shutil
import tempfile
from pathlib import Path

from pipelines.quality.check import QualityReport
from pipelines.quality.labels import LabelIssue
from pipelines.tracking.client import Tracker

ARTIFACT_FOLDER = "data_quality"


def _log_folder(tracker: Tracker, run_id: str, files: dict[str, Path | str]) -> None:
    """Files (artifact name → local path, or text) under data_quality/, in one upload."""
    with tempfile.TemporaryDirectory(prefix="imgsweep-quality-") as staging:
        target = Path(staging, ARTIFACT_FOLDER)
        target.mkdir()
        for name, content in files.items():
            if isinstance(content, Path):
                shutil.copyfile(content, target / name)
            else:
                (target / name).write_text(content)
        tracker.log_artifacts(run_id, staging)


def log_quality_report(tracker: Tracker, run_id: str, *, report: QualityReport, folder: Path):
    """The report's HTML, grids and CSVs under data_quality/, its dq_* metrics and tags."""
    files = {path.name: path for path in sorted(folder.iterdir()) if path.is_file()}
    _log_folder(tracker, run_id, files)
    tracker.log_metrics(run_id, report.metrics())
    tracker.set_tags(
        run_id,
        {"dq_report": f"{ARTIFACT_FOLDER}/report.html", "dq_fingerprint": report.fingerprint},
    )


def _csv_text(rows: list[dict], columns: list[str]) -> str:
    with tempfile.SpooledTemporaryFile(mode="w+", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        stream.seek(0)
        return stream.read()


def log_removed_train_files(
    tracker: Tracker, run_id: str, *, removed: list[dict], counts: dict[str, int]
) -> None:
    """What drop_leaks / exclude_label_issues left out of train: a CSV and dq_removed_* params."""
    tracker.log_params(run_id, counts)
    _log_folder(
        tracker,
        run_id,
        {"removed_from_train.csv": _csv_text(removed, ["file", "reason", "detail"])},
    )


def log_split_label_issues(
    tracker: Tracker, run_id: str, issues: dict[str, list[LabelIssue]]
) -> None:
    """The champion's val/test label issues: one CSV per split and dq_<split>_label_issues."""
    columns = ["rank", "split", "file", "given_label", "suggested_label", "score"]
    _log_folder(
        tracker,
        run_id,
        {
            f"{split}_label_issues.csv": _csv_text([vars(issue) for issue in rows], columns)
            for split, rows in issues.items()
        },
    )
    tracker.log_metrics(
        run_id, {f"dq_{split}_label_issues": len(rows) for split, rows in issues.items()}
    )
