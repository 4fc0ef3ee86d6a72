"""A full disk under the checkpoints or the data cache: one line naming the file and the space
it needs, no half-written file, and mlruns/ still readable. The disk is a real 2 MB tmpfs."""

import contextlib
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from pipelines.config import compose_config
from sweep.run import run_sweep
from tests.conftest import small_overrides

TrialState = optuna.trial.TrialState


@pytest.fixture
def full_disk(tmp_path) -> Path:
    """A 2 MB tmpfs with 12 KB left: room for nothing this project writes."""
    mount_point = tmp_path / "small_disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        filler = mount_point / "filler"
        with contextlib.suppress(OSError), open(filler, "wb") as handle:
            handle.write(b"\0" * (shutil.disk_usage(mount_point).free - 12 * 1024))
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _partial_files(folder: Path) -> list[str]:
    return [path.name for path in folder.rglob("*") if "partial" in path.name]


def test_a_full_disk_under_the_checkpoint_fails_the_trial_with_one_line(
    binary_digits, tmp_path, full_disk
):
    mlruns = tmp_path / "mlruns"
    mlruns.mkdir()
    (mlruns / "checkpoints").symlink_to(full_disk)
    overrides = small_overrides(binary_digits, mlruns, **{"search.n_trials": 1})

    result = run_sweep(compose_config(overrides), overrides)

    (trial,) = result.study.get_trials()
    assert trial.state == TrialState.FAIL
    reason = trial.user_attrs["reason"]
    assert reason.startswith(
        f"no space left on the device for the checkpoint {mlruns}/checkpoints/test_study-0.keras "
        "(about "
    )
    assert " MB needed, 0.0 MB free in " in reason and reason.endswith("and run again")
    assert _partial_files(full_disk) == []
    assert not (full_disk / "test_study-0.keras").exists()
    # mlruns/ reads as before: the trial's runs ended FAILED with the reason.
    client = MlflowClient(f"sqlite:///{mlruns / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("test_study")
    runs = client.search_runs([experiment.experiment_id])
    trial_run = next(run for run in runs if run.data.tags.get("trial_number") == "0")
    assert (trial_run.info.status, trial_run.data.tags["reason"]) == ("FAILED", reason)
    assert all(run.info.status != "RUNNING" for run in runs)


def test_a_full_disk_under_the_data_cache_stops_the_sweep_with_one_line(
    binary_digits, tmp_path, full_disk
):
    mlruns = tmp_path / "mlruns"
    mlruns.mkdir()
    (mlruns / "cache").symlink_to(full_disk)
    overrides = small_overrides(binary_digits, mlruns)

    completed = subprocess.run(
        [sys.executable, "-m", "sweep", *overrides], capture_output=True, text=True, timeout=300
    )

    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert completed.returncode == 2, completed.stderr
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"imgsweep: error: no space left on the device for the decoded-image cache "
        f"{mlruns}/cache/decoded-"
    )
    assert " MB needed, 0.0 MB free in " in lines[0]
    assert _partial_files(full_disk) == []
    assert [path.name for path in full_disk.iterdir()] == ["filler"]
