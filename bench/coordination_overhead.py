"""Per-trial coordination cost (Optuna storage + MLflow tracking calls), no training, side by side:
the sqlite defaults vs PostgreSQL storage and an MLflow server with a PostgreSQL backend.

    python -m bench.coordination_overhead [--trials 10] [--epochs 10]

Each simulated trial makes the calls a real one makes: take a trial under the study lock,
8 suggestions, 5 user attributes, a report and prune check per epoch, tell; on the MLflow side
a trial run and three stage runs with params, config and class-name artifacts, one metrics
write per full-stage epoch and one for each short stage, a logged Keras model, ends.
"""

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from pipelines.tracking import RunStatus, connect_tracking
from servers.mlflow_ui import start_server
from servers.processes import free_port, stop_server, wait_until_ready
from sweep.locks import StudyLock
from sweep.loop import _next_trial
from sweep.storage import build_storage
from sweep.study import build_pruner, build_sampler, open_study
from tests.postgres import throwaway_cluster


def _storage_side(study, lock, epochs: int) -> float:
    started = time.perf_counter()
    trial = _next_trial(study, lock, n_trials=10**6)
    for index in range(8):
        trial.suggest_float(f"param_{index}", 0.0, 1.0)
    for name in ("overrides", "mlflow_run_id", "state", "model_uri", "best_epoch"):
        trial.set_user_attr(name, "value")
    for epoch in range(epochs):
        trial.report(0.5 + epoch / 100, step=epoch)
        trial.should_prune()
    study.tell(trial, 0.9)
    return time.perf_counter() - started


def _tracking_side(tracker, parent: str, model, sample, epochs: int) -> float:
    started = time.perf_counter()
    run_id = tracker.start_run("trial", parent_run_id=parent, tags={"trial_number": 0})
    tracker.log_params(run_id, {f"param_{index}": 0.5 for index in range(8)})
    tracker.log_text(run_id, "config: here\n" * 80, "config.yaml")
    tracker.log_json(run_id, ["a", "b"], "class_names.json")
    for stage, stage_epochs in (("ablation", 1), ("overfit", epochs), ("full", epochs)):
        stage_id = tracker.start_run(stage, parent_run_id=run_id, tags={"stage": stage})
        tracker.log_params(stage_id, {"images": 200})
        metrics = {"loss": 0.3, "accuracy": 0.9, "auc": 0.95, "lr": 0.001}
        if stage == "full":
            # Full-stage epochs take seconds: each is its own write, live in the UI.
            metrics |= {"val_loss": 0.3, "val_accuracy": 0.9, "val_auc": 0.95}
            for epoch in range(stage_epochs):
                tracker.log_metrics(stage_id, metrics, step=epoch)
        else:
            # Sub-second epochs are sent together (EpochMetricsLogger's flush interval).
            tracker.log_metric_steps(stage_id, [(epoch, metrics) for epoch in range(stage_epochs)])
        if stage == "full":
            tracker.log_keras_model(stage_id, model, sample)
            tracker.log_metrics(stage_id, {"best_val_auc": 0.95, "best_epoch": 3})
            tracker.set_tags(stage_id, {"model_uri": "models:/x"})
        tracker.end_run(stage_id, RunStatus.FINISHED)
    tracker.set_tags(run_id, {"optuna_state": "COMPLETE"})
    tracker.log_metrics(run_id, {"best_val_auc": 0.95})
    tracker.end_run(run_id, RunStatus.FINISHED)
    return time.perf_counter() - started


def measure(storage_url: str, tracking_uri: str | None, mlruns: Path, args) -> tuple[float, float]:
    """Median seconds per trial on the storage side and on the tracking side."""
    storage = build_storage(
        storage_url, heartbeat_interval=10, grace_period=30, max_retry=1,
        on_stale_trial=lambda study, trial: None,
    )  # fmt: skip
    name = f"bench_{time.time_ns()}"
    study = open_study(
        study_name=name,
        storage=storage,
        sampler=build_sampler({"name": "random"}, seed=0),
        pruner=build_pruner({"name": "median", "median": {"n_warmup_steps": 2}}),
    )
    lock = StudyLock(storage_url, name)
    tracker = connect_tracking(mlruns_dir=mlruns, tracking_uri=tracking_uri, experiment_name=name)
    parent = tracker.start_run("study")
    inputs = keras.Input((28, 28, 1))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(inputs)))
    sample = np.zeros((4, 28, 28, 1), "float32")
    _tracking_side(tracker, parent, model, sample, args.epochs)  # warm imports and connections
    storage_times, tracking_times = [], []
    for _ in range(args.trials):
        storage_times.append(_storage_side(study, lock, args.epochs))
        tracking_times.append(_tracking_side(tracker, parent, model, sample, args.epochs))
    lock.close()
    return statistics.median(storage_times), statistics.median(tracking_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as scratch, contextlib.ExitStack() as stack:
        scratch = Path(scratch)
        results["sqlite + sqlite (defaults)"] = measure(
            f"sqlite:///{scratch / 'optuna.db'}", None, scratch / "local", args
        )
        cluster = stack.enter_context(throwaway_cluster())
        port = free_port(0, "127.0.0.1")
        server = start_server(
            mlruns_dir=scratch / "server", host="127.0.0.1", port=port,
            backend_store_uri=cluster.url(database="mlflow"),
        )  # fmt: skip
        stack.callback(stop_server, server)
        wait_until_ready(f"http://127.0.0.1:{port}", server)
        results["PostgreSQL + MLflow server"] = measure(
            cluster.url(), f"http://127.0.0.1:{port}", scratch / "client", args
        )
    print(f"per-trial coordination, median of {args.trials} trials ({args.epochs} epochs/stage)")
    print(f"{'':30}{'storage s':>10}{'tracking s':>12}{'total s':>10}")
    for name, (storage_s, tracking_s) in results.items():
        print(f"{name:30}{storage_s:>10.3f}{tracking_s:>12.3f}{storage_s + tracking_s:>10.3f}")
    local, shared = (sum(times) for times in results.values())
    print(f"ratio shared / defaults: {shared / local:.2f}x")


if __name__ == "__main__":
    main()
