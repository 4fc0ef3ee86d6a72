"""Shared PostgreSQL studies, several workers, killed workers, NaN trials, unreachable stores."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from pipelines.config import compose_config
from pipelines.errors import ImgsweepError
from sweep.run import run_sweep
from tests.conftest import small_overrides

TrialState = optuna.trial.TrialState


def _runs(mlruns, study_name):
    client = MlflowClient(f"sqlite:///{mlruns / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(study_name)
    return client.search_runs([experiment.experiment_id], max_results=1000)


def _files_containing(root, secret: str) -> list[str]:
    return [
        str(path)
        for path in root.rglob("*")
        if path.is_file() and secret.encode() in path.read_bytes()
    ]


@pytest.mark.slow
def test_two_workers_on_postgres_reach_exactly_n_trials(binary_digits, tmp_path, postgres, capfd):
    mlruns = tmp_path / "mlruns"
    overrides = small_overrides(
        binary_digits,
        mlruns,
        **{
            "search.storage": postgres.url(),
            "search.study_name": "two_workers",
            "search.n_trials": 4,
            "search.workers": 2,
            "search.pruner.name": "none",
        },
    )
    result = run_sweep(compose_config(overrides), overrides)

    trials = result.study.get_trials()
    assert [trial.state for trial in trials].count(TrialState.COMPLETE) == 4
    assert len(trials) == 4
    assert sorted(trial.number for trial in trials) == [0, 1, 2, 3]
    runs = _runs(mlruns, "two_workers")
    trial_runs = [run for run in runs if "trial_number" in run.data.tags]
    assert sorted(int(run.data.tags["trial_number"]) for run in trial_runs) == [0, 1, 2, 3]
    assert all(run.info.status == "FINISHED" for run in runs)
    assert {trial.user_attrs["mlflow_run_id"] for trial in trials} == {
        run.info.run_id for run in trial_runs
    }
    output = capfd.readouterr()
    assert "[worker 1]" in output.out and "[worker 2]" in output.out
    # The password is in the URL we passed, yet nowhere in what the sweep wrote or printed.
    assert _files_containing(mlruns, postgres.password) == []
    assert postgres.password not in output.out + output.err
    parent = next(run for run in runs if run.data.tags.get("role") == "study")
    assert parent.data.tags["storage"] == postgres.url("***")


def _wait_for_running_trial(storage: str, study_name: str, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            study = optuna.load_study(study_name=study_name, storage=storage)
            for trial in study.get_trials(states=(TrialState.RUNNING,)):
                if "mlflow_run_id" in trial.user_attrs:
                    return trial.number
        except KeyError:
            pass
        time.sleep(0.5)
    raise TimeoutError("no trial started")


@pytest.mark.slow
def test_a_worker_killed_mid_trial_is_retried_and_nothing_is_left_running(
    binary_digits, tmp_path, postgres
):
    mlruns = tmp_path / "mlruns"
    overrides = small_overrides(
        binary_digits,
        mlruns,
        **{
            "search.storage": postgres.url(),
            "search.study_name": "killed",
            "search.n_trials": 2,
            "search.heartbeat_interval": 1,
            "search.grace_period": 3,
            "search.pruner.name": "none",
            # Long enough a full stage that the kill lands mid-trial.
            "stages.full.max_epochs": 40,
            "stages.full.early_stopping_patience": 40,
        },
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "sweep", *overrides],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        killed_number = _wait_for_running_trial(postgres.url(), "killed")
        time.sleep(1.5)
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()

    resumed = overrides + ["stages.full.max_epochs=2"]
    result = run_sweep(compose_config(resumed), resumed)

    trials = {trial.number: trial for trial in result.study.get_trials()}
    killed = trials[killed_number]
    assert killed.state == TrialState.FAIL
    retries = [
        trial for trial in trials.values() if trial.user_attrs.get("retry_of") == killed_number
    ]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == killed.params
    assert [trial.state for trial in trials.values()].count(TrialState.COMPLETE) == 2
    runs = _runs(mlruns, "killed")
    assert [run.info.run_id for run in runs if run.info.status == "RUNNING"] == []
    killed_run = next(run for run in runs if run.info.run_id == killed.user_attrs["mlflow_run_id"])
    assert killed_run.info.status == "KILLED"
    reason = (
        f"worker died: no heartbeat for 3 s; run again as a new trial (retry_of={killed_number})"
    )
    assert killed_run.data.tags["reason"] == reason
    # Optuna's record says why too, and so the study's trials.csv; its retry has no reason.
    assert killed.user_attrs["reason"] == reason
    assert retries[0].user_attrs.get("reason") is None
    client = MlflowClient(f"sqlite:///{mlruns / 'mlflow.db'}")
    table = client.download_artifacts(result.parent_run_id, "trials.csv", str(tmp_path))
    rows = {row.split(",")[0]: row for row in Path(table).read_text().splitlines()}
    assert rows[str(killed_number)].startswith(f"{killed_number},FAIL,{reason},")


@pytest.mark.slow
def test_a_diverging_learning_rate_is_pruned_with_its_reason(binary_digits, tmp_path):
    mlruns = tmp_path / "mlruns"
    overrides = small_overrides(
        binary_digits,
        mlruns,
        **{"optimizer": "sgd", "optimizer.learning_rate": 10000.0, "search.n_trials": 1},
    )
    result = run_sweep(compose_config(overrides), overrides)
    (trial,) = result.study.get_trials()
    assert trial.state == TrialState.PRUNED
    assert re.fullmatch(
        r"(ablation|overfit|full): nan loss at epoch \d+", trial.user_attrs["reason"]
    )


def test_consecutive_failures_stop_the_sweep_with_one_line(binary_digits, tmp_path):
    overrides = small_overrides(
        binary_digits,
        tmp_path / "mlruns",
        **{"model.conv_blocks": 5, "search.n_trials": 10, "search.max_consecutive_failures": 3},
    )
    with pytest.raises(
        ImgsweepError, match="3 trials failed in a row .*the setup is likely wrong"
    ):
        run_sweep(compose_config(overrides), overrides)
    study = optuna.load_study(
        study_name="test_study", storage=f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}"
    )
    assert len(study.trials) == 3
    assert all(run.info.status != "RUNNING" for run in _runs(tmp_path / "mlruns", "test_study"))


def _cli(overrides: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sweep", *overrides], capture_output=True, text=True, timeout=180
    )


def _one_line(completed: subprocess.CompletedProcess) -> str:
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert completed.returncode == 2, completed.stderr
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.slow
def test_wrong_password_and_unreachable_storage_give_one_line(binary_digits, tmp_path, postgres):
    base = small_overrides(binary_digits, tmp_path / "mlruns")
    wrong = _one_line(_cli([*base, f"search.storage={postgres.url('not-the-password')}"]))
    assert wrong.startswith("imgsweep: error: search.storage 'postgresql://imgsweep:***@")
    assert "password authentication failed" in wrong
    assert "not-the-password" not in wrong

    closed = postgres.url().replace(str(postgres.port), "9")
    unreachable = _one_line(_cli([*base, f"search.storage={closed}"]))
    assert "cannot be opened" in unreachable and postgres.password not in unreachable


def test_unreachable_tracking_server_gives_one_line_before_training(binary_digits, tmp_path):
    base = small_overrides(binary_digits, tmp_path / "mlruns")
    started = time.monotonic()
    line = _one_line(_cli([*base, "tracking.tracking_uri=http://127.0.0.1:9"]))
    assert line.startswith("imgsweep: error: tracking.tracking_uri 'http://127.0.0.1:9' does not")
    assert time.monotonic() - started < 60
