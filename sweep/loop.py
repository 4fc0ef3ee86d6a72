"""The trial loop every worker runs: take a trial while the study needs one, run it, tell it."""

import contextlib
import time
import warnings
from collections.abc import Callable

import optuna

from pipelines.errors import ImgsweepError
from pipelines.stopping import deferred_stop, stop_reason
from sweep.locks import StudyLock
from sweep.objective import TrialContext, TrialOutcome, describe, run_trial
from sweep.storage import trial_heartbeat
from sweep.study import RESUMES, counts_toward_n_trials

TrialState = optuna.trial.TrialState
# How often an idle worker looks for a dead worker's trial to take over.
IDLE_POLL_SECONDS = 2.0
RETRY = optuna.storages.RetryHeartbeatStaleTrialCallback


def _next_trial(study: optuna.Study, lock: StudyLock, n_trials: int) -> optuna.Trial | str:
    """A trial to run, or why not: "done" or "wait" (others' trials may still need a retry)."""
    with warnings.catch_warnings():
        # Heartbeats with ask-and-tell are deliberate here (see sweep.storage.trial_heartbeat).
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


def _tell(study: optuna.Study, trial: optuna.Trial, outcome: TrialOutcome) -> None:
    """The outcome to Optuna, unless another worker failed the trial as stale meanwhile (its
    heartbeats stopped longer than search.grace_period, as in a long database outage): then
    its queued retry runs it again, and this outcome is left out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's warning that the trial is finished already
        study.tell(trial, outcome.value, state=outcome.state, skip_if_finished=True)


def _fail_and_queue_again(
    study: optuna.Study, trial: optuna.Trial, interrupt: KeyboardInterrupt
) -> None:
    """A trial stopped by a signal: FAIL with its reason, and its configuration queued to run
    again once, as the retry of a dead worker's trial is (retry_of)."""
    reason = f"{stop_reason(interrupt)}; {RESUMES}"
    if not trial.user_attrs.get("reason"):  # stopped outside run_trial
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            trial.set_user_attr("reason", reason)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a trial told before the stop landed stays as it is
        told = study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    if told.state == TrialState.FAIL and told.user_attrs.get("reason", "").endswith(RESUMES):
        # Queued as Optuna's RetryHeartbeatStaleTrialCallback queues a dead worker's trial,
        # with `failed_trial` (read back as retry_of), but without adding to `retry_history`:
        # a polite stop does not use up one of search.max_retry.
        failed = {"failed_trial": told.number, **told.system_attrs}
        study.add_trial(
            optuna.create_trial(
                state=TrialState.WAITING,
                params=told.params,
                distributions=told.distributions,
                user_attrs=told.user_attrs,
                system_attrs=failed,
            )
        )


def run_trials(
    *,
    study: optuna.Study,
    context: TrialContext,
    lock: StudyLock,
    n_trials: int,
    loop_deadline: Callable[[], float | None],
    max_consecutive_failures: int,
    report: Callable[[optuna.Trial, TrialOutcome, float], None],
) -> int:
    """Run trials until the study holds `n_trials` (all workers together); returns how many ran.

    A worker with nothing to start waits while other workers' trials run: if one of them dies,
    its trial goes stale and this worker runs the retry. `loop_deadline()` (a time.monotonic()
    value; None: no budget) is read before each trial: no trial starts after it, and a trial
    running then ends at its next epoch end.
    """
    trials_run, failures_in_a_row = 0, 0
    while (deadline := loop_deadline()) is None or time.monotonic() < deadline:
        context.deadline = deadline
        # SIGTERM or Ctrl-C from here to the trial's tell waits for an epoch end: the trial
        # is then recorded as stopped, and the stop raised at the latest when the region ends.
        with deferred_stop():
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
                    _tell(study, trial, outcome)
                except KeyboardInterrupt as interrupt:
                    _fail_and_queue_again(study, trial, interrupt)
                    raise
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
