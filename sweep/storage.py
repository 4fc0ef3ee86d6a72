"""Optuna's RDB storage as the sweep uses it: heartbeats so a dead worker's trial is retried
(with its reason written first), a database restart ridden out, sqlite beside the MLflow store."""

import contextlib
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna

from pipelines.errors import ImgsweepError
from pipelines.urls import mask_password
from sweep.storage_retry import StorageRetry, retry_storage_calls

# How the reason of a trial whose worker stopped sending heartbeats begins.
WORKER_DIED = "worker died"


class _StaleReasonStorage(optuna.storages.RDBStorage):
    """RDB storage that gives a dead worker's trial its reason before marking it FAIL.

    Optuna's stale-trial callback runs after the trial is FAIL, when its attributes can no
    longer change; so the reason is written while the trial is still RUNNING, in an override
    of a private method: one of the two uses of Optuna internals (trial_heartbeat is the
    other), both checked by tests/test_study_internals.py.
    """

    def __init__(self, url: str, *, max_retry: int | None, **kwargs):
        self._max_retry = max_retry
        super().__init__(url, **kwargs)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = super()._get_stale_trial_ids(study_id)
        for trial_id in stale:
            trial = self.get_trial(trial_id)
            retries = len(trial.system_attrs.get("retry_history", []))
            then = (
                f"run again as a new trial (retry_of={trial.number})"
                if self._max_retry is None or retries < self._max_retry
                else f"not run again (search.max_retry={self._max_retry} reached)"
            )
            reason = f"{WORKER_DIED}: no heartbeat for {self.grace_period} s; {then}"
            try:
                self.set_trial_user_attr(trial_id, "reason", reason)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # finished meanwhile: not stale after all, or failed by another worker
        return stale


def storage_url(storage: str | None, mlruns_dir: Path) -> str:
    """The configured storage, or a sqlite file beside the MLflow store."""
    return storage or f"sqlite:///{mlruns_dir / 'optuna.db'}"


def trials_so_far(storage: optuna.storages.BaseStorage, study_name: str) -> int:
    """How many trials the study holds (0 if it does not exist yet)."""
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return 0
    return len(storage.get_all_trials(study_id, deepcopy=False))


@contextlib.contextmanager
def trial_heartbeat(study: optuna.Study, trial: optuna.Trial) -> Iterator[None]:
    """Send the trial's heartbeats while it runs, as Optuna's own optimize() does.

    Ask-and-tell has no public way to start them, and the loop needs ask-and-tell to hold
    exactly `search.n_trials` across workers (see sweep.loop). With _StaleReasonStorage, the
    only use of Optuna internals (`optuna.storages._heartbeat.get_heartbeat_thread`,
    `Trial._trial_id`, `Study._storage`); tests/test_study_internals.py fails if they change.
    """
    from optuna.storages._heartbeat import get_heartbeat_thread

    with get_heartbeat_thread(trial._trial_id, study._storage):
        yield


def build_storage(
    url: str,
    *,
    heartbeat_interval: int,
    grace_period: int,
    max_retry: int,
    on_stale_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None],
    retry_seconds: float = 0,
) -> optuna.storages.RDBStorage:
    """RDB storage with heartbeats: a worker killed mid-trial leaves a trial others can retry;
    a database restart is ridden out for `retry_seconds` (sweep/storage_retry.py)."""

    def stale_trial_callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        retry(study, trial)
        on_stale_trial(study, trial)

    # Several processes write one sqlite file: wait for its lock rather than fail at once.
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    if url.startswith("postgresql"):
        engine_kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    try:
        with warnings.catch_warnings():
            # Heartbeats have been "experimental" since Optuna 2.9; they are what we need here.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
            storage = _StaleReasonStorage(
                url,
                max_retry=max_retry,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=stale_trial_callback,
            )
    except Exception as error:  # SQLAlchemy and driver errors have no common base to name
        message = mask_password(str(error).strip().splitlines()[0])[:300]
        raise ImgsweepError(
            f"search.storage '{mask_password(url)}' cannot be opened: {message}"
        ) from None
    # A sqlite file does not restart; its "database is locked" waits are the timeout above.
    if retry_seconds and not url.startswith("sqlite"):
        retry_storage_calls(storage, StorageRetry(url, retry_seconds))
    return storage
