"""The KerasTuner bench's minute table: best-so-far val AUC per whole minute, per epoch."""

import pytest

from bench.epoch_curves import (
    EpochPoint,
    best_so_far_by_minute,
    first_minute_behind,
    full_stage_epochs,
    minute_rows,
    minutes_covered,
)
from tests.conftest import small_overrides


def points(*pairs: tuple[float, float]) -> list[EpochPoint]:
    """One trial's epochs at (seconds, val AUC)."""
    return [EpochPoint(seconds, value, "0", epoch) for epoch, (seconds, value) in enumerate(pairs)]


def test_best_so_far_counts_each_epoch_by_the_minute_it_ended_in():
    # One trial's epochs: its first epoch is a model at minute 1 though the trial ends later,
    # a worse epoch does not lower the best, and an epoch at exactly 60 s belongs to minute 1.
    timeline = [(50.0, 0.70), (60.0, 0.80), (100.0, 0.75), (170.0, 0.90)]
    assert best_so_far_by_minute(timeline, 4) == [0.80, 0.80, 0.90, 0.90]


def test_best_so_far_is_none_until_the_first_epoch_and_never_falls():
    timeline = [(200.0, 0.91), (130.0, 0.88), (250.0, 0.60), (400.0, float("nan"))]
    bests = best_so_far_by_minute(timeline, 7)
    assert bests == [None, None, 0.88, 0.91, 0.91, 0.91, 0.91]
    assert best_so_far_by_minute([], 2) == [None, None]


def test_minute_rows_show_blanks_and_the_first_minute_imgsweep_was_behind():
    imgsweep = points((90.0, 0.90), (200.0, 0.93))
    kerastuner = points((40.0, 0.80), (150.0, 0.95), (230.0, 0.95))
    rows = minute_rows(imgsweep, kerastuner, 4)
    assert [(row["imgsweep"], row["kerastuner"]) for row in rows] == [
        (None, 0.80),
        (0.90, 0.80),
        (0.90, 0.95),
        (0.93, 0.95),
    ]
    assert rows[0]["difference"] is None
    assert rows[1]["difference"] == pytest.approx(0.10)
    # Minute 1 is not judged; minute 3 is the first where KerasTuner leads.
    assert first_minute_behind(rows) == 3


def test_imgsweep_is_ahead_with_a_model_before_kerastuner_has_one_but_not_on_a_tie():
    rows = minute_rows(points((30.0, 0.90)), points((150.0, 0.90)), 3)
    assert rows[1]["kerastuner"] is None and rows[1]["difference"] is None
    assert first_minute_behind(rows) == 3  # 0.90 against 0.90 is not ahead
    ahead = minute_rows(points((30.0, 0.90)), points((150.0, 0.89)), 3)
    assert first_minute_behind(ahead) is None


def test_the_table_covers_the_budget_and_the_last_epoch_past_it():
    assert minutes_covered([points((30.0, 0.9)), []], 2) == 2
    assert minutes_covered([points((30.0, 0.9)), points((130.0, 0.9))], 2) == 3
    assert minutes_covered([[], []], 0.5) == 1


@pytest.mark.slow
def test_a_study_timeline_holds_each_complete_trials_full_stage_epochs(binary_digits, tmp_path):
    from bench.studies import run_study

    overrides = small_overrides(
        binary_digits, tmp_path / "mlruns", **{"registry.promote_after_sweep": "false"}
    )
    record = run_study("imgsweep", overrides)
    timeline = full_stage_epochs(record)
    assert record.complete
    for trial in record.complete:
        epochs = [point for point in timeline if point.trial == str(trial.number)]
        # The full stage's epochs only: the overfit stage's 25 epochs (scored on train
        # images) are no model on val and are not in the timeline.
        assert [point.epoch for point in epochs] == list(range(trial.full_epochs))
        assert max(point.val_auc for point in epochs) == pytest.approx(trial.value)
        assert all(0 < point.seconds <= trial.seconds for point in epochs)
    assert {point.trial for point in timeline} == {str(t.number) for t in record.complete}
