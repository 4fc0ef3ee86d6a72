"""Everything a process needs to work on a study, opened from one composed config."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf

from champion.final_models import (
    UNMEASURED_RESERVE,
    FinalModelSettings,
    final_model_settings,
    trial_loop_seconds,
)
from champion.promotion import check_registered_model, gate_split
from pipelines.config import resolve_path
from pipelines.data.datasets import ImageFolderData
from pipelines.data.identity import DataIdentity
from pipelines.metrics import resolve_metric
from pipelines.plan import data_loading_key, load_data, plan_from_config, tracking_from_config
from pipelines.tracking import Tracker
from sweep.ignored_settings import ignored_section_lines
from sweep.locks import StudyLock
from sweep.loop import run_trials
from sweep.loop_deadline import LoopDeadline
from sweep.objective import TrialContext, TrialOutcome
from sweep.parent_run import study_parent_run
from sweep.sizing import REFERENCE_ATTR, SizingSettings, sizing_settings
from sweep.space import Dimension, check_model_keys, parse_space
from sweep.storage import storage_url
from sweep.study_open import open_checked_study
from sweep.warm_start import first_trials, queue_sized


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
    # The share of search.timeout_minutes the trial loop leaves for the refit
    # (champion/final_models.py; None: auto, sweep/loop_deadline.py), and the end of
    # search.timeout_minutes as a time.monotonic() value, which the refit must fit before.
    reserve_fraction: float | None = 0.0
    timeout_deadline: float | None = None

    @property
    def parent_run_id(self) -> str:
        return self.context.parent_run_id

    def run_trials(self, report: Callable[[optuna.Trial, TrialOutcome, float], None]) -> int:
        """This process's share of the study's trials (see sweep.loop.run_trials)."""
        started = time.monotonic()
        self.timeout_deadline = (
            started + 60 * self.timeout_minutes if self.timeout_minutes else None
        )
        splits = self.context.base_data.splits
        loop_deadline = LoopDeadline(
            self.study,
            started=started,
            timeout_minutes=self.timeout_minutes,
            reserve_fraction=self.reserve_fraction,
            train_images=len(splits["train"]),
            val_images=len(splits["val"]),
        )
        trials_run = run_trials(
            study=self.study,
            context=self.context,
            lock=self.lock,
            n_trials=self.n_trials,
            loop_deadline=loop_deadline,
            max_consecutive_failures=self.max_consecutive_failures,
            report=report,
        )
        if line := loop_deadline.stopped_line():
            print(line, flush=True)
        return trials_run


def override_values(overrides: list[str]) -> dict[str, str]:
    """The config keys a list of Hydra overrides sets (`+x=1` and `optimizer=sgd` alike), with
    the values as typed."""
    pairs = (override.split("=", 1) for override in overrides if "=" in override)
    return {key.lstrip("+~"): value for key, value in pairs}


def _settings(section) -> Any:
    return OmegaConf.to_container(section, resolve=True)


def _checked_config(
    cfg: DictConfig,
) -> tuple[list[Dimension], FinalModelSettings, SizingSettings]:
    """Every check that needs no data: the config's values, the registry's final-model
    settings, the search space and the model keys it sets, the sizing keys."""
    plan_from_config(cfg)
    final_models = final_model_settings(cfg.registry)
    dimensions = parse_space(cfg.search.space)
    check_model_keys(dimensions, cfg)
    for line in ignored_section_lines(cfg.search):
        print(f"imgsweep: warning: {line}", flush=True)
    return dimensions, final_models, sizing_settings(cfg.search)


def _start_new_study(
    study: optuna.Study,
    cfg: DictConfig,
    context: TrialContext,
    *,
    storage: str,
    loop_seconds: float | None,
    sizing: SizingSettings,
) -> None:
    """A new study's first trials (search.enqueue, search.warm_start), timed here and sized to
    the budget (sweep/sizing.py) before they are queued; one line each."""
    search = cfg.search
    first, lines = first_trials(
        dimensions=context.dimensions,
        explicit=_settings(search.enqueue),
        warm_start=search.warm_start,
        warm_start_storage=search.warm_start_storage or storage,
        top_k=search.warm_start_top_k,
        limit=search.n_trials,
    )
    lines += queue_sized(
        study, first, context, loop_seconds=loop_seconds, sizing=sizing, n_trials=search.n_trials
    )
    for line in lines:
        print(line, flush=True)


def _refit_reserve(
    cfg: DictConfig, data: ImageFolderData, final_models: FinalModelSettings
) -> float | None:
    """Time is held back only for a refit that will run: after the sweep, on data with a test
    split to score it on (champion/candidates.py skips it otherwise)."""
    if cfg.registry.promote_after_sweep and gate_split(data) == "test":
        return final_models.reserve_fraction
    return 0.0


def _check_registry_first(cfg: DictConfig, tracker: Tracker, identity: DataIdentity) -> None:
    """Before any run or study is made: a registered model that promotion cannot use would
    stop the sweep only after every trial."""
    if cfg.registry.promote_after_sweep:
        check_registered_model(
            tracker=tracker,
            model_name=cfg.registry.model_name,
            current=identity,
            champion_alias=cfg.registry.champion_alias,
        )


def open_session(
    cfg: DictConfig, command_line_overrides: list[str], *, create: bool
) -> StudySession:
    """Check the config and data, connect tracking and storage, open (or join) the study."""
    dimensions, final_models, sizing = _checked_config(cfg)
    data = load_data(cfg)
    identity = DataIdentity.of(data)
    tracker = tracking_from_config(cfg)
    search = cfg.search
    if create:
        _check_registry_first(cfg, tracker, identity)
    metric = resolve_metric(search.metric, data.num_classes)
    storage = storage_url(search.storage, resolve_path(cfg.tracking.mlruns_dir))
    study = open_checked_study(
        study_name=search.study_name,
        storage=storage,
        heartbeat_interval=search.heartbeat_interval,
        grace_period=search.grace_period,
        max_retry=search.max_retry,
        storage_retry_seconds=search.storage_retry_seconds,
        sampler_settings=_settings(search.sampler),
        pruner_settings=_settings(search.pruner),
        seed=cfg.seed,
        metric=metric,
        data_identity=identity,
        tracker=tracker,
        create=create,
    )
    parent_run_id = study_parent_run(
        tracker,
        study,
        storage=storage,
        sampler=search.sampler.name,
        pruner=search.pruner.name,
        create=create,
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
    reserve_fraction = _refit_reserve(cfg, data, final_models)
    if create and not study.get_trials(deepcopy=False):
        _start_new_study(
            study,
            cfg,
            context,
            storage=storage,
            # The queued trials are sized before any trial has measured a refit: an auto
            # reserve holds its unmeasured share then, as the loop's deadline does.
            loop_seconds=trial_loop_seconds(
                search.timeout_minutes,
                UNMEASURED_RESERVE if reserve_fraction is None else reserve_fraction,
            ),
            sizing=sizing,
        )
    # Measured once, when the study was new: a resumed study or a joining worker reads it.
    context.reference_epoch_seconds = study.user_attrs.get(REFERENCE_ATTR)
    return StudySession(
        study=study,
        storage=storage,
        tracker=tracker,
        lock=StudyLock(storage, search.study_name, retry_seconds=search.storage_retry_seconds),
        context=context,
        n_trials=search.n_trials,
        timeout_minutes=search.timeout_minutes,
        max_consecutive_failures=search.max_consecutive_failures,
        reserve_fraction=reserve_fraction,
    )
