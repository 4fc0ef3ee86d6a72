"""A 2-worker PostgreSQL study with an MLflow tracking server, hit by the faults a cluster sends.

    python -m bench.faults_mixed [--faults 12] [--trials 10] [--seed 0]   (make bench-faults)

At random moments: SIGTERM to the sweep (passed on to its workers), SIGKILL to one worker, a
PostgreSQL restart and an MLflow tracking-server restart, in turn (shuffled). Whenever the
sweep has exited it is started again, as a scheduler restarts a job; after the last fault it
runs to the end. Then it counts what must be 0: completed trials lost, trials and runs left
RUNNING, duplicate runs, runs ended without a reason, and epochs missing from the metrics of
complete trials (logged while the tracking server was down).
"""

import argparse
import contextlib
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import optuna
from mlflow import MlflowClient

from bench.fault_injection import complete_numbers, duplicate_runs, study_runs, worker_pids
from bench.tiny_study import tiny_study_overrides, write_tiny_data
from servers.mlflow_ui import start_server
from servers.processes import free_port, stop_server, wait_until_ready
from tests.postgres import throwaway_cluster

STUDY = "fault_injection"
FAULTS = ("SIGTERM", "SIGKILL", "PostgreSQL restart", "MLflow restart")


class Faults:
    """The study's processes and servers, and one method per fault."""

    def __init__(self, overrides: list[str], cluster, mlruns: Path, port: int):
        self.overrides, self.cluster, self.mlruns, self.port = overrides, cluster, mlruns, port
        self.server = self._start_server()
        self.sweep = self._start_sweep()
        self.restarts = 0

    def _start_server(self) -> subprocess.Popen:
        server = start_server(mlruns_dir=self.mlruns, host="127.0.0.1", port=self.port)
        wait_until_ready(f"http://127.0.0.1:{self.port}", server)
        return server

    def _start_sweep(self) -> subprocess.Popen:
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        return subprocess.Popen([sys.executable, "-m", "sweep", *self.overrides], **quiet)

    def keep_running(self) -> None:
        """Start the sweep again if it has exited (stopped, or a worker killed)."""
        if self.sweep.poll() is not None:
            self.sweep = self._start_sweep()
            self.restarts += 1

    def _wait_for_training(self, timeout: float = 180) -> None:
        """Until a trial is under way: a stop or a kill before any is a restart, not a fault."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.sweep.poll() is None:
            with contextlib.suppress(KeyError):  # the study is not created yet
                study = optuna.load_study(study_name=STUDY, storage=self.cluster.url())
                running = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
                if any("mlflow_run_id" in trial.user_attrs for trial in running):
                    return
            time.sleep(1)

    def inject(self, fault: str) -> None:
        if fault in ("SIGTERM", "SIGKILL"):
            self._wait_for_training()
        if fault == "SIGTERM":
            self.sweep.send_signal(signal.SIGTERM)
            self.sweep.wait(timeout=180)
        elif fault == "SIGKILL":
            pids = worker_pids(STUDY)
            if pids:
                subprocess.run(["kill", "-9", str(random.choice(pids))], check=False)
        elif fault == "PostgreSQL restart":
            self.cluster.stop()
            time.sleep(2)
            self.cluster.start()
        else:
            stop_server(self.server)
            self.server = self._start_server()

    def finish(self) -> None:
        """Run the sweep to the end: again while it exits with an error (a killed worker)."""
        for _ in range(5):
            if self.sweep.wait(timeout=900) == 0:
                break
            self.sweep = self._start_sweep()
            self.restarts += 1
        stop_server(self.server)


def count_losses(storage: str, mlruns: Path, complete_before: set[int]) -> dict[str, int]:
    trials = optuna.load_study(study_name=STUDY, storage=storage).get_trials()
    client = MlflowClient(f"sqlite:///{mlruns / 'mlflow.db'}")
    runs = study_runs(mlruns, STUDY)
    missing_epochs = 0
    for trial in trials:
        if trial.state != optuna.trial.TrialState.COMPLETE:
            continue
        full = [
            run
            for run in runs
            if run.data.tags.get("mlflow.parentRunId") == trial.user_attrs["mlflow_run_id"]
            and run.info.run_name == "full"
        ]
        logged = len(client.get_metric_history(full[0].info.run_id, "val_auc")) if full else 0
        missing_epochs += trial.user_attrs["full_epochs"] - logged
    states = Counter(trial.state.name for trial in trials)
    return {
        "completed trials lost": len(complete_before - complete_numbers(storage, STUDY)),
        "trials left RUNNING": states.get("RUNNING", 0),
        "MLflow runs left RUNNING": sum(run.info.status == "RUNNING" for run in runs),
        "duplicate runs": duplicate_runs(runs),
        "runs ended without a reason": sum(
            run.info.status in ("FAILED", "KILLED") and "reason" not in run.data.tags
            for run in runs
        ),
        "epochs missing from metrics": missing_epochs,
        "complete trials": states.get("COMPLETE", 0),
        "trials stopped or killed, run again": sum(
            trial.user_attrs.get("retry_of") is not None for trial in trials
        ),
        "trials in all": len(trials),
    }


def failure_reasons(storage: str) -> Counter:
    """The failed trials' reasons, numbers and epochs left out (what stopped them, how)."""
    trials = optuna.load_study(study_name=STUDY, storage=storage).get_trials()
    return Counter(
        re.sub(r"\d+", "N", trial.user_attrs.get("reason") or "(none)")
        for trial in trials
        if trial.state == optuna.trial.TrialState.FAIL
    )


def run_bench(scratch: Path, *, faults: int, trials: int, seed: int) -> tuple[dict, Counter]:
    rng = random.Random(seed)
    random.seed(seed)
    data, mlruns = write_tiny_data(scratch / "digits"), scratch / "mlruns"
    schedule = [FAULTS[index % len(FAULTS)] for index in range(faults)]
    rng.shuffle(schedule)
    with throwaway_cluster(("optuna",)) as cluster:
        storage, port = cluster.url(), free_port(5000, "127.0.0.1")
        overrides = tiny_study_overrides(
            data, mlruns, study=STUDY, storage=storage, trials=trials, workers=2, epochs=6
        ) + [
            f"tracking.tracking_uri=http://127.0.0.1:{port}",
            "tracking.retry_seconds=120",
            "search.grace_period=15",
            "search.storage_retry_seconds=30",
        ]
        study = Faults(overrides, cluster, mlruns, port)
        complete_before: set[int] = set()
        for fault in schedule:
            time.sleep(rng.uniform(6, 16))
            complete_before |= complete_numbers(storage, STUDY)
            print(f"  {time.strftime('%H:%M:%S')} {fault}", flush=True)
            study.inject(fault)
            study.keep_running()
        study.finish()
        counts = count_losses(storage, mlruns, complete_before)
        counts["sweep restarts"] = study.restarts
        for reason, count in failure_reasons(storage).items():
            print(f"  FAIL x{count}: {reason}")
    return counts, Counter(schedule)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", type=int, default=12)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        counts, kinds = run_bench(
            Path(scratch), faults=args.faults, trials=args.trials, seed=args.seed
        )
    print(
        f"{args.faults} faults ({', '.join(f'{count} {kind}' for kind, count in kinds.items())}), "
        f"2 workers, PostgreSQL, MLflow server, {args.trials} trials, "
        f"{time.monotonic() - started:.0f} s"
    )
    for name, value in counts.items():
        print(f"  {name:<40}{value:>6}")
    must_be_zero = list(counts)[:6]
    passed = all(counts[name] == 0 for name in must_be_zero)
    print("PASS" if passed and counts["complete trials"] == args.trials else "FAIL")


if __name__ == "__main__":
    main()
