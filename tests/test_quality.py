"""The data-quality report on small fault-injected digit trees: what it finds, warns, removes."""

import csv
import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.config import compose_config
from pipelines.console import run_command
from pipelines.data.folders import fingerprint
from pipelines.errors import ConfigError
from pipelines.plan import load_data
from pipelines.quality.filters import files_to_remove, without_train_files
from pipelines.quality.run import data_quality_report
from pipelines.quality.settings import quality_settings
from tests.conftest import small_overrides
from tests.quality_faults import inject_faults

# Native 8x8 digits: a one-pixel shift in the file stays one pixel in the decoded image.
QUALITY_OVERRIDES = {
    "data.image_size": "[8,8]",
    "data.quality.enabled": "true",
    "data.quality.folds": 3,
    "data.quality.epochs": 15,
}


def _config(data_root: Path, mlruns: Path, **extra):
    overrides = small_overrides(data_root, mlruns, **{**QUALITY_OVERRIDES, **extra})
    return compose_config(overrides), overrides


@pytest.fixture(scope="module")
def faulty_digits(binary_digits, tmp_path_factory):
    """Digits 3 vs 8 with 5 % flipped train labels and 3 copies of each kind."""
    root = tmp_path_factory.mktemp("faulty") / "digits"
    faults = inject_faults(
        binary_digits, root, flip_fraction=0.05, test_copies=3, val_copies=3, train_copies=3
    )
    return root, faults


def _report(data_root: Path, mlruns: Path, **extra):
    cfg, _ = _config(data_root, mlruns, **extra)
    data = load_data(cfg)
    settings = quality_settings(cfg)
    report, folder, cached = data_quality_report(
        data, settings, cache_dir=mlruns / "cache", title="test"
    )
    return report, folder, cached, data, settings


def _pairs(report) -> set[tuple[str, str]]:
    return {(Path(pair["file_a"]).name, Path(pair["file_b"]).name) for pair in report.duplicates}


@pytest.mark.slow
def test_each_kind_of_copy_and_flipped_labels_are_found(faulty_digits, tmp_path):
    root, faults = faulty_digits
    report, folder, cached, _, _ = _report(root, tmp_path / "mlruns")
    found = _pairs(report)
    for kind in (faults.test_copies, faults.val_copies, faults.train_copies):
        expected = {(Path(copy).name, Path(original).name) for copy, original in kind}
        assert all(pair in found or pair[::-1] in found for pair in expected), (expected, found)
    cross = {Path(pair["file_a"]).name for pair in report.cross_split()}
    assert {Path(copy).name for copy, _ in faults.test_copies + faults.val_copies} <= cross
    flagged = {Path(issue["file"]).name for issue in report.label_issues}
    flipped = {Path(file).name for file in faults.flipped}
    assert len(flagged & flipped) >= len(flipped) // 2, (flagged, flipped)
    html = (folder / "report.html").read_text()
    assert "Copies across splits: " in html and "data:image/png;base64," in html
    rows = list(csv.DictReader((folder / "label_issues.csv").open()))
    assert rows and {"file", "given_label", "suggested_label", "score"} <= set(rows[0])


@pytest.mark.slow
def test_clean_data_gives_a_clean_report(binary_digits, tmp_path):
    report, _, _, _, _ = _report(binary_digits, tmp_path / "mlruns")
    assert report.cross_split() == [] and report.within_split() == []
    assert len(report.label_issues) <= 0.05 * report.train_images
    assert report.notes == []


@pytest.mark.slow
def test_a_label_check_on_a_sample_says_so(binary_digits, tmp_path):
    report, folder, _, data, _ = _report(
        binary_digits,
        tmp_path / "mlruns",
        **{"data.quality.label_max_images": 60, "data.quality.checks": "[labels]"},
    )
    assert report.label_checked_images == 60 < report.train_images == len(data.splits["train"])
    assert any("sample of 60 of" in note and "label_max_images" in note for note in report.notes)
    assert "of 60 train images checked" in (folder / "report.html").read_text()
    assert report.metrics()["dq_label_issue_share"] == len(report.label_issues) / 60


@pytest.mark.slow
def test_the_cache_is_reused_for_the_same_data_and_not_for_other_data(
    binary_digits, multiclass_digits, tmp_path
):
    mlruns = tmp_path / "mlruns"
    first, folder, cached, _, _ = _report(binary_digits, mlruns)
    assert not cached
    again, same_folder, cached_again, _, _ = _report(binary_digits, mlruns)
    assert cached_again and same_folder == folder and again == first
    _, other_folder, cached_other, _, _ = _report(multiclass_digits, mlruns)
    assert not cached_other and other_folder != folder


@pytest.mark.slow
def test_a_study_warns_of_leaks_first_trains_without_flagged_files_and_checks_val_test(
    faulty_digits, tmp_path, capsys
):
    from sweep.run import run_sweep

    root, faults = faulty_digits
    cfg, overrides = _config(
        root,
        tmp_path / "mlruns",
        **{
            "search.n_trials": 1,
            "search.timeout_minutes": 30,
            "data.quality.drop_leaks": "true",
            "data.quality.exclude_label_issues": "true",
        },
    )
    result = run_sweep(cfg, overrides)
    lines = capsys.readouterr().out.splitlines()
    warning = next(i for i, line in enumerate(lines) if "copies across splits (" in line)
    first_trial = next(i for i, line in enumerate(lines) if line.startswith("trial 0:"))
    assert warning < first_trial
    assert "leak_test_" in lines[warning] or "leak_val_" in lines[warning]

    from pipelines.plan import tracking_from_config

    tracker = tracking_from_config(cfg)
    parent = tracker.get_run(result.parent_run_id)
    leaks = len(faults.test_copies) + len(faults.val_copies)
    assert int(parent.data.params["dq_removed_leaks"]) >= leaks
    assert int(parent.data.params["dq_removed_label_issues"]) > 0
    removed = tracker.load_text(result.parent_run_id, "data_quality/removed_from_train.csv")
    removed_files = [row["file"] for row in csv.DictReader(io.StringIO(removed))]
    assert all(
        any(Path(file).name == Path(copy).name for file in removed_files)
        for copy, _ in faults.test_copies + faults.val_copies
    )
    assert parent.data.metrics["dq_cross_split_duplicates"] >= leaks
    # The trial trained on the reduced train split: its data fingerprint says so.
    data = load_data(cfg)
    reduced = without_train_files(data, [{"file": file} for file in removed_files])
    trial = result.study.trials[0]
    trial_run = tracker.get_run(trial.user_attrs["mlflow_run_id"])
    assert trial_run.data.tags["data_fingerprint"] == fingerprint(reduced.splits)
    assert fingerprint(reduced.splits) != fingerprint(data.splits)
    assert "data report" in __import__("sweep.summary").summary.budget_line(result.study)
    # A worker the sweep would start gets the budget the report left, as the sweep did.
    from sweep.quality import SECONDS_ATTRIBUTE, worker_budget_after_report
    from sweep.session import open_session

    report_minutes = result.study.user_attrs[SECONDS_ATTRIBUTE] / 60
    worker = open_session(cfg, overrides, create=False)
    assert worker.timeout_minutes == 30
    worker_budget_after_report(worker)
    assert worker.timeout_minutes == pytest.approx(30 - report_minutes, abs=0.01)
    worker.lock.close()
    # After promotion: val and test label issues from the candidate's own predictions.
    parent = tracker.get_run(result.parent_run_id)
    assert {"dq_val_label_issues", "dq_test_label_issues"} <= set(parent.data.metrics)
    val_issues = tracker.load_text(result.parent_run_id, "data_quality/val_label_issues.csv")
    assert val_issues.startswith("rank,split,file,given_label,suggested_label,score")


@pytest.mark.slow
def test_files_to_remove_follows_the_settings(faulty_digits, tmp_path):
    root, faults = faulty_digits
    report, _, _, data, settings = _report(root, tmp_path / "mlruns")
    assert files_to_remove(report, settings) == []
    only_leaks = replace(settings, drop_leaks=True)
    removed = files_to_remove(report, only_leaks)
    assert {row["reason"] for row in removed} == {"leak"}
    reduced = without_train_files(data, removed)
    assert len(reduced.splits["train"]) == len(data.splits["train"]) - len(removed)
    assert reduced.splits["test"] == data.splits["test"]


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("data.quality.folds=1", "data.quality.folds"),
        ("data.quality.hash_distance=many", "data.quality.hash_distance"),
        ("data.quality.checks=[duplicates,spelling]", "data.quality.checks"),
        ("data.quality.drop_leaks=maybe", "data.quality.drop_leaks"),
        ("data.quality.label_max_images=-1", "data.quality.label_max_images"),
    ],
)
def test_bad_quality_settings_are_one_line(override, key, binary_digits, tmp_path, capsys):
    from pipelines.quality.__main__ import data_report

    overrides = small_overrides(binary_digits, tmp_path / "mlruns") + [override]
    with pytest.raises(ConfigError, match=key):
        quality_settings(compose_config(overrides))
    assert run_command(lambda: data_report(overrides)) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("imgsweep: error: " + key) and "\n" not in error


def test_small_classes_and_mixed_images_are_a_line_not_a_traceback(tmp_path):
    from tests.conftest import write_digit_folders

    root = write_digit_folders(
        tmp_path / "tiny", [3, 8], per_class={"train": 3, "val": 2, "test": 2}
    )
    Image.fromarray(np.full((12, 10, 3), 200, dtype=np.uint8)).save(
        root / "train" / "digit_3" / "odd.png"
    )
    report, _, _, _, _ = _report(
        root, tmp_path / "mlruns", **{"data.min_val_per_class": 0, "data.quality.folds": 5}
    )
    notes = " | ".join(report.notes)
    assert "label check skipped" in notes and "data.quality.folds" in notes
    assert "mixed sizes" in notes and "mixed colour modes" in notes
