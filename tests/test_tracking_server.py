"""A sweep against a real MLflow server, and what happens when the server goes away."""

import threading
import time

import optuna
import pytest
from mlflow import MlflowClient

from pipelines.config import compose_config
from pipelines.errors import ImgsweepError
from servers.mlflow_ui import start_server
from servers.processes import free_port, stop_server, wait_until_ready
from sweep.run import run_sweep
from tests.conftest import small_overrides

TrialState = optuna.trial.TrialState


@pytest.mark.slow
def test_server_lost_mid_sweep_fails_trials_cleanly_and_keeps_completed_ones(
    binary_digits, tmp_path
):
    server_dir = tmp_path / "server"
    port = free_port(0, "127.0.0.1")
    server = start_server(mlruns_dir=server_dir, host="127.0.0.1", port=port)
    url = f"http://127.0.0.1:{port}"
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    try:
        wait_until_ready(url, server)
        overrides = small_overrides(
            binary_digits,
            tmp_path / "mlruns",
            **{
                "tracking.tracking_uri": url,
                "tracking.retry_seconds": 3,
                "search.storage": storage,
                "search.n_trials": 4,
                "search.max_consecutive_failures": 2,
                "registry.promote_after_sweep": "false",
            },
        )

        def stop_after_first_complete_trial():
            while True:
                try:
                    study = optuna.load_study(study_name="test_study", storage=storage)
                    if study.get_trials(states=(TrialState.COMPLETE,)):
                        break
                except KeyError:
                    pass
                time.sleep(0.2)
            stop_server(server)

        stopper = threading.Thread(target=stop_after_first_complete_trial, daemon=True)
        stopper.start()
        started = time.monotonic()
        with pytest.raises(ImgsweepError, match="2 trials failed in a row"):
            run_sweep(compose_config(overrides), overrides)
        assert time.monotonic() - started < 120  # bounded by retry_seconds, never a hang
    finally:
        stop_server(server)

    trials = optuna.load_study(study_name="test_study", storage=storage).get_trials()
    assert trials[0].state == TrialState.COMPLETE
    failed = [trial for trial in trials if trial.state == TrialState.FAIL]
    assert len(failed) == 2
    assert all("failed for 3 s" in trial.user_attrs["reason"] for trial in failed)
    assert not [trial for trial in trials if trial.state == TrialState.RUNNING]
    # The server's own store kept the completed trial's runs, all FINISHED.
    client = MlflowClient(f"sqlite:///{server_dir / 'mlflow.db'}")
    run = client.get_run(trials[0].user_attrs["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    (full_stage,) = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}' and tags.stage = 'full'",
    )
    assert "val_auc" in full_stage.data.metrics
