"""One training run from one config, no study: the three stages, tracked, scored on test."""

import time
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from pipelines.evaluate import evaluate_split
from pipelines.plan import load_data, plan_from_config, tracking_from_config
from pipelines.provenance import log_run_inputs
from pipelines.stages import StageStopped, run_stages
from pipelines.tracking import RunStatus


@dataclass(frozen=True)
class SingleRunResult:
    run_id: str
    status: RunStatus
    reason: str | None
    best_val_auc: float | None
    test_auc: float | None
    model_uri: str | None


def train_once(cfg: DictConfig) -> SingleRunResult:
    """Run the stages of `cfg` as one MLflow run (tag role=single_run) in the experiment."""
    plan = plan_from_config(cfg)
    data = load_data(cfg)
    tracker = tracking_from_config(cfg)
    run_id = tracker.start_run(
        f"single-{time.strftime('%Y%m%d-%H%M%S')}", tags={"role": "single_run"}
    )
    log_run_inputs(
        tracker,
        run_id,
        config_yaml=OmegaConf.to_yaml(cfg, resolve=True),
        data=data,
        data_root=cfg.data.get("root"),
    )
    try:
        result = run_stages(
            plan=plan,
            data=data,
            tracker=tracker,
            parent_run_id=run_id,
            checkpoint_path=plan.checkpoint_dir / f"single-{run_id}.keras",
        )
    except StageStopped as stopped:
        status = RunStatus.KILLED if stopped.pruned else RunStatus.FAILED
        tracker.end_run(run_id, status, stopped.reason)
        return SingleRunResult(run_id, status, stopped.reason, None, None, None)
    except BaseException as error:
        tracker.end_run(run_id, RunStatus.FAILED, f"{type(error).__name__}: {error}")
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
