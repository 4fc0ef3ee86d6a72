"""`make sweep`: the study's entry function, from a composed config to a promoted champion."""

import sys
import time
from dataclasses import dataclass

import optuna
from omegaconf import DictConfig
from tqdm import tqdm

from champion.candidates import PromotedCandidates, promote_candidates
from champion.outcome import StudyOutcome, TrialRecord
from champion.promotion import Promotion, gate_split
from pipelines.data.datasets import ImageFolderData
from pipelines.provenance import log_data_input
from pipelines.quality.settings import quality_settings
from pipelines.stopping import stop_reason
from pipelines.tracking import RunStatus
from pipelines.tracking.retry import TrackingUnavailable
from sweep.loop import format_outcome
from sweep.quality import check_study_data_quality, log_champion_label_issues
from sweep.report import log_study_report
from sweep.session import StudySession, open_session
from sweep.storage_retry import StorageUnavailable
from sweep.study import finished_trial_count
from sweep.workers import run_worker_processes

TrialState = optuna.trial.TrialState


@dataclass(frozen=True)
class SweepResult:
    study: optuna.Study
    parent_run_id: str
    trials_run: int
    final: PromotedCandidates | None

    @property
    def promotion(self) -> Promotion | None:
        """The gate's decision on the best candidate."""
        return self.final.promotion if self.final else None


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best complete trial in the study's direction (val_loss: the lowest); None if none."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    pick = min if study.direction == optuna.study.StudyDirection.MINIMIZE else max
    return pick(complete, key=lambda trial: trial.value) if complete else None


def study_metric(study: optuna.Study) -> str:
    """The metric the study's values are (search.metric resolved when it was created)."""
    return study.user_attrs.get("metric", "val_auc")


def _close_parent_run(session: StudySession, status: RunStatus, reason: str | None) -> None:
    """The study's summary on its MLflow run: trials.csv and plots, best trial tags, status."""
    tracker, run_id = session.tracker, session.parent_run_id
    try:
        log_study_report(tracker, run_id, session.study)
        best = best_trial(session.study)
    except StorageUnavailable:
        best = None  # the study cannot be read now; the run resumes and ends with it later
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
    tracker.end_run(run_id, status, reason)


def run_in_this_process(session: StudySession, total: int) -> None:
    """The trial loop with a progress bar (on a terminal) and one line per trial."""
    with tqdm(
        total=total, unit="trial", dynamic_ncols=True, disable=not sys.stderr.isatty()
    ) as bar:

        def report(trial, outcome, seconds):
            bar.update()
            bar.write(format_outcome(trial, outcome, seconds))

        session.run_trials(report)


def _describe_study_run(session: StudySession, cfg: DictConfig, data: ImageFolderData) -> None:
    """The study run's data input and start-up warnings, as MLflow shows them."""
    tags = {"gate_split": gate_split(data)}
    if data.val_warning:
        tags["val_warning"] = data.val_warning
    session.tracker.set_tags(session.parent_run_id, tags)
    log_data_input(session.tracker, session.parent_run_id, data=data, data_root=cfg.data.root)


def _stop_reason(error: BaseException) -> str:
    """Why the study run ends KILLED: a signal, or the error that stopped the trial loop."""
    if isinstance(error, KeyboardInterrupt):
        return f"{stop_reason(error)}; `make sweep` resumes the study"
    return f"{type(error).__name__}: {error}".splitlines()[0][:500]


def run_sweep(cfg: DictConfig, command_line_overrides: list[str]) -> SweepResult:
    """Run (or resume) the study to `search.n_trials` trials, then promote the best."""
    quality = quality_settings(cfg)  # a bad data.quality.* value: one line before the study
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
    if gate_split(data) == "val" and cfg.registry.promote_after_sweep:
        print(
            "registry: no test split (data.test_dir=null): the best trial is scored against "
            "the champion on the val split, and its version is tagged gate_split=val",
            flush=True,
        )
    status, reason = RunStatus.KILLED, None
    try:
        check_study_data_quality(cfg, session, quality)
        _describe_study_run(session, cfg, data)
        if cfg.search.workers > 1:
            if session.timeout_minutes:
                # The workers' budgets start about now: the refit must end by theirs.
                session.timeout_deadline = time.monotonic() + 60 * session.timeout_minutes
            run_worker_processes(cfg.search.workers, command_line_overrides)
        else:
            run_in_this_process(session, remaining)
        status = RunStatus.FINISHED
    except BaseException as error:
        reason = _stop_reason(error)
        raise
    finally:
        session.lock.close()
        try:
            _close_parent_run(session, status, reason)
        except TrackingUnavailable:
            # Already failing (tracking is why, most likely): let that error be the one shown.
            if status == RunStatus.FINISHED:
                raise

    best = best_trial(study)
    final = None
    if best is not None and cfg.registry.promote_after_sweep:
        # open_session checked the registry against this data before the first trial.
        final = promote_trial(cfg, session, best, registry_checked=True)
        if quality.enabled:
            log_champion_label_issues(session, final)
    trials_run = finished_trial_count(study) - done_before
    return SweepResult(study, session.parent_run_id, trials_run, final)


def trial_record(trial: optuna.trial.FrozenTrial) -> TrialRecord:
    """A complete trial as the champion's side reads it: plain values, no Optuna."""
    return TrialRecord(
        number=trial.number,
        value=float(trial.value),
        run_id=trial.user_attrs["mlflow_run_id"],
        model_uri=trial.user_attrs["model_uri"],
        best_epoch=int(trial.user_attrs["best_epoch"]),
        full_seconds=trial.user_attrs.get("full_seconds"),
        full_epochs=trial.user_attrs.get("full_epochs"),
    )


def study_outcome(
    session: StudySession, trial: optuna.trial.FrozenTrial, *, registry_checked: bool = False
) -> StudyOutcome:
    """The study, with `trial` as its best, as plain values for promotion."""
    complete = session.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    timeout = session.timeout_minutes
    return StudyOutcome(
        study_name=session.study.study_name,
        best=trial_record(trial),
        complete=[trial_record(each) for each in complete],
        data=session.context.base_data,
        base_data_key=session.context.base_data_key,
        tracker=session.tracker,
        parent_run_id=session.parent_run_id,
        budget_seconds=60 * timeout if timeout else None,
        deadline=session.timeout_deadline,
        registry_checked=registry_checked,
    )


def promote_trial(
    cfg: DictConfig,
    session: StudySession,
    trial: optuna.trial.FrozenTrial,
    *,
    registry_checked: bool = False,
) -> PromotedCandidates:
    """The trial, and the refit and ensemble the registry asks for, as candidates; the best
    of them takes the champion alias if it beats the champion (champion/candidates.py)."""
    outcome = study_outcome(session, trial, registry_checked=registry_checked)
    return promote_candidates(cfg, outcome)
