"""The budget refit's clock: how many epochs fit before a deadline, and the schedule over them.

`registry.refit: budget` trains the winner on train+val until the study's deadline rather than
for its trial's best-epoch count. The epoch count is planned from the trial's measured epoch
time, then planned again after every refit epoch from the refit's own measured epochs (the
trial's figure also holds its report and model logging, so it overestimates an epoch), and the
learning-rate schedule is stretched over the run, read at the point the clock says it is at.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from pipelines.plan import TrainingPlan
from pipelines.train.callbacks import StoppingCallback
from pipelines.train.schedules import build_lr_schedule


@dataclass(frozen=True)
class RefitBudget:
    """Train until `deadline` (a time.monotonic() value), about `epoch_seconds` an epoch."""

    deadline: float
    epoch_seconds: float
    # The trial's best epoch (from 0): the schedule's decay at it is reached at the end.
    best_epoch: int


def epochs_that_fit(seconds_left: float, epoch_seconds: float) -> int:
    """Whole epochs of `epoch_seconds` that end within `seconds_left` (0 if none)."""
    if seconds_left <= 0:
        return 0
    return math.floor(seconds_left / max(epoch_seconds, 1e-6))


class EpochsToDeadline(StoppingCallback):
    """Plans the epochs that end before the deadline; stops when the next one would not.

    The plan starts from an estimate and is redone at each epoch end from the last epoch's
    measured time (epoch end to epoch end, so validation and the other callbacks count), so
    training ends within about one epoch of the deadline whichever way the estimate was off.
    """

    ends_trial = False

    def __init__(self, budget: RefitBudget):
        super().__init__()
        self.deadline = budget.deadline
        self.epoch_seconds = budget.epoch_seconds
        self.planned = epochs_that_fit(budget.deadline - time.monotonic(), budget.epoch_seconds)
        self.first_plan = self.planned
        self.epochs_run = 0
        self.training_end: float | None = None
        self.last_epoch_seconds = 0.0
        self.training_start = self._last_end = time.monotonic()

    def on_train_begin(self, logs=None):
        # Only the first phase's start: a transfer model's second fit continues the clock.
        if not self.epochs_run:
            self.training_start = self._last_end = time.monotonic()

    def progress(self, epoch: int) -> float:
        """How far through the run epoch `epoch` starts: 0 at the first, 1 at the last.

        By the clock: the time since training began over the time until the last epoch must
        start; an epoch the plan counts as the last is 1 once the plan rests on epochs measured
        after the first (a plan from the estimate alone may be far off).
        """
        if epoch >= 2 and self.planned == epoch + 1:
            return 1.0
        span = self.deadline - self.training_start - self.epoch_seconds
        return min(max(self._last_end - self.training_start, 0.0) / max(span, 1e-6), 1.0)

    def on_epoch_end(self, epoch, logs=None):
        now = time.monotonic()
        measured, self._last_end = now - self._last_end, now
        self.last_epoch_seconds = measured
        # The first epoch also builds the training graph, a one-off the trial's figure spreads
        # over its epochs: the estimate stands unless the first epoch came in under it.
        self.epoch_seconds = min(measured, self.epoch_seconds) if epoch == 0 else measured
        self.epochs_run = epoch + 1
        self.training_end = now
        self.planned = self.epochs_run + epochs_that_fit(self.deadline - now, self.epoch_seconds)
        if self.planned <= self.epochs_run:
            self.stop(
                f"deadline: {max(self.deadline - now, 0):.1f} s left, an epoch takes "
                f"{self.epoch_seconds:.1f} s"
            )


class StretchedSchedule:
    """The plan's learning-rate schedule stretched over the run, as far as `progress(epoch)`
    (0 at the first epoch, 1 at the last) says the epoch is through it.

    Step and exponential decay are the trial's curve slowed down: the refit reaches the decay
    the trial had at its best epoch when its own last epoch starts, and never decays further
    than the trial that chose it. Cosine is defined over the refit's own run instead, down to
    its floor at the last epoch: annealing to the floor as the run ends is what a cosine
    schedule is for, and the trial's cut at its best epoch (often mid-curve, where early
    stopping or the budget took it) would leave the stretched run ending on a rate no schedule
    ends on. Constant stays constant. Progress is read from the clock, not the epoch count, so
    an epoch plan that changes (a first epoch slowed by building the graph, a loaded machine)
    moves no rate back up: the position on the curve never goes back.
    """

    def __init__(self, plan: TrainingPlan, *, best_epoch: int, progress: Callable[[int], float]):
        self.progress = progress
        self.position = 0.0
        settings = {"initial_learning_rate": plan.optimizer_settings["learning_rate"]}
        settings.update(plan.schedule_settings)
        cosine = plan.schedule_name == "cosine"
        # Cosine's curve is 1001 points long, read at the run's fraction done.
        self.curve_end = 1000 if cosine else best_epoch
        self.curve = build_lr_schedule(
            name=plan.schedule_name,
            max_epochs=self.curve_end + 1 if cosine else plan.full_max_epochs,
            **settings,
        )

    def __call__(self, epoch: int) -> float:
        self.position = max(self.position, self.progress(epoch) * self.curve_end)
        return self.curve(self.position)


def stretched_head_epochs(head_epochs: int, *, best_epoch: int, planned: int) -> int:
    """A transfer model's frozen-backbone epochs, stretched as the schedule is; the last
    planned epoch fine-tunes at least (as a train_val refit's does)."""
    if not head_epochs:
        return 0
    stretched = round(head_epochs * (planned - 1) / best_epoch) if best_epoch else planned
    return max(min(stretched, planned - 1), 0)
