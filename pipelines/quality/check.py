"""Run the checks `data.quality.checks` names on loaded data, once per data fingerprint."""

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from pipelines.data.datasets import ImageFolderData
from pipelines.data.folders import FolderSplit, fingerprint
from pipelines.quality.duplicates import find_duplicates
from pipelines.quality.images import check_images
from pipelines.quality.labels import (
    LabelCheckSkipped,
    label_issues_from_probabilities,
    out_of_fold_probabilities,
)
from pipelines.quality.settings import QualitySettings

REPORT_FILE = "report.json"


@dataclass
class QualityReport:
    """Every finding, as plain rows: what the HTML, the CSVs, the console and MLflow show."""

    fingerprint: str
    seconds: dict[str, float]
    duplicates: list[dict] = field(default_factory=list)
    label_issues: list[dict] = field(default_factory=list)
    train_images: int = 0
    label_checked_images: int = 0  # the label check's sample of train (all of it by default)
    images: dict | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    def cross_split(self) -> list[dict]:
        return [pair for pair in self.duplicates if pair["split_a"] != pair["split_b"]]

    def within_split(self) -> list[dict]:
        return [pair for pair in self.duplicates if pair["split_a"] == pair["split_b"]]

    def metrics(self) -> dict[str, float]:
        """dq_* numbers for MLflow."""
        return {
            "dq_cross_split_duplicates": len(self.cross_split()),
            "dq_within_split_duplicates": len(self.within_split()),
            "dq_label_issues": len(self.label_issues),
            "dq_label_issue_share": len(self.label_issues) / max(self.label_checked_images, 1),
            "dq_odd_images": len((self.images or {}).get("odd_images", [])),
            "dq_seconds": round(self.total_seconds, 1),
        }


def _all_images(data: ImageFolderData) -> tuple[np.ndarray, list[str], list[str]]:
    images = np.concatenate([data.images(split) for split in data.splits.values()])
    files = [file for split in data.splits.values() for file in split.files]
    names = [name for name, split in data.splits.items() for _ in split.files]
    return images, files, names


def _timed(seconds: dict, name: str, work):
    started = time.monotonic()
    try:
        return work()
    finally:
        seconds[name] = round(time.monotonic() - started, 2)


def run_checks(data: ImageFolderData, settings: QualitySettings) -> QualityReport:
    """Every check of `settings.checks` on `data`; a check that cannot run leaves a note."""
    train = data.splits["train"]
    report = QualityReport(fingerprint(data.splits), seconds={}, train_images=len(train))
    if "duplicates" in settings.checks:
        images, files, names = _all_images(data)
        pairs = _timed(
            report.seconds,
            "duplicates",
            lambda: find_duplicates(
                images,
                files=files,
                splits=names,
                max_hash_distance=settings.hash_distance,
                pixel_tolerance=settings.pixel_tolerance,
            ),
        )
        report.duplicates = [asdict(pair) for pair in pairs]
    if "labels" in settings.checks:
        _check_labels(report, data, settings)
    if "images" in settings.checks:
        findings = _timed(
            report.seconds,
            "images",
            lambda: check_images(
                data.splits,
                data.class_names,
                odd_image_limit=settings.odd_image_sample,
                image_size=data.image_size,
                seed=settings.seed,
            ),
        )
        report.images = asdict(findings)
        report.notes += findings.notes
    return report


def _check_labels(report: QualityReport, data: ImageFolderData, settings: QualitySettings):
    """The label check's findings on `report`, or a note saying why it could not run."""
    train, checked = data.splits["train"], _label_check_sample(data, settings)
    try:
        issues = _timed(
            report.seconds, "labels", lambda: _train_label_issues(data, checked, settings)
        )
    except LabelCheckSkipped as reason:
        report.notes.append(f"label check skipped: {reason}")
        return
    report.label_issues = [asdict(issue) for issue in issues]
    report.label_checked_images = len(checked)
    if len(checked) < len(train):
        per_class = settings.label_max_images // data.num_classes
        report.notes.append(
            f"label check on a seeded sample of {len(checked):,} of {len(train):,} train "
            f"images (at most {per_class:,} of each class; data.quality.label_max_images=0 "
            "checks them all, in proportionally more time)"
        )


def _label_check_sample(data: ImageFolderData, settings: QualitySettings) -> FolderSplit:
    """The train images the label check looks at: all, or at most label_max_images of them."""
    train = data.splits["train"]
    if not settings.label_max_images or len(train) <= settings.label_max_images:
        return train
    # The same number of each class: a rare class keeps all its images.
    per_class = max(settings.label_max_images // data.num_classes, 1)
    return train.take_per_class(per_class, seed=settings.seed)


def _train_label_issues(data: ImageFolderData, train: FolderSplit, settings: QualitySettings):
    probabilities = out_of_fold_probabilities(
        data.images(train),
        train.labels,
        num_classes=data.num_classes,
        folds=settings.folds,
        epochs=settings.epochs,
        seed=settings.seed,
        class_names=data.class_names,
    )
    return label_issues_from_probabilities(
        split="train",
        files=list(train.files),
        labels=train.labels,
        probabilities=probabilities,
        class_names=data.class_names,
    )


def cached_report(
    data: ImageFolderData, settings: QualitySettings, *, cache_dir: Path, write_files
) -> tuple[QualityReport, Path, bool]:
    """(report, its folder of files, whether it came from the cache) for this data.

    The folder is `cache_dir/quality-<fingerprint>-<settings>`; `write_files(report, folder)`
    writes the HTML and CSVs into it the first time.
    """
    image_setting = f"{data.input_shape}"
    folder = cache_dir / f"quality-{settings.cache_key(fingerprint(data.splits), image_setting)}"
    if (folder / REPORT_FILE).exists():
        return QualityReport(**json.loads((folder / REPORT_FILE).read_text())), folder, True
    report = run_checks(data, settings)
    partial = folder.with_name(f".{folder.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    write_files(report, partial)
    (partial / REPORT_FILE).write_text(json.dumps(asdict(report)))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)  # complete or absent: a killed run leaves no half report
    return report, folder, False
