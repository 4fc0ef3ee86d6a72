"""Optuna storage, sampler and pruner from the config; the study created, resumed or joined."""

import contextlib
import importlib.util
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna

from pipelines.errors import ConfigError, ImgsweepError
from pipelines.urls import mask_password
from sweep.pruning import pruner_section_in_steps
from sweep.storage_retry import StorageRetry, retry_storage_calls

TrialState = optuna.trial.TrialState
# What is added to the reason of a trial stopped by SIGTERM or Ctrl-C (recorded FAIL with its
# reason, e.g. "stopped by SIGTERM at epoch 4"): its configuration is queued to run again.
RESUMES = "resumes as a new trial"
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


SAMPLERS = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "gp": optuna.samplers.GPSampler,
}
PRUNERS = {
    "hyperband": optuna.pruners.HyperbandPruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "threshold": optuna.pruners.ThresholdPruner,
    "none": optuna.pruners.NopPruner,
}


def _construct(kind: str, table: dict, section: dict, **fixed):
    """`table[section["name"]]` called with `section[name]` as keyword arguments (+ `fixed`)."""
    name = section.get("name")
    if name not in table:
        raise ConfigError(
            f"search.{kind}.name {name!r} is unknown; choose one of: {', '.join(table)}"
        )
    settings = dict(section.get(name) or {})
    try:
        with warnings.catch_warnings():
            # multivariate, group and constant_liar are "experimental" since Optuna 2.2.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return table[name](**settings, **fixed)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"search.{kind}.{name}: {error}".splitlines()[0]) from None


def build_sampler(section: dict, *, seed: int) -> optuna.samplers.BaseSampler:
    """The sampler `search.sampler.name` picks, with its section's arguments and `seed`."""
    if section.get("name") == "gp" and importlib.util.find_spec("torch") is None:
        raise ConfigError(
            "search.sampler.name=gp: Optuna's GPSampler needs PyTorch, which is not installed; "
            "pip install torch (the CPU build is enough) or choose tpe or random"
        )
    return _construct("sampler", SAMPLERS, section, seed=seed)


def build_pruner(section: dict) -> optuna.pruners.BasePruner:
    """The pruner `search.pruner.name` picks, with its section's arguments (those that are
    steps converted for `search.pruner.resource`: sweep/pruning.py)."""
    section = pruner_section_in_steps(section)
    pruner = _construct("pruner", PRUNERS, section)
    if section.get("name") == "hyperband":
        # HyperbandPruner checks min_resource and reduction_factor only when it builds its
        # successive-halving brackets, at a trial's first report: a bad value would fail every
        # trial. Building one such bracket now lets Optuna's own check say so before the study.
        rungs = {
            key: value
            for key, value in (section.get("hyperband") or {}).items()
            if key in ("min_resource", "reduction_factor")
        }
        bracket = {"hyperband": optuna.pruners.SuccessiveHalvingPruner}
        _construct("pruner", bracket, {"name": "hyperband", "hyperband": rungs})
    return pruner


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


def open_study(
    *,
    study_name: str,
    storage: optuna.storages.BaseStorage | str,
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
    direction: str = "maximize",
    create: bool = True,
) -> optuna.Study:
    """Create the study or load it to resume (`create=False`: it must exist, as for a worker).

    An existing study must have `direction`: its values were compared that way.
    """
    # Optuna logs each trial at INFO; the sweep prints its own line per trial.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        if create:
            study = optuna.create_study(
                study_name=study_name,
                storage=storage,
                sampler=sampler,
                pruner=pruner,
                direction=direction,
                load_if_exists=True,
            )
        else:
            study = optuna.load_study(
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
    if study.direction.name.lower() != direction:
        raise ConfigError(
            f"search.metric: study '{study_name}' was created to "
            f"{study.direction.name.lower()} its metric, this one needs {direction}; "
            "choose a new search.study_name"
        )
    return study


def counts_toward_n_trials(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a trial uses up one of `search.n_trials`.

    Running, waiting and finished trials do; a trial failed because its worker died or because
    a signal stopped it (its retry is queued instead) does not, nor one interrupted before
    stopped trials were retried.
    """
    if trial.state != TrialState.FAIL:
        return True
    reason = trial.user_attrs.get("reason")
    return (
        reason is not None
        and not reason.startswith(WORKER_DIED)
        and not reason.endswith(RESUMES)
        and reason != "interrupted"
    )


def finished_trial_count(study: optuna.Study) -> int:
    return sum(
        counts_toward_n_trials(trial)
        for trial in study.get_trials(deepcopy=False)
        if trial.state.is_finished()
    )
