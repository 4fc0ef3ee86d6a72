"""One training run from one config, no study: the three stages, tracked, scored on test."""

import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from pipelines.data.datasets import ImageFolderData
from pipelines.evaluate import evaluate_split
from pipelines.full_stage import FullResult
from pipelines.plan import TrainingPlan, load_data, plan_from_config, tracking_from_config
from pipelines.provenance import log_run_inputs
from pipelines.stage_run import StageTimes, end_raised_run
from pipelines.stages import StageStopped, run_stages
from pipelines.tracking import RunStatus, Tracker
from pipelines.train.callbacks import StoppingCallback


@dataclass(frozen=True)
class SingleRunResult:
    run_id: str
    status: RunStatus
    reason: str | None
    best_val_auc: float | None
    test_auc: float | None
    model_uri: str | None


def run_logged_stages(
    *,
    config_yaml: str,
    data_root: str | None,
    plan: TrainingPlan,
    data: ImageFolderData,
    tracker: Tracker,
    run_id: str,
    checkpoint_path: Path,
    extra_callbacks: list[StoppingCallback] = (),
    stage_times: StageTimes | None = None,
) -> FullResult:
    """What a single run and a study's trial share: log the run's inputs (config, data,
    provenance), then run its stages under it. StageStopped goes on up to the caller."""
    log_run_inputs(tracker, run_id, config_yaml=config_yaml, data=data, data_root=data_root)
    return run_stages(
        plan=plan,
        data=data,
        tracker=tracker,
        parent_run_id=run_id,
        checkpoint_path=checkpoint_path,
        extra_callbacks=extra_callbacks,
        stage_times=stage_times,
    )


def train_once(cfg: DictConfig) -> SingleRunResult:
    """Run the stages of `cfg` as one MLflow run (tag role=single_run) in the experiment."""
    plan = plan_from_config(cfg)
    data = load_data(cfg)
    tracker = tracking_from_config(cfg)
    run_id = tracker.start_run(
        f"single-{time.strftime('%Y%m%d-%H%M%S')}", tags={"role": "single_run"}
    )
    try:
        result = run_logged_stages(
            config_yaml=OmegaConf.to_yaml(cfg, resolve=True),
            data_root=cfg.data.root,
            plan=plan,
            data=data,
            tracker=tracker,
            run_id=run_id,
            checkpoint_path=plan.checkpoint_dir / f"single-{run_id}.keras",
        )
    except StageStopped as stopped:
        status = RunStatus.KILLED if stopped.pruned else RunStatus.FAILED
        tracker.end_run(run_id, status, stopped.reason)
        return SingleRunResult(run_id, status, stopped.reason, None, None, None)
    except BaseException as error:
        prefix = "" if isinstance(error, KeyboardInterrupt) else f"{type(error).__name__}: "
        end_raised_run(tracker, run_id, error, prefix=prefix)
        raise
    test_auc = None
    if "test" in data.splits:
        test_auc = evaluate_split(result.model, data, data.splits["test"])["auc"]
        tracker.log_metrics(run_id, {"test_auc": test_auc})
    tracker.log_metrics(run_id, {"best_val_auc": result.best_val_auc})
    tracker.end_run(run_id, RunStatus.FINISHED)
    return SingleRunResult(
        run_id, RunStatus.FINISHED, None, result.best_val_auc, test_auc, result.model_uri
    )
