"""Refit: one configuration trained again on train+val for a fixed number of epochs.

The study picks a configuration and its best epoch on the val split; the model shipped can
then learn from the val images too. With val inside the training set nothing is left to pick
epochs by, so the epoch count is fixed beforehand and the last epoch's weights are kept. The
run's per-epoch `val_*` metrics and its report are computed on the test split (tagged
`evaluated_on: test`): they are only looked at, nothing is chosen by them. The refit is
scored on test here, once, from the model in memory: promotion takes that score as it is.

With a RefitBudget (`registry.refit: budget`) the epoch count is not fixed: training runs until
the budget's deadline, with the schedule stretched over it (pipelines/refit_budget.py).
"""

import dataclasses
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import keras
import numpy as np

from pipelines.data.datasets import ImageFolderData, build_batches
from pipelines.data.folders import FolderSplit
from pipelines.errors import ImgsweepError
from pipelines.evaluate import SplitScore, timed_evaluation
from pipelines.plan import TrainingPlan
from pipelines.planned_fit import compiled_model, fit_as_planned
from pipelines.provenance import log_run_inputs
from pipelines.refit_budget import (
    EpochsToDeadline,
    RefitBudget,
    StretchedSchedule,
    stretched_head_epochs,
)
from pipelines.stage_run import end_raised_run
from pipelines.tracking import EpochMetricsLogger, RunStatus, Tracker
from pipelines.tracking.keras_logging import log_model_summary
from pipelines.tracking.reports import log_stage_report
from pipelines.train.callbacks import FiniteLossGuard


@dataclass(frozen=True)
class RefitResult:
    run_id: str
    model_uri: str
    test_score: SplitScore
    epochs_trained: int


def refit_epochs(best_epoch: int) -> int:
    """Epochs of the refit: as many as the trial ran up to its best one (best_epoch counts
    from 0). Each epoch covers train+val, so it takes (train+val)/train as many steps."""
    return best_epoch + 1


def refit_seconds(*, seconds_per_epoch: float, epochs: int, train: int, val: int) -> float:
    """The refit's expected cost: the trial's full-stage seconds per epoch, scaled by data."""
    return seconds_per_epoch * epochs * (train + val) / train


def train_val_split(data: ImageFolderData) -> FolderSplit:
    """The train and val splits as one training split."""
    train, val = data.splits["train"], data.splits["val"]
    return FolderSplit(
        name="train+val",
        files=train.files + val.files,
        labels=np.concatenate([train.labels, val.labels]),
    )


# A budget refit's epoch cap for Keras' fit: its EpochsToDeadline stops it long before.
UNBOUNDED_EPOCHS = 100_000


def _budget_fit(plan: TrainingPlan, budget: RefitBudget | None, epochs: int):
    """The plan, schedule, epoch cap and stopper of a budget refit (as is without a budget)."""
    if budget is None:
        return plan, None, epochs, None
    clock = EpochsToDeadline(budget)
    head = stretched_head_epochs(
        plan.fine_tune_head_epochs, best_epoch=budget.best_epoch, planned=clock.planned
    )
    schedule = StretchedSchedule(plan, best_epoch=budget.best_epoch, progress=clock.progress)
    stretched = dataclasses.replace(plan, fine_tune_head_epochs=head)
    return stretched, schedule, UNBOUNDED_EPOCHS, clock


def _log_budget(tracker: Tracker, run_id: str, budget: RefitBudget, clock, started: float):
    """What the budget refit planned and did, and how close to its deadline it ended."""
    deadline = datetime.now(UTC).timestamp() + budget.deadline - time.monotonic()
    estimate = round(budget.epoch_seconds, 2)
    tracker.log_params(
        run_id, {"epochs_trained": clock.epochs_run, "epoch_seconds_estimate": estimate}
    )
    tracker.log_metrics(
        run_id,
        {
            "training_seconds": (clock.training_end or started) - started,
            "seconds_to_deadline": budget.deadline - (clock.training_end or started),
            "last_epoch_seconds": clock.last_epoch_seconds,
        },
    )
    tracker.set_tags(
        run_id,
        {"refit_deadline": datetime.fromtimestamp(deadline, UTC).isoformat(timespec="seconds")},
    )


def refit_on_train_val(
    *,
    plan: TrainingPlan,
    data: ImageFolderData,
    epochs: int,
    tracker: Tracker,
    parent_run_id: str,
    config_yaml: str,
    tags: dict[str, str],
    budget: RefitBudget | None = None,
) -> RefitResult:
    """Train `plan` on train+val as a run named `refit`; log it, score it on test.

    Without a budget it trains `epochs`; with one, until the budget's deadline (`epochs` is
    then what the trial's best epoch asks for, logged beside what was planned and trained).
    """
    if "test" not in data.splits:
        raise ImgsweepError("data.test_dir is not set; the refit is scored on the test split")
    keras.backend.clear_session()
    keras.utils.set_random_seed(plan.seed)
    training, test = train_val_split(data), data.splits["test"]
    # The report and the per-epoch val_* metrics read splits["val"]: here, the test split.
    shown = dataclasses.replace(data, splits={**data.splits, "train": training, "val": test})
    run_id = tracker.start_run(
        "refit",
        parent_run_id=parent_run_id,
        tags={"role": "refit", "evaluated_on": "test", **tags},
    )
    try:
        log_run_inputs(tracker, run_id, config_yaml=config_yaml, data=data)
        model = compiled_model(plan, data)
        log_model_summary(tracker, run_id, model)
        fitted_plan, schedule, max_epochs, clock = _budget_fit(plan, budget, epochs)
        params = {"train_images": len(training), "epochs": epochs}
        if clock:
            params.update(refit_mode="budget", epochs_planned=clock.first_plan)
        tracker.log_params(run_id, params)
        guard = FiniteLossGuard()
        started = time.monotonic()
        epochs_trained = fit_as_planned(
            model,
            plan=fitted_plan,
            data=shown,
            train_split=training,
            val_split=test,
            max_epochs=max_epochs,
            callbacks=[EpochMetricsLogger(tracker, run_id), guard, *([clock] if clock else [])],
            stoppers=[guard, *([clock] if clock else [])],
            schedule=schedule,
        )
        if guard.stop_reason:
            raise ImgsweepError(f"refit: {guard.stop_reason}")
        if clock:
            _log_budget(tracker, run_id, budget, clock, started)
        sample_images = next(iter(build_batches(data, test, batch_size=4)))[0].numpy()
        model_uri = tracker.log_keras_model(run_id, model, sample_images)
        log_stage_report(tracker, run_id, model=model, data=shown, seed=plan.seed)
        test_score = timed_evaluation(model, data, test)
        tracker.log_metrics(
            run_id, {f"test_{name}": value for name, value in test_score.metrics.items()}
        )
        tracker.set_tags(run_id, {"model_uri": model_uri})
    except BaseException as error:
        end_raised_run(tracker, run_id, error, prefix="refit: ")
        raise
    tracker.end_run(run_id, RunStatus.FINISHED)
    return RefitResult(
        run_id=run_id, model_uri=model_uri, test_score=test_score, epochs_trained=epochs_trained
    )
