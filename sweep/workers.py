"""`make sweep WORKERS=N`: N worker processes on one study, each with its share of the cores."""

import os
import signal
import subprocess
import sys

from pipelines.errors import ImgsweepError
from sweep.session import WORKER_INDEX_VARIABLE


def worker_environment(index: int, workers: int) -> dict[str, str]:
    """TensorFlow and BLAS thread counts that split this machine's cores between the workers."""
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    return {
        **os.environ,
        WORKER_INDEX_VARIABLE: str(index),
        "TF_NUM_INTRAOP_THREADS": threads,
        "TF_NUM_INTEROP_THREADS": "1",
        "OMP_NUM_THREADS": threads,
    }


def _stop_workers(processes: list[subprocess.Popen], stop: KeyboardInterrupt) -> None:
    """Pass the stop on to the workers (a scheduler's SIGTERM reaches this process alone) and
    wait while they record their trials; a further signal is passed on too."""
    signal_number = getattr(stop, "signal_number", signal.SIGINT)
    while True:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal_number)
        try:
            for process in processes:
                process.wait()
            return
        except KeyboardInterrupt as again:
            signal_number = getattr(again, "signal_number", signal.SIGINT)


def run_worker_processes(workers: int, overrides: list[str]) -> None:
    """Start `python -m sweep.worker` N times on the same study and wait for all of them."""
    command = [sys.executable, "-m", "sweep.worker", *overrides]
    processes = [
        subprocess.Popen(command, env=worker_environment(index, workers))
        for index in range(1, workers + 1)
    ]
    try:
        exit_codes = [process.wait() for process in processes]
    except KeyboardInterrupt as stop:
        _stop_workers(processes, stop)
        raise
    failed = [
        f"worker {index} exited with status {code}"
        for index, code in enumerate(exit_codes, start=1)
        if code != 0
    ]
    if failed:
        raise ImgsweepError("; ".join(failed) + " (see its message above)")
