"""Best-so-far val AUC at every whole minute, from each tool's per-epoch timeline.

A timeline is one point per trained epoch that counts as a model on the val split: when the
epoch ended and its val AUC. Both tools keep a best-epoch checkpoint, so a model exists from a
trial's first epoch, and a tool's best model at minute m is the best epoch that ended by then.

Each tool's clock starts when its search starts, which is when its budget starts (imgsweep:
its first trial, as Optuna stamps it; KerasTuner: `tuner.search`), so minute m of the table
is minute m of both budgets. What comes before (loading and decoding the data; for imgsweep
also opening the study) is the tool's setup, reported apart; a tool's time after its budget
(the epoch that ends the trial running at the deadline) is on the table's last minutes. (An
uncached data-quality report, which bench.vs_kerastuner turns off, would be setup here too,
though a study takes its time out of the budget.)

What counts, for either tool, is the epochs of trials that ended with a result (imgsweep:
COMPLETE; KerasTuner: COMPLETED), since only those trials' checkpoints can be the model
the tool hands out. A trial that is later pruned or fails does not count even for the
minutes it was running, which can only understate a tool at those minutes.

For imgsweep these are the full stage's epochs (the whole train split, scored on val). The
ablation stage (a few images, no val) and the overfit stage (a small train subset, scored on
that subset) train throwaway models that are not scored on val, so their epochs are no model
on val and count for nothing. Their time does count: it is on the clock before the full stage.
An imgsweep epoch's time is when its metrics reached MLflow (EpochMetricsLogger): at its end
(a fraction of a second before its checkpoint is written), or a few seconds later for epochs
shorter than the logger's 2 s flush interval. KerasTuner's is taken after its checkpoint.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass

from bench.studies import StudyRecord

# The Keras log name of the metric every timeline holds.
VAL_AUC = "val_auc"


@dataclass(frozen=True)
class EpochPoint:
    """One counted epoch: when it ended (seconds since its tool started) and its val AUC."""

    seconds: float
    val_auc: float
    trial: str
    epoch: int


def best_so_far_by_minute(
    timeline: Iterable[tuple[float, float]], minutes: int
) -> list[float | None]:
    """For each whole minute 1..`minutes`, the best value among the (seconds, value) points
    at or before it: None while there is none yet. Points with a non-finite value are skipped."""
    ordered = sorted((seconds, value) for seconds, value in timeline if math.isfinite(value))
    bests, best, index = [], None, 0
    for minute in range(1, minutes + 1):
        while index < len(ordered) and ordered[index][0] <= 60 * minute:
            value = ordered[index][1]
            best = value if best is None else max(best, value)
            index += 1
        bests.append(best)
    return bests


def minutes_covered(timelines: Iterable[list[EpochPoint]], budget_minutes: float) -> int:
    """Whole minutes up to the budget or to the last epoch of any tool, whichever is later."""
    last = max((point.seconds for points in timelines for point in points), default=0.0)
    return max(math.ceil(budget_minutes), math.ceil(last / 60), 1)


def pairs(points: list[EpochPoint]) -> list[tuple[float, float]]:
    """(seconds, val AUC) of each point: the timeline best_so_far_by_minute reads."""
    return [(point.seconds, point.val_auc) for point in points]


def minute_rows(
    ours: list[EpochPoint], theirs: list[EpochPoint], minutes: int
) -> list[dict[str, float | int | None]]:
    """One row per whole minute: each tool's best-so-far val AUC and ours less theirs."""
    our_bests = best_so_far_by_minute(pairs(ours), minutes)
    their_bests = best_so_far_by_minute(pairs(theirs), minutes)
    return [
        {
            "minute": minute,
            "imgsweep": our,
            "kerastuner": their,
            "difference": None if our is None or their is None else our - their,
        }
        for minute, our, their in zip(range(1, minutes + 1), our_bests, their_bests, strict=True)
    ]


def is_ahead(row: dict) -> bool:
    """imgsweep has a model, better than KerasTuner's or before it has one; a tie is not ahead."""
    ours, theirs = row["imgsweep"], row["kerastuner"]
    return ours is not None and (theirs is None or ours > theirs)


def first_minute_behind(rows: list[dict], *, from_minute: int = 2) -> int | None:
    """The first minute from `from_minute` on at which imgsweep is not ahead; None if never."""
    return next(
        (row["minute"] for row in rows if row["minute"] >= from_minute and not is_ahead(row)),
        None,
    )


def full_stage_epochs(record: StudyRecord) -> list[EpochPoint]:
    """The full-stage epochs of the study's complete trials, from their MLflow runs.

    Seconds count from the study's first trial start. Needs the study's tracking store, so
    call it before that is deleted.
    """
    from pipelines.config import compose_config
    from pipelines.plan import tracking_from_config

    tracker = tracking_from_config(compose_config(record.overrides))
    trial_of_run = {trial.run_id: trial.number for trial in record.complete if trial.run_id}
    zero = record.search_started_unix or record.started_unix
    points = []
    for run in tracker.find_runs("tags.stage = 'full'"):
        trial = trial_of_run.get(run.data.tags.get("mlflow.parentRunId"))
        if trial is None:
            continue
        points += [
            EpochPoint(
                seconds=metric.timestamp / 1000 - zero,
                val_auc=metric.value,
                trial=str(trial),
                epoch=metric.step,
            )
            for metric in tracker.metric_history(run.info.run_id, VAL_AUC)
        ]
    return sorted(points, key=lambda point: point.seconds)
