"""`make sweep`: the study's entry function, from a composed config to a promoted champion."""

import csv
import io
import sys
import time
from dataclasses import dataclass

import optuna
from omegaconf import DictConfig
from tqdm import tqdm

from pipelines.config import resolve_path
from pipelines.data.folders import fingerprint
from pipelines.errors import ImgsweepError
from pipelines.plan import load_data, plan_from_config
from pipelines.tracking import RunStatus, Tracker, connect_tracking
from sweep.objective import TrialContext, describe, run_trial
from sweep.registry import Promotion, promote
from sweep.space import check_model_keys, parse_space
from sweep.study import (
    build_pruner,
    build_sampler,
    finished_trial_count,
    mask_password,
    open_study,
    storage_url,
)

TrialState = optuna.trial.TrialState


@dataclass(frozen=True)
class SweepResult:
    study: optuna.Study
    parent_run_id: str
    trials_run: int
    promotion: Promotion | None


def override_keys(overrides: list[str]) -> set[str]:
    """The config keys a list of Hydra overrides sets (`+x=1` and `optimizer=sgd` alike)."""
    return {override.split("=", 1)[0].lstrip("+~") for override in overrides if "=" in override}


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
            "role": "study",
        },
    )
    study.set_user_attr("mlflow_parent_run_id", run_id)
    return run_id


def trials_table(study: optuna.Study) -> str:
    """All trials as CSV: number, state, reason, value, run id, params."""
    trials = study.get_trials(deepcopy=False)
    param_names = sorted({name for trial in trials for name in trial.params})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["number", "state", "reason", "value", "mlflow_run_id", *param_names])
    for trial in trials:
        writer.writerow(
            [
                trial.number,
                trial.state.name,
                trial.user_attrs.get("reason", ""),
                "" if trial.value is None else f"{trial.value:.6f}",
                trial.user_attrs.get("mlflow_run_id", ""),
                *(trial.params.get(name, "") for name in param_names),
            ]
        )
    return buffer.getvalue()


def _best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return max(complete, key=lambda trial: trial.value) if complete else None


def run_sweep(cfg: DictConfig, command_line_overrides: list[str]) -> SweepResult:
    """Run (or resume) the study to `search.n_trials` finished trials, then promote the best."""
    plan_from_config(cfg)
    dimensions = parse_space(cfg.search.space)
    check_model_keys(dimensions, cfg)
    data = load_data(cfg)
    mlruns_dir = resolve_path(cfg.tracking.mlruns_dir)
    study_name = cfg.search.study_name
    tracker = connect_tracking(
        mlruns_dir=mlruns_dir,
        tracking_uri=cfg.tracking.tracking_uri,
        experiment_name=cfg.tracking.experiment_name or study_name,
    )
    storage = storage_url(cfg.search.storage, mlruns_dir)
    study = open_study(
        study_name=study_name,
        storage=storage,
        sampler=build_sampler(**cfg.search.sampler, seed=cfg.seed),
        pruner=build_pruner(**cfg.search.pruner),
    )
    # A resumed study must not replay the sampler's first draws: offset the seed by its trials.
    study.sampler = build_sampler(**cfg.search.sampler, seed=cfg.seed + len(study.trials))
    parent_run_id = _parent_run(tracker, study, cfg, storage)
    context = TrialContext(
        base_overrides=list(command_line_overrides),
        fixed_keys=override_keys(command_line_overrides),
        dimensions=dimensions,
        tracker=tracker,
        parent_run_id=parent_run_id,
        base_data_config=cfg.data,
        base_data=data,
    )
    remaining = cfg.search.n_trials - finished_trial_count(study)
    deadline = (
        time.monotonic() + 60 * cfg.search.timeout_minutes if cfg.search.timeout_minutes else None
    )
    print(
        f"study '{study_name}': {finished_trial_count(study)} trials done, {max(remaining, 0)} to "
        f"run; {len(data.splits['train'])} train / {len(data.splits['val'])} val images, "
        f"classes {data.class_names}"
    )
    trials_run, failures_in_a_row = 0, 0
    status = RunStatus.KILLED
    try:
        with tqdm(
            total=max(remaining, 0),
            unit="trial",
            dynamic_ncols=True,
            disable=not sys.stderr.isatty(),
        ) as progress:
            while trials_run < remaining and (deadline is None or time.monotonic() < deadline):
                trial = study.ask()
                started = time.monotonic()
                outcome = run_trial(trial, context)
                study.tell(trial, outcome.value, state=outcome.state)
                trials_run += 1
                progress.update()
                value = "" if outcome.value is None else f" val_auc={outcome.value:.4f}"
                reason = f" ({outcome.reason})" if outcome.reason else ""
                progress.write(
                    f"trial {trial.number}: {outcome.state.name}{value}{reason} "
                    f"in {time.monotonic() - started:.0f}s [{describe(trial.params)}]"
                )
                failures_in_a_row = (
                    failures_in_a_row + 1 if outcome.state == TrialState.FAIL else 0
                )
                if failures_in_a_row >= cfg.search.max_consecutive_failures:
                    raise ImgsweepError(
                        f"{failures_in_a_row} trials failed in a row (last: {outcome.reason}); "
                        "the setup is likely wrong, not the trials: fix it and run again to resume"
                    )
        status = RunStatus.FINISHED
    finally:
        tracker.log_text(parent_run_id, trials_table(study), "trials.csv")
        best = _best_trial(study)
        if best is not None:
            tracker.set_tags(
                parent_run_id,
                {
                    "best_trial_number": best.number,
                    "best_run_id": best.user_attrs["mlflow_run_id"],
                },
            )
            tracker.log_metrics(parent_run_id, {"best_val_auc": best.value})
        tracker.end_run(parent_run_id, status)

    promotion = None
    if best is not None and cfg.registry.promote_after_sweep:
        promotion = promote_trial(cfg, tracker, data, best, study_name)
    return SweepResult(study, parent_run_id, trials_run, promotion)


def promote_trial(
    cfg, tracker, data, trial: optuna.trial.FrozenTrial, study_name: str
) -> Promotion:
    """Promote one completed trial's model under `registry.model_name`."""
    return promote(
        tracker=tracker,
        model_uri=trial.user_attrs["model_uri"],
        run_id=trial.user_attrs["mlflow_run_id"],
        data=data,
        model_name=cfg.registry.model_name,
        min_delta=cfg.registry.min_delta,
        force=bool(cfg.registry.force),
        champion_alias=cfg.registry.champion_alias,
        challenger_alias=cfg.registry.challenger_alias,
        tags={
            "study": study_name,
            "trial_number": str(trial.number),
            "val_auc": f"{trial.value:.6f}",
            "data_fingerprint": fingerprint(data.splits),
            "class_names": ",".join(data.class_names),
        },
    )
