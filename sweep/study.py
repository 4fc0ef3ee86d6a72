"""Optuna storage, sampler and pruner from the config; the study created, resumed or joined."""

import warnings
from collections.abc import Callable
from pathlib import Path

import optuna

from pipelines.config import mask_password
from pipelines.errors import ConfigError, ImgsweepError

TrialState = optuna.trial.TrialState
# A trial stopped by Ctrl-C is recorded FAIL with this reason and run again on resume.
INTERRUPTED = "interrupted"
# How the reason of a trial whose worker stopped sending heartbeats begins.
WORKER_DIED = "worker died"


class _StaleReasonStorage(optuna.storages.RDBStorage):
    """RDB storage that gives a dead worker's trial its reason before marking it FAIL.

    Optuna's stale-trial callback runs after the trial is FAIL, when its attributes can no
    longer change; so the reason is written while the trial is still RUNNING.
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


def build_sampler(*, name: str, seed: int, n_startup_trials: int) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError(f"search.sampler.name {name!r} is unknown; choose tpe or random")


def build_pruner(
    *, name: str, n_startup_trials: int, n_warmup_steps: int
) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=n_startup_trials, n_warmup_steps=n_warmup_steps
        )
    if name == "percentile":
        return optuna.pruners.PercentilePruner(
            25.0, n_startup_trials=n_startup_trials, n_warmup_steps=n_warmup_steps
        )
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(
        f"search.pruner.name {name!r} is unknown; choose median, percentile, hyperband or none"
    )


def build_storage(
    url: str,
    *,
    heartbeat_interval: int,
    grace_period: int,
    max_retry: int,
    on_stale_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None],
) -> optuna.storages.RDBStorage:
    """RDB storage with heartbeats: a worker killed mid-trial leaves a trial others can retry."""

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
            return _StaleReasonStorage(
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


def open_study(
    *,
    study_name: str,
    storage: optuna.storages.BaseStorage | str,
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
    create: bool = True,
) -> optuna.Study:
    """Create the study or load it to resume (`create=False`: it must exist, as for a worker)."""
    # Optuna logs each trial at INFO; the sweep prints its own line per trial.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        if create:
            return optuna.create_study(
                study_name=study_name,
                storage=storage,
                sampler=sampler,
                pruner=pruner,
                direction="maximize",
                load_if_exists=True,
            )
        return optuna.load_study(
            study_name=study_name, storage=storage, sampler=sampler, pruner=pruner
        )
    except KeyError:
        raise ImgsweepError(
            f"search.study_name '{study_name}' does not exist in that storage; start it with "
            "`make sweep` first, or check search.storage and the study name"
        ) from None
    except Exception as error:
        url = storage if isinstance(storage, str) else "the storage"
        message = mask_password(str(error).strip().splitlines()[0])[:300]
        raise ImgsweepError(
            f"search.storage '{mask_password(url)}' cannot be used: {message}"
        ) from None


def counts_toward_budget(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a trial uses up one of `search.n_trials`.

    Running, waiting and finished trials do; a trial failed because its worker died (its
    retry is queued instead) or because the user interrupted it does not.
    """
    if trial.state != TrialState.FAIL:
        return True
    reason = trial.user_attrs.get("reason")
    return reason is not None and reason != INTERRUPTED and not reason.startswith(WORKER_DIED)


def finished_trial_count(study: optuna.Study) -> int:
    return sum(
        counts_toward_budget(trial)
        for trial in study.get_trials(deepcopy=False)
        if trial.state.is_finished()
    )
