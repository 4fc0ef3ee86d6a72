"""`make sweep WORKERS=N`: N worker processes on one study, each with its share of the cores."""

import os
import subprocess
import sys

from pipelines.errors import ImgsweepError
from pipelines.stopping import forward_stops_to
from sweep.study_open import WORKER_INDEX_VARIABLE


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


def run_worker_processes(workers: int, overrides: list[str]) -> None:
    """Start `python -m sweep.worker` N times on the same study and wait for all of them."""
    command = [sys.executable, "-m", "sweep.worker", *overrides]
    processes = [
        subprocess.Popen(command, env=worker_environment(index, workers))
        for index in range(1, workers + 1)
    ]
    with forward_stops_to([process.pid for process in processes]):
        try:
            exit_codes = [process.wait() for process in processes]
        except KeyboardInterrupt:
            # The signal went on to the workers: wait while they record their trials.
            for process in processes:
                process.wait()
            raise
    failed = [
        f"worker {index} exited with status {code}"
        for index, code in enumerate(exit_codes, start=1)
        if code != 0
    ]
    if failed:
        raise ImgsweepError("; ".join(failed) + " (see its message above)")
