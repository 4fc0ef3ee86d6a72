"""A stage's nested MLflow run: started, timed, and ended with the status its outcome maps to."""

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from pipelines.stopping import stop_reason
from pipelines.tracking import RunStatus, Tracker
from pipelines.train.callbacks import StoppingCallback


class StageStopped(Exception):
    """A stage ended the trial: `pruned` when the setup is sound but not worth going on."""

    def __init__(self, reason: str, *, pruned: bool):
        super().__init__(reason)
        self.reason = reason
        self.pruned = pruned


@dataclass
class StageTimes:
    """Where a trial's time went: seconds in each stage, epochs on the full train split."""

    seconds: dict[str, float] = field(default_factory=dict)
    full_epochs: int = 0


@contextlib.contextmanager
def stage_run(
    tracker: Tracker, name: str, parent_run_id: str, params: dict, stage_times: StageTimes
) -> Iterator[str]:
    """A stage's nested run, ended with the status its outcome maps to; times the stage.

    A StageStopped ends it KILLED (pruned) or FAILED with its reason, any other error FAILED
    with its first line, SIGTERM or Ctrl-C KILLED with the stop's reason; all go on up. A stage
    that returns ends FINISHED.
    """
    run_id = tracker.start_run(name, parent_run_id=parent_run_id, tags={"stage": name})
    started = time.monotonic()
    try:
        tracker.log_params(run_id, params)
        yield run_id
    except StageStopped as stopped:
        status = RunStatus.KILLED if stopped.pruned else RunStatus.FAILED
        tracker.end_run(run_id, status, stopped.reason)
        raise
    except BaseException as error:
        end_raised_run(tracker, run_id, error, prefix=f"{name}: ")
        raise
    else:
        tracker.end_run(run_id, RunStatus.FINISHED)
    finally:
        stage_times.seconds[name] = stage_times.seconds.get(name, 0.0) + time.monotonic() - started


def end_raised_run(tracker: Tracker, run_id: str, error: BaseException, *, prefix: str) -> None:
    """End a run its work raised out of: KILLED with the stop's reason (which signal, at which
    epoch) after SIGTERM or Ctrl-C, FAILED with the error's first line otherwise."""
    if isinstance(error, KeyboardInterrupt):
        tracker.end_run(run_id, RunStatus.KILLED, prefix + stop_reason(error))
    else:
        tracker.end_run(run_id, RunStatus.FAILED, f"{prefix}{error}".splitlines()[0])


def raise_if_stopped(stage: str, stoppers: list[StoppingCallback]) -> None:
    """A callback that stopped training for a reason that ends the trial: a pruned stop."""
    reason = next(
        (
            stopper.stop_reason
            for stopper in stoppers
            if stopper.ends_trial and stopper.stop_reason
        ),
        None,
    )
    if reason:
        # Pruned, not failed: a diverging learning rate tells the sampler where not to look.
        raise StageStopped(f"{stage}: {reason}", pruned=True)
