"""SIGTERM and SIGINT are a clean stop: real signals to real `python -m sweep` processes."""

import re
import signal
import subprocess
import sys
import time

import optuna
import pytest
from mlflow import MlflowClient

from pipelines.config import compose_config
from sweep.run import run_sweep
from tests.conftest import small_overrides

TrialState = optuna.trial.TrialState


def _sweep_overrides(data, mlruns, study: str, **extra) -> list[str]:
    return small_overrides(
        data,
        mlruns,
        **{
            "search.study_name": study,
            "search.n_trials": 2,
            "search.pruner.name": "none",
            # Long enough a full stage that the signal lands mid-training.
            "stages.full.max_epochs": 60,
            "stages.full.early_stopping_patience": 60,
            "registry.promote_after_sweep": "false",
            **extra,
        },
    )


def _storage(mlruns) -> str:
    return f"sqlite:///{mlruns / 'optuna.db'}"


def _runs(mlruns, study: str):
    client = MlflowClient(f"sqlite:///{mlruns / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(study)
    return client.search_runs([experiment.experiment_id], max_results=1000)


def wait_for_full_stage(process, mlruns, study: str, timeout: float = 300) -> None:
    """Until a full stage has ended an epoch: its best-epoch checkpoint is on disk. (Files,
    not the MLflow store: a client opening a new sqlite store while the sweep creates it
    would race the sweep's schema migration.)"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the sweep ended first: {process.communicate()}")
        if list((mlruns / "checkpoints").glob(f"{study}-*.keras")):
            return
        time.sleep(0.5)
    raise TimeoutError("no full stage started")


def _start(overrides: list[str], **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sweep", *overrides],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _stop(process: subprocess.Popen, signal_number: int) -> tuple[int, str, float]:
    sent = time.monotonic()
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr, time.monotonic() - sent


def _check_stopped(mlruns, study: str, signal_name: str) -> optuna.trial.FrozenTrial:
    """Nothing left RUNNING; the stopped trial and its runs say why; its retry is queued."""
    trials = optuna.load_study(study_name=study, storage=_storage(mlruns)).get_trials()
    assert [trial.state for trial in trials].count(TrialState.RUNNING) == 0
    (stopped,) = [trial for trial in trials if trial.state == TrialState.FAIL]
    reason = stopped.user_attrs["reason"]
    assert reason.startswith(f"stopped by {signal_name} at epoch ")
    assert reason.endswith("; resumes as a new trial")
    (queued,) = [
        trial
        for trial in trials
        if trial.state == TrialState.WAITING
        and trial.system_attrs.get("failed_trial") == stopped.number
    ]
    assert queued.params == stopped.params
    runs = {run.info.run_id: run for run in _runs(mlruns, study)}
    assert [run.info.run_name for run in runs.values() if run.info.status == "RUNNING"] == []
    trial_run = runs[stopped.user_attrs["mlflow_run_id"]]
    assert (trial_run.info.status, trial_run.data.tags["reason"]) == ("KILLED", reason)
    full = next(
        run
        for run in runs.values()
        if run.data.tags.get("mlflow.parentRunId") == trial_run.info.run_id
        and run.info.run_name == "full"
    )
    assert full.info.status == "KILLED"
    assert full.data.tags["reason"] == f"full: {reason.split(';')[0]}"
    study_run = next(run for run in runs.values() if run.data.tags.get("role") == "study")
    assert study_run.info.status == "KILLED"
    assert study_run.data.tags["reason"].startswith(f"stopped by {signal_name}")
    return stopped


def _check_checkpoint(mlruns, study: str, trial_number: int) -> None:
    """The best-epoch checkpoint of the stopped trial loads; no partial file is left."""
    import keras

    folder = mlruns / "checkpoints"
    assert [path.name for path in folder.iterdir() if "partial" in path.name] == []
    keras.models.load_model(folder / f"{study}-{trial_number}.keras")


def _resume_and_check(overrides: list[str], mlruns, study: str, stopped) -> None:
    """The resumed study runs the stopped configuration once more and ends with 2 trials."""
    resumed = overrides + ["stages.full.max_epochs=2"]
    result = run_sweep(compose_config(resumed), resumed)
    trials = result.study.get_trials()
    complete = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    assert len(complete) == 2
    retries = [trial for trial in trials if trial.user_attrs.get("retry_of") == stopped.number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == stopped.params
    assert all(run.info.status != "RUNNING" for run in _runs(mlruns, study))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signal_number", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)]
)
def test_a_signal_stops_the_sweep_cleanly_and_the_study_resumes(
    binary_digits, tmp_path, signal_number, status
):
    mlruns, name = tmp_path / "mlruns", signal.Signals(signal_number).name
    study = f"stopped_{name.lower()}"
    overrides = _sweep_overrides(binary_digits, mlruns, study)
    # As a shell starts a background job (`make sweep &`): with SIGINT ignored.
    sweep = _start(overrides, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    wait_for_full_stage(sweep, mlruns, study)

    code, stderr, seconds = _stop(sweep, signal_number)

    assert code == status, stderr
    assert seconds < 20
    assert stderr.strip().splitlines()[-1].startswith(f"imgsweep: stopped by {name} at epoch ")
    assert "Traceback" not in stderr
    stopped = _check_stopped(mlruns, study, name)
    _check_checkpoint(mlruns, study, stopped.number)
    _resume_and_check(overrides, mlruns, study, stopped)


@pytest.mark.slow
def test_a_second_signal_stops_make_train_at_once(binary_digits, tmp_path):
    mlruns = tmp_path / "mlruns"
    # Epochs of several seconds (one 192x192 image a step, the gates off): the first signal,
    # early in the second epoch, alone would wait for its end.
    overrides = _sweep_overrides(
        binary_digits,
        mlruns,
        "single_run",
        **{
            "stages.full.batch_size": 1,
            "data.image_size": "[192,192]",
            "model.base_filters": 64,
            "stages.ablation.enabled": "false",
            "stages.overfit.enabled": "false",
        },
    )
    train = subprocess.Popen(
        [sys.executable, "-m", "pipelines.train", *overrides],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_full_stage(train, mlruns, "single")
    train.send_signal(signal.SIGTERM)
    time.sleep(1.2)
    code, stderr, seconds = _stop(train, signal.SIGTERM)

    assert code == 143, stderr
    assert "stopping at the end of this epoch" in stderr
    last_line = stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"imgsweep: stopped by SIGTERM during epoch \d+", last_line)
    # Seconds on an idle machine (the runs recorded, TensorFlow shut down); roomy for a shared one.
    assert seconds < 60
    runs = _runs(mlruns, "single_run")
    assert all(run.info.status == "KILLED" for run in runs if run.data.tags.get("stage") == "full")
    single = next(run for run in runs if run.data.tags.get("role") == "single_run")
    assert single.info.status == "KILLED"
    assert single.data.tags["reason"] == last_line.removeprefix("imgsweep: ")


@pytest.mark.slow
def test_sigterm_to_a_two_worker_sweep_reaches_its_workers(binary_digits, tmp_path):
    mlruns, study = tmp_path / "mlruns", "stopped_workers"
    overrides = _sweep_overrides(binary_digits, mlruns, study, **{"search.workers": 2})
    sweep = _start(overrides)
    wait_for_full_stage(sweep, mlruns, study)
    time.sleep(2)  # the second worker's trial under way too, most likely

    # The parent alone, as Kubernetes and `docker stop` signal a container's first process.
    code, stderr, seconds = _stop(sweep, signal.SIGTERM)

    assert code == 143, stderr
    assert seconds < 30
    trials = optuna.load_study(study_name=study, storage=_storage(mlruns)).get_trials()
    assert [trial.state for trial in trials].count(TrialState.RUNNING) == 0
    assert all(run.info.status != "RUNNING" for run in _runs(mlruns, study))
    workers = subprocess.run(["pgrep", "-f", f"sweep.worker .*{study}"], capture_output=True)
    assert workers.stdout == b""


POOL_SCRIPT = """
import multiprocessing, time
from pipelines.stopping import install_stop_handlers
install_stop_handlers()
pool = multiprocessing.get_context("fork").Pool(2)
assert pool.map(abs, [-1, -2]) == [1, 2]
time.sleep(0.5)  # the workers wait for work, as cleanlab's do when it is done
pool.terminate()  # SIGTERM to each worker
pool.join()
print("done")
"""


def test_a_forked_pool_worker_ends_on_sigterm_without_a_traceback():
    result = subprocess.run(
        [sys.executable, "-c", POOL_SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
    assert "Traceback" not in result.stderr and "Stopped" not in result.stderr, result.stderr
