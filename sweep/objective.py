"""One trial: compose its config, run the three stages, record the outcome everywhere."""

import contextlib
import traceback
from dataclasses import dataclass, field
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf

from pipelines.config import compose_config
from pipelines.data.datasets import ImageFolderData
from pipelines.errors import ImgsweepError
from pipelines.plan import data_loading_key, load_data, plan_from_config
from pipelines.single_run import run_logged_stages
from pipelines.stages import StageStopped, StageTimes
from pipelines.stopping import stop_reason
from pipelines.tracking import RunStatus, Tracker
from pipelines.train.callbacks import StopAtDeadline, StoppingCallback
from sweep.pruning import OptunaPruningCallback, trial_resource
from sweep.sizing import EPOCH_CAP_ATTR
from sweep.space import Dimension, sample_overrides
from sweep.storage_retry import StorageUnavailable
from sweep.study import RESUMES

TrialState = optuna.trial.TrialState
RUN_STATUS = {
    TrialState.COMPLETE: RunStatus.FINISHED,
    TrialState.PRUNED: RunStatus.KILLED,
    TrialState.FAIL: RunStatus.FAILED,
}


@dataclass(frozen=True)
class TrialOutcome:
    state: TrialState
    value: float | None = None
    reason: str | None = None
    # The Keras log name the value is (search.metric resolved), e.g. "val_auc".
    metric: str | None = None
    # The best epoch's val AUC, whichever metric chose that epoch.
    best_val_auc: float | None = None


@dataclass
class TrialContext:
    """What every trial of a sweep shares: the base overrides, space, tracker and loaded data."""

    base_overrides: list[str]
    # Config keys the user set on the command line, with their values: not searched.
    fixed_values: dict[str, str]
    dimensions: list[Dimension]
    tracker: Tracker
    parent_run_id: str
    base_data_key: str
    base_data: ImageFolderData
    # search.metric resolved for the base data (pipelines.metrics.resolve_metric): its name.
    metric: str
    # search.timeout_minutes as a time.monotonic() value: a trial running then ends at its
    # next epoch end, with its best epoch so far as its result.
    deadline: float | None = None
    # Seconds one full-stage epoch of the study's first queued configuration takes on this
    # machine, measured once when the study was new (sweep/sizing.py); None for a study made
    # before that measurement. The unit of the pruner's seconds.
    reference_epoch_seconds: float | None = None
    # Whether the line saying the pruner's seconds fall back to epochs was printed.
    _resource_noted: bool = False
    _other_data: dict[str, ImageFolderData] = field(default_factory=dict)

    def data_for(self, cfg: DictConfig) -> ImageFolderData:
        """The base data unless the trial changed how data loads (decoded once per variant)."""
        key = data_loading_key(cfg)
        if key == self.base_data_key:
            return self.base_data
        if key not in self._other_data:
            self._other_data[key] = load_data(cfg)
        return self._other_data[key]


def _record_stage_times(trial, stage_times: StageTimes) -> None:
    """Where the trial's time went, for the sweep summary: seconds per stage, full epochs."""
    for stage, seconds in stage_times.seconds.items():
        trial.set_user_attr(f"{stage}_seconds", round(seconds, 1))
    trial.set_user_attr("full_epochs", stage_times.full_epochs)


def _record(
    trial,
    context: TrialContext,
    run_id: str | None,
    outcome: TrialOutcome,
    run_status: RunStatus | None = None,
) -> TrialOutcome:
    """Optuna first, so the study's record is right even when tracking is down.

    The run ends with `run_status`, else the status the trial's state maps to.
    """
    trial.set_user_attr("state", outcome.state.name)
    if outcome.reason:
        trial.set_user_attr("reason", outcome.reason)
    if run_id:
        try:
            context.tracker.set_tags(run_id, {"optuna_state": outcome.state.name})
            if outcome.value is not None:
                context.tracker.log_metrics(
                    run_id,
                    {
                        "best_val_auc": outcome.best_val_auc,
                        f"best_{outcome.metric}": outcome.value,
                    },
                )
            status = run_status or RUN_STATUS[outcome.state]
            context.tracker.end_run(run_id, status, outcome.reason)
        except ImgsweepError as error:
            trial.set_user_attr("tracking_error", str(error))
    return outcome


def _apply_epoch_cap(cfg: DictConfig, cap: int | None) -> None:
    """A queued trial the study cut to fit its budget (sweep/sizing.py) runs `cap` epochs at
    most; its schedule spans them, as with a shorter stages.full.max_epochs."""
    if cap is not None and cap < cfg.stages.full.max_epochs:
        cfg.stages.full.max_epochs = cap


def _start_trial_run(trial: optuna.Trial, context: TrialContext) -> str:
    """The trial's MLflow run, nested under the study's; its id recorded on the trial."""
    run_id = context.tracker.start_run(
        f"trial-{trial.number:03d}",
        parent_run_id=context.parent_run_id,
        tags={
            "trial_number": trial.number,
            "study": trial.study.study_name,
            # A dead worker's trial comes back with the same parameters under a new number.
            "retry_of": trial.user_attrs.get("retry_of", ""),
        },
    )
    trial.set_user_attr("mlflow_run_id", run_id)
    return run_id


def _pruner_resource(trial: optuna.Trial, context: TrialContext, configured: str):
    """What the trial's steps count (recorded on it as `pruner_resource`); why not seconds,
    once per process, when they cannot be."""
    resource, note = trial_resource(configured, context.reference_epoch_seconds)
    if note and not context._resource_noted:
        print(note, flush=True)
        context._resource_noted = True
    trial.set_user_attr("pruner_resource", resource.name)
    return resource


def _trial_callbacks(
    trial: optuna.Trial, context: TrialContext, max_epochs: int, resource: str
) -> list[StoppingCallback]:
    """The study's stops for the full stage: its time budget, then the pruner (an epoch that
    ends training at the deadline is not pruned)."""
    deadline = [StopAtDeadline(context.deadline)] if context.deadline else []
    pruner = OptunaPruningCallback(
        trial,
        monitor=context.metric,
        last_epoch=max_epochs - 1,
        resource=_pruner_resource(trial, context, resource),
    )
    return [*deadline, pruner]


def _end_runs(tracker: Tracker, run_id: str | None, reason: str) -> None:
    """The trial's run and any stage run still open, KILLED with `reason`."""
    if run_id:
        with contextlib.suppress(ImgsweepError):
            tracker.end_unfinished_children(run_id, RunStatus.KILLED, reason)
            tracker.end_run(run_id, RunStatus.KILLED, reason)


def run_trial(trial: optuna.Trial, context: TrialContext) -> TrialOutcome:
    """Never raises for a trial's own failure: the outcome carries the state and the reason."""
    overrides = sample_overrides(trial, context.dimensions, context.fixed_values)
    trial.set_user_attr("overrides", overrides)
    tracker, run_id, stage_times = context.tracker, None, StageTimes()
    try:
        cfg = compose_config(context.base_overrides + overrides)
        _apply_epoch_cap(cfg, trial.user_attrs.get(EPOCH_CAP_ATTR))
        plan = plan_from_config(cfg)
        data = context.data_for(cfg)
        run_id = _start_trial_run(trial, context)
        tracker.log_params(run_id, trial.params)
        result = run_logged_stages(
            config_yaml=OmegaConf.to_yaml(cfg, resolve=True),
            data_root=cfg.data.root,
            plan=plan,
            data=data,
            tracker=tracker,
            run_id=run_id,
            checkpoint_path=plan.checkpoint_dir / f"{trial.study.study_name}-{trial.number}.keras",
            extra_callbacks=_trial_callbacks(
                trial, context, plan.full_max_epochs, cfg.search.pruner.resource
            ),
            stage_times=stage_times,
        )
        trial.set_user_attr("model_uri", result.model_uri)
        trial.set_user_attr("best_epoch", result.best_epoch)
        trial.set_user_attr("best_val_auc", result.best_val_auc)
        outcome = TrialOutcome(
            TrialState.COMPLETE,
            result.best_value,
            metric=result.metric,
            best_val_auc=result.best_val_auc,
        )
        return _record(trial, context, run_id, outcome)
    except StageStopped as stopped:
        state = TrialState.PRUNED if stopped.pruned else TrialState.FAIL
        return _record(trial, context, run_id, TrialOutcome(state, reason=stopped.reason))
    except StorageUnavailable as error:
        # Optuna cannot be written: the runs end here, and the next process to open the study
        # finds the trial without heartbeats and runs it again.
        _end_runs(tracker, run_id, str(error))
        raise
    except ImgsweepError as error:
        return _record(trial, context, run_id, TrialOutcome(TrialState.FAIL, reason=str(error)))
    except KeyboardInterrupt as interrupt:
        # SIGTERM or Ctrl-C: not the configuration's fault. KILLED in MLflow, and the loop
        # queues the configuration to run again (sweep.loop).
        stopped = TrialOutcome(TrialState.FAIL, reason=f"{stop_reason(interrupt)}; {RESUMES}")
        _record(trial, context, run_id, stopped, RunStatus.KILLED)
        raise
    except Exception as error:  # a trial's crash is recorded; the study goes on
        reason = f"{type(error).__name__}: {error}".splitlines()[0][:500]
        if run_id:
            with contextlib.suppress(ImgsweepError):
                tracker.log_text(run_id, traceback.format_exc(), "error.txt")
        return _record(trial, context, run_id, TrialOutcome(TrialState.FAIL, reason=reason))
    finally:
        _record_stage_times(trial, stage_times)


def describe(params: dict[str, Any]) -> str:
    """Trial parameters as `name=value` pairs, floats shortened."""
    return " ".join(
        f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}"
        for name, value in params.items()
    )
