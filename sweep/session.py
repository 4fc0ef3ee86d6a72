"""Everything a process needs to work on a study, opened from one composed config."""

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf

from champion.final_models import final_model_settings, trial_loop_seconds
from champion.promotion import check_registered_model, gate_split
from pipelines.config import mask_password, resolve_path
from pipelines.data.identity import DataIdentity
from pipelines.errors import ConfigError, ImgsweepError
from pipelines.metrics import resolve_metric
from pipelines.plan import data_loading_key, load_data, plan_from_config, tracking_from_config
from pipelines.tracking import RunStatus, Tracker
from sweep.data_identity import check_study_data
from sweep.locks import StudyLock
from sweep.loop import run_trials
from sweep.objective import TrialContext, TrialOutcome
from sweep.space import check_model_keys, parse_space
from sweep.study import (
    build_pruner,
    build_sampler,
    build_storage,
    open_study,
    storage_url,
    trials_so_far,
)
from sweep.warm_start import enqueue_first_trials

# Set by `make sweep WORKERS=N` for each worker it starts, so their samplers differ.
WORKER_INDEX_VARIABLE = "IMGSWEEP_WORKER_INDEX"


@dataclass
class StudySession:
    study: optuna.Study
    storage: str
    tracker: Tracker
    lock: StudyLock
    context: TrialContext
    n_trials: int
    timeout_minutes: float | None
    max_consecutive_failures: int
    # The share of the budget the trial loop leaves for the refit (champion/final_models.py),
    # and the budget's end, which the refit must fit before.
    reserve_fraction: float = 0.0
    budget_deadline: float | None = None

    @property
    def parent_run_id(self) -> str:
        return self.context.parent_run_id

    def run_trials(self, report: Callable[[optuna.Trial, TrialOutcome, float], None]) -> int:
        """This process's share of the study's trials (see sweep.loop.run_trials)."""
        started = time.monotonic()
        self.budget_deadline = (
            started + 60 * self.timeout_minutes if self.timeout_minutes else None
        )
        loop_seconds = trial_loop_seconds(self.timeout_minutes, self.reserve_fraction)
        deadline = started + loop_seconds if loop_seconds else None
        self.context.deadline = deadline
        return run_trials(
            study=self.study,
            context=self.context,
            lock=self.lock,
            n_trials=self.n_trials,
            deadline=deadline,
            max_consecutive_failures=self.max_consecutive_failures,
            report=report,
        )


def override_values(overrides: list[str]) -> dict[str, str]:
    """The config keys a list of Hydra overrides sets (`+x=1` and `optimizer=sgd` alike), with
    the values as typed."""
    pairs = (override.split("=", 1) for override in overrides if "=" in override)
    return {key.lstrip("+~"): value for key, value in pairs}


def _end_stale_trial_runs(tracker: Tracker, grace_period: int):
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


def _parent_run(tracker: Tracker, study: optuna.Study, cfg: DictConfig, storage: str) -> str:
    """The study's MLflow run: reused when the study resumes, created the first time."""
    run_id = study.user_attrs.get("mlflow_parent_run_id")
    if run_id and tracker.run_status(run_id):
        tracker.resume_run(run_id)
        return run_id
    run_id = tracker.start_run(
        f"study-{study.study_name}",
        tags={
            "study": study.study_name,
            "storage": mask_password(storage),
            "sampler": cfg.search.sampler.name,
            "pruner": cfg.search.pruner.name,
            "metric": study.user_attrs.get("metric", ""),
            "role": "study",
        },
    )
    study.set_user_attr("mlflow_parent_run_id", run_id)
    return run_id


def _settings(section) -> Any:
    return OmegaConf.to_container(section, resolve=True)


def _check_study_metric(study: optuna.Study, metric: str) -> None:
    """A study compares one metric: record it the first time, refuse another one after."""
    stored = study.user_attrs.get("metric")
    # A study from before search.metric has no record: its values are val AUC.
    recorded = stored or ("val_auc" if study.trials else metric)
    if recorded != metric:
        raise ConfigError(
            f"search.metric: study '{study.study_name}' optimizes {recorded}, not {metric}; "
            f"set search.metric={recorded} to resume it, or choose a new search.study_name"
        )
    if stored is None:
        study.set_user_attr("metric", metric)


def open_session(
    cfg: DictConfig, command_line_overrides: list[str], *, create: bool
) -> StudySession:
    """Check the config and data, connect tracking and storage, open (or join) the study."""
    plan_from_config(cfg)
    final_models = final_model_settings(cfg.registry)
    dimensions = parse_space(cfg.search.space)
    check_model_keys(dimensions, cfg)
    data = load_data(cfg)
    tracker = tracking_from_config(cfg)
    current = DataIdentity.of(data)
    if create and cfg.registry.promote_after_sweep:
        # Before any run or study is made: promotion would fail only after every trial.
        check_registered_model(
            tracker=tracker,
            model_name=cfg.registry.model_name,
            current=current,
            champion_alias=cfg.registry.champion_alias,
        )
    search = cfg.search
    metric = resolve_metric(search.metric, data.num_classes)
    storage = storage_url(search.storage, resolve_path(cfg.tracking.mlruns_dir))
    rdb_storage = build_storage(
        storage,
        heartbeat_interval=search.heartbeat_interval,
        grace_period=search.grace_period,
        max_retry=search.max_retry,
        on_stale_trial=_end_stale_trial_runs(tracker, search.grace_period),
        retry_seconds=search.storage_retry_seconds,
    )
    trials_before = trials_so_far(rdb_storage, search.study_name)
    # A resumed study must not replay the sampler's first draws, nor may two workers share
    # them: offset the seed by the trials so far and by the worker's index.
    worker_index = int(os.environ.get(WORKER_INDEX_VARIABLE, 0))
    sampler_seed = cfg.seed + trials_before + 7919 * worker_index
    study = open_study(
        study_name=search.study_name,
        storage=rdb_storage,
        sampler=build_sampler(_settings(search.sampler), seed=sampler_seed),
        pruner=build_pruner(_settings(search.pruner)),
        direction=metric.direction,
        create=create,
    )
    check_study_data(study, current)
    _check_study_metric(study, metric.name)
    if create and trials_before == 0:
        for line in enqueue_first_trials(
            study,
            dimensions=dimensions,
            explicit=_settings(search.enqueue),
            warm_start=search.warm_start,
            warm_start_storage=search.warm_start_storage or storage,
            top_k=search.warm_start_top_k,
            limit=search.n_trials,
        ):
            print(line, flush=True)
    if create:
        parent_run_id = _parent_run(tracker, study, cfg, storage)
    else:
        parent_run_id = study.user_attrs.get("mlflow_parent_run_id")
        if not parent_run_id:
            raise ImgsweepError(
                f"study '{search.study_name}' has no MLflow parent run; start it with `make sweep`"
            )
    context = TrialContext(
        base_overrides=list(command_line_overrides),
        fixed_values=override_values(command_line_overrides),
        dimensions=dimensions,
        tracker=tracker,
        parent_run_id=parent_run_id,
        base_data_key=data_loading_key(cfg),
        base_data=data,
        metric=metric.name,
    )
    return StudySession(
        study=study,
        storage=storage,
        tracker=tracker,
        lock=StudyLock(storage, search.study_name, retry_seconds=search.storage_retry_seconds),
        context=context,
        n_trials=search.n_trials,
        timeout_minutes=search.timeout_minutes,
        max_consecutive_failures=search.max_consecutive_failures,
        # Time is held back only for a refit that will run: after the sweep, on data with a
        # test split to score it on (champion/candidates.py skips it otherwise).
        reserve_fraction=(
            final_models.reserve_fraction
            if cfg.registry.promote_after_sweep and gate_split(data) == "test"
            else 0.0
        ),
    )
