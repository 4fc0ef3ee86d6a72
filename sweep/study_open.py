"""The study a session works on: its storage, a seeded sampler, the pruner, and the checks
that it is this data and this metric."""

import os
import warnings

import optuna

from pipelines.data.identity import DataIdentity
from pipelines.errors import ConfigError
from pipelines.metrics import MetricChoice
from pipelines.tracking import RunStatus, Tracker
from sweep.data_identity import check_study_data
from sweep.storage import build_storage, trials_so_far
from sweep.study import build_pruner, build_sampler, open_study

# Set by `make sweep WORKERS=N` for each worker it starts, so their samplers differ.
WORKER_INDEX_VARIABLE = "IMGSWEEP_WORKER_INDEX"


def _end_stale_trial_runs(tracker: Tracker, grace_period: int):
    """The stale-trial callback's MLflow side: a dead worker's trial run ends KILLED."""

    def end_runs(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        run_id = trial.user_attrs.get("mlflow_run_id")
        if not run_id:
            return
        reason = trial.user_attrs.get("reason") or (
            f"worker died: no heartbeat for {grace_period} s; retried as a new trial"
        )
        tracker.end_unfinished_children(run_id, RunStatus.KILLED, reason)
        tracker.set_tags(run_id, {"optuna_state": "FAIL"})
        tracker.end_run(run_id, RunStatus.KILLED, reason)

    return end_runs


def check_study_metric(study: optuna.Study, metric: str) -> None:
    """A study compares one metric: record and name it the first time, refuse another after."""
    recorded = study.user_attrs.get("metric")
    if recorded is None:
        study.set_user_attr("metric", metric)
    elif recorded != metric:
        raise ConfigError(
            f"search.metric: study '{study.study_name}' optimizes {recorded}, not {metric}; "
            f"set search.metric={recorded} to resume it, or choose a new search.study_name"
        )
    if study.metric_names != [metric]:
        # optuna-dashboard and trials_dataframe show this name instead of "Objective 0".
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([metric])


def open_checked_study(
    *,
    study_name: str,
    storage: str,
    heartbeat_interval: int,
    grace_period: int,
    max_retry: int | None,
    storage_retry_seconds: float,
    sampler_settings: dict,
    pruner_settings: dict,
    seed: int,
    metric: MetricChoice,
    data_identity: DataIdentity,
    tracker: Tracker,
    create: bool,
) -> optuna.Study:
    """Create, resume or join the study; stop with one line if it ran on other data or metric."""
    rdb_storage = build_storage(
        storage,
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period,
        max_retry=max_retry,
        on_stale_trial=_end_stale_trial_runs(tracker, grace_period),
        retry_seconds=storage_retry_seconds,
    )
    # A resumed study must not replay the sampler's first draws, nor may two workers share
    # them: offset the seed by the trials so far and by the worker's index.
    worker_index = int(os.environ.get(WORKER_INDEX_VARIABLE, 0))
    sampler_seed = seed + trials_so_far(rdb_storage, study_name) + 7919 * worker_index
    study = open_study(
        study_name=study_name,
        storage=rdb_storage,
        sampler=build_sampler(sampler_settings, seed=sampler_seed),
        pruner=build_pruner(pruner_settings),
        direction=metric.direction,
        create=create,
    )
    check_study_data(study, data_identity)
    check_study_metric(study, metric.name)
    return study
