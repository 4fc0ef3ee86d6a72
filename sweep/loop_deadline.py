"""When the trial loop stops starting trials: search.timeout_minutes less the refit's reserve.

With `registry.refit_reserve: auto` the reserve is what the refit of the study's current best
trial takes by that trial's measured epochs (champion.final_models.refit_reserve_seconds), so
it is read again before every trial: a new best with longer epochs moves the loop's end
earlier. Every worker reads the same study, so workers agree on it without talking.
"""

import time

import optuna

from champion.final_models import (
    RESERVE_MARGIN,
    UNMEASURED_RESERVE,
    refit_reserve_seconds,
    trial_loop_seconds,
)


def _measured_best(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best complete trial, if its full stage's seconds and epochs were recorded."""
    try:
        best = study.best_trial
    except ValueError:  # no complete trial yet
        return None
    attrs = best.user_attrs
    measured = attrs.get("full_seconds") and attrs.get("full_epochs") and "best_epoch" in attrs
    return best if measured else None


class LoopDeadline:
    """Called before each trial: the time.monotonic() value after which no trial starts
    (None: no budget); `reason` says what the time after it is held for."""

    def __init__(
        self,
        study: optuna.Study,
        *,
        started: float,
        timeout_minutes: float | None,
        reserve_fraction: float | None,
        train_images: int,
        val_images: int,
    ):
        self.study = study
        self.started = started
        self.timeout_minutes = timeout_minutes
        self.reserve_fraction = reserve_fraction
        self.images = {"train": train_images, "val": val_images}
        self.reason = ""

    def __call__(self) -> float | None:
        if not self.timeout_minutes:
            return None
        budget = 60 * self.timeout_minutes
        best = None if self.reserve_fraction is not None else _measured_best(self.study)
        if best is None:
            fraction = self.reserve_fraction
            self.reason = f"the refit: registry.refit_reserve {fraction} of the budget"
            if fraction is None:
                fraction = UNMEASURED_RESERVE
                self.reason = f"the refit: {fraction:.0%} of the budget until a trial completes"
            return self.started + trial_loop_seconds(self.timeout_minutes, fraction)
        attrs = best.user_attrs
        reserve = refit_reserve_seconds(
            full_seconds=attrs["full_seconds"],
            full_epochs=attrs["full_epochs"],
            best_epoch=attrs["best_epoch"],
            train=self.images["train"],
            val=self.images["val"],
        )
        self.reason = (
            f"the refit of trial {best.number}, the best so far ({attrs['best_epoch'] + 1} "
            f"epochs at its measured {attrs['full_seconds'] / attrs['full_epochs']:.1f} s, on "
            f"train+val, plus {RESERVE_MARGIN:.0%}: {reserve / 60:.1f} min)"
        )
        return self.started + budget - reserve

    def stopped_line(self) -> str | None:
        """The line to print when the loop stopped at this deadline, else None."""
        deadline = self()
        if deadline is None or time.monotonic() < deadline or self.reserve_fraction == 0:
            return None
        left = self.started + 60 * self.timeout_minutes - time.monotonic()
        return (
            f"trial loop: no new trial with {max(left, 0) / 60:.1f} min of "
            f"search.timeout_minutes left, held for {self.reason}"
        )
