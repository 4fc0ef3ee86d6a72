"""The trial loop every worker runs: take a trial while the study needs one, run it, tell it."""

import time
import warnings
from collections.abc import Callable

import optuna

from pipelines.errors import ImgsweepError
from sweep.locks import StudyLock
from sweep.objective import TrialContext, TrialOutcome, describe, run_trial
from sweep.study import counts_toward_n_trials, trial_heartbeat

TrialState = optuna.trial.TrialState
# How often an idle worker looks for a dead worker's trial to take over.
IDLE_POLL_SECONDS = 2.0
RETRY = optuna.storages.RetryHeartbeatStaleTrialCallback


def _next_trial(study: optuna.Study, lock: StudyLock, n_trials: int) -> optuna.Trial | str:
    """A trial to run, or why not: "done" or "wait" (others' trials may still need a retry)."""
    with warnings.catch_warnings():
        # Heartbeats with ask-and-tell are deliberate here (see sweep.study.trial_heartbeat).
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used")
        optuna.storages.fail_stale_trials(study)
        with lock.held():
            trials = study.get_trials(deepcopy=False)
            waiting = {
                trial.number: trial for trial in trials if trial.state == TrialState.WAITING
            }
            used = sum(
                counts_toward_n_trials(trial)
                for trial in trials
                if trial.state != TrialState.WAITING
            )
            # A dead worker's retry runs whatever the count; a queued first trial (warm
            # start, search.enqueue) is one of the n_trials.
            retries = [
                trial
                for trial in waiting.values()
                if RETRY.retried_trial_number(trial) is not None
            ]
            if used < n_trials or retries:
                trial = study.ask()
                if trial.number in waiting:
                    retried = RETRY.retried_trial_number(waiting[trial.number])
                    trial.set_user_attr("retry_of", retried)
                    # Optuna copies the dead trial's attributes, its reason among them.
                    trial.set_user_attr("reason", None)
                return trial
    running = any(trial.state == TrialState.RUNNING for trial in trials)
    return "wait" if running else "done"


def run_trials(
    *,
    study: optuna.Study,
    context: TrialContext,
    lock: StudyLock,
    n_trials: int,
    deadline: float | None,
    max_consecutive_failures: int,
    report: Callable[[optuna.Trial, TrialOutcome, float], None],
) -> int:
    """Run trials until the study holds `n_trials` (all workers together); returns how many ran.

    A worker with nothing to start waits while other workers' trials run: if one of them dies,
    its trial goes stale and this worker runs the retry.
    """
    trials_run, failures_in_a_row = 0, 0
    while deadline is None or time.monotonic() < deadline:
        trial = _next_trial(study, lock, n_trials)
        if trial == "done":
            break
        if trial == "wait":
            time.sleep(IDLE_POLL_SECONDS)
            continue
        started = time.monotonic()
        with trial_heartbeat(study, trial):
            try:
                outcome = run_trial(trial, context)
            except KeyboardInterrupt:
                study.tell(trial, state=TrialState.FAIL)
                raise
            study.tell(trial, outcome.value, state=outcome.state)
        trials_run += 1
        report(trial, outcome, time.monotonic() - started)
        failures_in_a_row = failures_in_a_row + 1 if outcome.state == TrialState.FAIL else 0
        if failures_in_a_row >= max_consecutive_failures:
            raise ImgsweepError(
                f"{failures_in_a_row} trials failed in a row (last: {outcome.reason}); the setup "
                "is likely wrong, not the trials: fix it and run again to resume"
            )
    return trials_run


def format_outcome(trial: optuna.Trial, outcome: TrialOutcome, seconds: float) -> str:
    """One line per trial: number, state, value or reason, time and parameters."""
    value = "" if outcome.value is None else f" {outcome.metric}={outcome.value:.4f}"
    reason = f" ({outcome.reason})" if outcome.reason else ""
    return (
        f"trial {trial.number}: {outcome.state.name}{value}{reason} in {seconds:.0f}s "
        f"[{describe(trial.params)}]"
    )
