"""Kill sweep workers with SIGKILL at random moments, K times, then count what was lost.

    python -m bench.fault_injection [--kills 10] [--trials 12] [--workers 1|2]
        [--storage sqlite|postgres]

Runs a small study (scikit-learn digits as PNG folders, 16×16) through the real command
line. With one worker it kills the sweep and starts it again (a crash and a resume); with two
it kills one worker process and starts a replacement that joins the study. At the end it
prints: completed trials lost, trials left RUNNING, MLflow runs left RUNNING and duplicate
runs (all must be 0), with the kills and retries it took.
"""

import argparse
import contextlib
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import optuna
from mlflow import MlflowClient

from bench.tiny_study import tiny_study_overrides, write_tiny_data
from tests.postgres import throwaway_cluster

STUDY = "fault_injection"


def complete_numbers(storage: str, study_name: str = STUDY) -> set[int]:
    """The numbers of the study's complete trials (none if it does not exist yet)."""
    with contextlib.suppress(KeyError):
        study = optuna.load_study(study_name=study_name, storage=storage)
        return {
            trial.number for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        }
    return set()


def worker_pids(study_name: str = STUDY) -> list[int]:
    """The process ids of the study's `python -m sweep.worker` processes."""
    found = subprocess.run(
        ["pgrep", "-f", f"sweep.worker .*{study_name}"], capture_output=True, text=True
    )
    return [int(pid) for pid in found.stdout.split()]


def inject(data: Path, mlruns: Path, storage: str, *, kills: int, trials: int, workers: int):
    overrides = tiny_study_overrides(
        data, mlruns, study=STUDY, storage=storage, trials=trials, workers=workers, epochs=6
    )
    rng = random.Random(0)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    sweep = subprocess.Popen([sys.executable, "-m", "sweep", *overrides], **quiet)
    replacements, complete_before_kills = [], set()
    for _ in range(kills):
        time.sleep(rng.uniform(3, 12))
        complete_before_kills |= complete_numbers(storage)
        if workers == 1:
            sweep.send_signal(signal.SIGKILL)
            sweep.wait()
            sweep = subprocess.Popen([sys.executable, "-m", "sweep", *overrides], **quiet)
        else:
            pids = worker_pids()
            if pids:
                subprocess.run(["kill", "-9", str(rng.choice(pids))])
            replacements.append(
                subprocess.Popen([sys.executable, "-m", "sweep.worker", *overrides], **quiet)
            )
    sweep.wait()
    for process in replacements:
        process.wait()
    # A last resume in case a kill landed after the final trial but before the study closed.
    subprocess.run([sys.executable, "-m", "sweep", *overrides], check=True, **quiet)
    return complete_before_kills


def study_runs(mlruns: Path, study_name: str = STUDY) -> list:
    """Every MLflow run of the study's experiment, from the sqlite store under `mlruns`."""
    client = MlflowClient(f"sqlite:///{mlruns / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(study_name)
    return client.search_runs([experiment.experiment_id], max_results=5000)


def duplicate_runs(runs: list) -> int:
    """FINISHED trial runs beyond the first for the same trial number."""
    finished_per_trial = Counter(
        run.data.tags["trial_number"]
        for run in runs
        if "trial_number" in run.data.tags and run.info.status == "FINISHED"
    )
    return sum(count - 1 for count in finished_per_trial.values() if count > 1)


def count_losses(storage: str, mlruns: Path, complete_before_kills: set[int]) -> dict[str, int]:
    study = optuna.load_study(study_name=STUDY, storage=storage)
    trials = study.get_trials()
    runs = study_runs(mlruns)
    states = Counter(trial.state.name for trial in trials)
    return {
        "completed trials lost": len(complete_before_kills - complete_numbers(storage)),
        "trials left RUNNING": states.get("RUNNING", 0),
        "MLflow runs left RUNNING": sum(run.info.status == "RUNNING" for run in runs),
        "duplicate runs": duplicate_runs(runs),
        "complete trials": states.get("COMPLETE", 0),
        "trials failed by a kill (retried)": sum(
            trial.user_attrs.get("retry_of") is not None for trial in trials
        ),
        "trials in all": len(trials),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--workers", type=int, choices=(1, 2), default=1)
    parser.add_argument("--storage", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, contextlib.ExitStack() as stack:
        scratch = Path(scratch)
        data = write_tiny_data(scratch / "digits")
        mlruns = scratch / "mlruns"
        if args.storage == "postgres":
            storage = stack.enter_context(throwaway_cluster()).url()
        else:
            storage = f"sqlite:///{mlruns / 'optuna.db'}"
        started = time.monotonic()
        before = inject(
            data, mlruns, storage, kills=args.kills, trials=args.trials, workers=args.workers
        )
        counts = count_losses(storage, mlruns, before)
    print(
        f"{args.kills} kills, {args.workers} worker(s), {args.storage}, "
        f"{args.trials} trials, {time.monotonic() - started:.0f} s"
    )
    for name, value in counts.items():
        print(f"  {name:<36}{value:>6}")
    must_be_zero = [
        "completed trials lost",
        "trials left RUNNING",
        "MLflow runs left RUNNING",
        "duplicate runs",
    ]
    print(
        "PASS"
        if all(counts[name] == 0 for name in must_be_zero)
        and counts["complete trials"] == args.trials
        else "FAIL"
    )


if __name__ == "__main__":
    main()
