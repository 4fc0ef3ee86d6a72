"""A PostgreSQL restart mid-study: ridden out within search.storage_retry_seconds, one line and a
clean stop past it. A real throwaway cluster, stopped and started under a real 2-worker sweep."""

import subprocess
import sys
import time

import optuna
import pytest
from mlflow import MlflowClient

from tests.conftest import small_overrides
from tests.postgres import postgres_bin, throwaway_cluster
from tests.test_stops import wait_for_full_stage

TrialState = optuna.trial.TrialState


@pytest.fixture
def cluster():
    """A cluster of this test's own: the test stops and starts it."""
    if postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed: sudo apt-get install postgresql")
    with throwaway_cluster(("optuna",)) as started:
        yield started


def _overrides(data, mlruns, storage: str, study: str, **extra) -> list[str]:
    return small_overrides(
        data,
        mlruns,
        **{
            "search.storage": storage,
            "search.study_name": study,
            "search.n_trials": 4,
            "search.workers": 2,
            "search.pruner.name": "none",
            "search.heartbeat_interval": 1,
            "search.grace_period": 20,
            "stages.full.max_epochs": 8,
            "registry.promote_after_sweep": "false",
            **extra,
        },
    )


def _sweep(overrides: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sweep", *overrides],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _runs(mlruns, study: str):
    client = MlflowClient(f"sqlite:///{mlruns / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(study)
    return client.search_runs([experiment.experiment_id], max_results=1000)


@pytest.mark.slow
def test_a_postgres_restart_mid_study_loses_and_repeats_nothing(binary_digits, tmp_path, cluster):
    mlruns, study = tmp_path / "mlruns", "pg_restart"
    sweep = _sweep(_overrides(binary_digits, mlruns, cluster.url(), study))
    wait_for_full_stage(sweep, mlruns, study)

    cluster.stop()
    time.sleep(5)  # both workers' trials go on training; their storage calls wait
    cluster.start()
    stdout, stderr = sweep.communicate(timeout=600)

    assert sweep.returncode == 0, stderr
    assert "does not answer" in stderr and "answers again" in stderr
    assert "Traceback" not in stderr
    trials = optuna.load_study(study_name=study, storage=cluster.url()).get_trials()
    assert [trial.state for trial in trials] == [TrialState.COMPLETE] * 4
    runs = _runs(mlruns, study)
    trial_runs = [run for run in runs if "trial_number" in run.data.tags]
    assert sorted(int(run.data.tags["trial_number"]) for run in trial_runs) == [0, 1, 2, 3]
    assert {run.info.status for run in runs} == {"FINISHED"}


@pytest.mark.slow
def test_a_postgres_outage_past_the_limit_stops_cleanly_and_resumes(
    binary_digits, tmp_path, cluster
):
    mlruns, study = tmp_path / "mlruns", "pg_down"
    overrides = _overrides(
        binary_digits,
        mlruns,
        cluster.url(),
        study,
        **{"search.workers": 1, "search.n_trials": 2, "search.storage_retry_seconds": 4},
    )
    sweep = _sweep(overrides)
    wait_for_full_stage(sweep, mlruns, study)
    cluster.stop()
    try:
        stdout, stderr = sweep.communicate(timeout=120)
    finally:
        cluster.start()

    assert sweep.returncode == 2, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("imgsweep: error: search.storage 'postgresql://imgsweep:***@")
    assert "did not answer for 4 s" in last and "resumes the study" in last
    assert "Traceback" not in stderr and cluster.password not in stderr
    runs = _runs(mlruns, study)
    assert [run.info.run_name for run in runs if run.info.status == "RUNNING"] == []
    trial_run = next(run for run in runs if "trial_number" in run.data.tags)
    assert trial_run.info.status == "KILLED" and "did not answer" in trial_run.data.tags["reason"]

    # Back up: the unfinished trial is found without heartbeats and run again, once.
    resumed = subprocess.run(
        [sys.executable, "-m", "sweep", *overrides, "search.grace_period=2"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    trials = optuna.load_study(study_name=study, storage=cluster.url()).get_trials()
    assert [trial.state for trial in trials].count(TrialState.COMPLETE) == 2
    (failed,) = [trial for trial in trials if trial.state == TrialState.FAIL]
    assert [trial.user_attrs.get("retry_of") for trial in trials].count(failed.number) == 1
    assert all(run.info.status != "RUNNING" for run in _runs(mlruns, study))
