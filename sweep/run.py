"""`make sweep`: the study's entry function, from a composed config to a promoted champion."""

import sys
from dataclasses import dataclass

import optuna
from omegaconf import DictConfig
from tqdm import tqdm

from pipelines.data.folders import fingerprint
from pipelines.metrics import registry_metric
from pipelines.tracking import RunStatus
from pipelines.tracking.client import TrackingUnavailable
from sweep.loop import format_outcome
from sweep.registry import Promotion, promote
from sweep.report import log_study_report
from sweep.session import StudySession, open_session
from sweep.study import finished_trial_count
from sweep.workers import run_worker_processes

TrialState = optuna.trial.TrialState


@dataclass(frozen=True)
class SweepResult:
    study: optuna.Study
    parent_run_id: str
    trials_run: int
    promotion: Promotion | None


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best complete trial in the study's direction (val_loss: the lowest); None if none."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    pick = min if study.direction == optuna.study.StudyDirection.MINIMIZE else max
    return pick(complete, key=lambda trial: trial.value) if complete else None


def study_metric(study: optuna.Study) -> str:
    """The metric the study's values are (search.metric resolved when it was created)."""
    return study.user_attrs.get("metric", "val_auc")


def _close_parent_run(session: StudySession, status: RunStatus) -> None:
    """The study's summary on its MLflow run: trials.csv and plots, best trial tags, status."""
    tracker, run_id = session.tracker, session.parent_run_id
    log_study_report(tracker, run_id, session.study)
    best = best_trial(session.study)
    if best is not None:
        tracker.set_tags(
            run_id,
            {"best_trial_number": best.number, "best_run_id": best.user_attrs["mlflow_run_id"]},
        )
        tracker.log_metrics(
            run_id,
            {
                "best_val_auc": best.user_attrs.get("best_val_auc", best.value),
                f"best_{study_metric(session.study)}": best.value,
            },
        )
    tracker.end_run(run_id, status)


def run_in_this_process(session: StudySession, total: int) -> None:
    """The trial loop with a progress bar (on a terminal) and one line per trial."""
    with tqdm(
        total=total, unit="trial", dynamic_ncols=True, disable=not sys.stderr.isatty()
    ) as bar:

        def report(trial, outcome, seconds):
            bar.update()
            bar.write(format_outcome(trial, outcome, seconds))

        session.run_trials(report)


def run_sweep(cfg: DictConfig, command_line_overrides: list[str]) -> SweepResult:
    """Run (or resume) the study to `search.n_trials` trials, then promote the best."""
    session = open_session(cfg, command_line_overrides, create=True)
    study, data = session.study, session.context.base_data
    done_before = finished_trial_count(study)
    remaining = max(cfg.search.n_trials - done_before, 0)
    print(
        f"study '{study.study_name}': {done_before} trials done, {remaining} to run"
        f"{f' on {cfg.search.workers} workers' if cfg.search.workers > 1 else ''}; "
        f"{len(data.splits['train'])} train / {len(data.splits['val'])} val images, "
        f"classes {data.class_names}",
        flush=True,
    )
    status = RunStatus.KILLED
    try:
        if cfg.search.workers > 1:
            run_worker_processes(cfg.search.workers, command_line_overrides)
        else:
            run_in_this_process(session, remaining)
        status = RunStatus.FINISHED
    finally:
        session.lock.close()
        try:
            _close_parent_run(session, status)
        except TrackingUnavailable:
            # Already failing (tracking is why, most likely): let that error be the one shown.
            if status == RunStatus.FINISHED:
                raise

    best = best_trial(study)
    promotion = None
    if best is not None and cfg.registry.promote_after_sweep:
        promotion = promote_trial(cfg, session, best)
    trials_run = finished_trial_count(study) - done_before
    return SweepResult(study, session.parent_run_id, trials_run, promotion)


def promote_trial(
    cfg: DictConfig, session: StudySession, trial: optuna.trial.FrozenTrial
) -> Promotion:
    """Promote one completed trial's model under `registry.model_name`."""
    data = session.context.base_data
    return promote(
        tracker=session.tracker,
        model_uri=trial.user_attrs["model_uri"],
        run_id=trial.user_attrs["mlflow_run_id"],
        data=data,
        model_name=cfg.registry.model_name,
        metric=registry_metric(cfg.registry.metric, cfg.search.metric, data.num_classes),
        min_delta=cfg.registry.min_delta,
        force=bool(cfg.registry.force),
        champion_alias=cfg.registry.champion_alias,
        challenger_alias=cfg.registry.challenger_alias,
        tags={
            "study": session.study.study_name,
            "trial_number": str(trial.number),
            study_metric(session.study): f"{trial.value:.6f}",
            "data_fingerprint": fingerprint(data.splits),
            "class_names": ",".join(data.class_names),
        },
    )
