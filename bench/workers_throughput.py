"""Trials per hour with 1 and with 2 worker processes on this machine, side by side.

    python -m bench.workers_throughput [--trials 8] [--epochs 3] [--storage sqlite|postgres]

Each run is the real `python -m sweep` on the same tiny study (digits 3 vs 8, 16×16), from a
fresh store, so process start-up and TensorFlow import are counted as users pay them.
"""

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.tiny_study import tiny_study_overrides, write_tiny_data
from tests.postgres import throwaway_cluster


def timed_sweep(data: Path, folder: Path, storage: str | None, workers: int, args) -> float:
    mlruns = folder / f"mlruns-{workers}"
    overrides = tiny_study_overrides(
        data,
        mlruns,
        study=f"throughput_{workers}",
        storage=storage or f"sqlite:///{mlruns / 'optuna.db'}",
        trials=args.trials,
        workers=workers,
        epochs=args.epochs,
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "sweep", *overrides], check=True, capture_output=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--storage", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, contextlib.ExitStack() as stack:
        folder = Path(scratch)
        data = write_tiny_data(folder / "digits")
        storage = None
        if args.storage == "postgres":
            storage = stack.enter_context(throwaway_cluster()).url()
        seconds = {
            workers: timed_sweep(data, folder, storage, workers, args) for workers in (1, 2)
        }
    print(f"{args.trials} trials of {args.epochs} full epochs, {args.storage} storage")
    for workers, elapsed in seconds.items():
        print(
            f"  {workers} worker(s): {elapsed:7.1f} s  "
            f"{3600 * args.trials / elapsed:7.0f} trials/hour"
        )
    print(f"  speed-up with 2 workers: {seconds[1] / seconds[2]:.2f}x")


if __name__ == "__main__":
    main()
