"""Train without what the report flags: copies of val/test images, likely wrong labels."""

from dataclasses import replace

import numpy as np

from pipelines.data.datasets import ImageFolderData
from pipelines.errors import DataError
from pipelines.quality.check import QualityReport
from pipelines.quality.settings import QualitySettings


def files_to_remove(report: QualityReport, settings: QualitySettings) -> list[dict]:
    """Rows (file, reason, detail) of the train files the settings leave out; each file once."""
    removed: dict[str, dict] = {}
    if settings.drop_leaks:
        for pair in report.cross_split():
            if pair["split_a"] == "train":
                removed.setdefault(
                    pair["file_a"],
                    {
                        "file": pair["file_a"],
                        "reason": "leak",
                        "detail": f"copy of {pair['split_b']} image {pair['file_b']}",
                    },
                )
    if settings.exclude_label_issues:
        for issue in report.label_issues:
            removed.setdefault(
                issue["file"],
                {
                    "file": issue["file"],
                    "reason": "label_issue",
                    "detail": f"given {issue['given_label']}, suggested "
                    f"{issue['suggested_label']} (score {issue['score']})",
                },
            )
    return list(removed.values())


def without_train_files(data: ImageFolderData, removed: list[dict]) -> ImageFolderData:
    """The same data with `removed` files left out of the train split (no file is touched)."""
    if not removed:
        return data
    train = data.splits["train"].without({row["file"] for row in removed})
    counts = np.bincount(train.labels, minlength=data.num_classes)
    if counts.min() == 0:
        name = data.class_names[int(np.argmin(counts))]
        raise DataError(
            f"data.quality: leaving out {len(removed)} flagged train images leaves class "
            f"'{name}' with none; set data.quality.drop_leaks and "
            "data.quality.exclude_label_issues to false"
        )
    return replace(data, splits={**data.splits, "train": train})


def removed_counts(removed: list[dict]) -> dict[str, int]:
    """dq_removed_* counts by reason, for the run's params."""
    return {
        "dq_removed_leaks": sum(row["reason"] == "leak" for row in removed),
        "dq_removed_label_issues": sum(row["reason"] == "label_issue" for row in removed),
    }
