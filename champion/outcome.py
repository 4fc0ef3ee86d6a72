"""What promotion reads from a finished study, as plain values (sweep/ builds them).

The champion's side never sees Optuna: a trial arrives as a TrialRecord, the study as a
StudyOutcome holding its data, tracker and budget.
"""

from dataclasses import dataclass

from pipelines.data.datasets import ImageFolderData
from pipelines.tracking import Tracker


@dataclass(frozen=True)
class TrialRecord:
    """A complete trial: its number, value, MLflow run and logged model."""

    number: int
    value: float
    run_id: str
    model_uri: str
    # The epoch (from 0) its val metric peaked at; the refit trains up to it.
    best_epoch: int
    # Its full stage's wall seconds and epochs (trial user attributes); None: not recorded.
    full_seconds: float | None = None
    full_epochs: int | None = None


@dataclass(frozen=True)
class StudyOutcome:
    """A finished study as promotion needs it: the best trial, every complete one, the budget."""

    study_name: str
    best: TrialRecord
    complete: list[TrialRecord]
    data: ImageFolderData
    # How the study's images were read (pipelines.plan.data_loading_key): ensemble members
    # must read them the same way.
    base_data_key: str
    tracker: Tracker
    parent_run_id: str
    # search.timeout_minutes in seconds and its end (a time.monotonic() value); None: none.
    budget_seconds: float | None = None
    deadline: float | None = None
    # The sweep checked the registry against this data before its trials: not again.
    registry_checked: bool = False
