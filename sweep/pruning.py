"""The Keras callback through which Optuna's pruner can stop a full-stage run, and what the
steps it reports count: epochs, or training seconds (`search.pruner.resource`)."""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import optuna

from pipelines.config import check_pruner_resource
from pipelines.train.callbacks import StoppingCallback

# With seconds, a step is a tenth of the study's reference epoch (the seconds one full-stage
# epoch of its first queued configuration takes on this machine), so steps mean the same on a
# fast and a slow machine, and a rung falls within a tenth of an epoch of its time.
STEPS_PER_REFERENCE_EPOCH = 10
# The arguments of each pruner that are steps: written in epochs, or with seconds in reference
# epochs, and converted to steps here.
STEP_ARGUMENTS = {
    "hyperband": ("min_resource", "max_resource"),
    "successive_halving": ("min_resource",),
    "threshold": ("n_warmup_steps", "interval_steps"),
}


def _in_steps(value):
    """Reference epochs as steps; anything else ("auto", a bad value) as it is, for Optuna."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return round(value * STEPS_PER_REFERENCE_EPOCH)


def pruner_section_in_steps(section: dict) -> dict:
    """The pruner section with its step arguments in the steps the trials report."""
    resource = check_pruner_resource(section.get("name"), section.get("resource", "epochs"))
    if resource == "epochs":
        return section
    name = section.get("name")
    arguments = dict(section.get(name) or {})
    for key in STEP_ARGUMENTS.get(name, ()):
        if key in arguments:
            arguments[key] = _in_steps(arguments[key])
    return {**section, name: arguments}


@dataclass(frozen=True)
class PrunerResource:
    """What a trial's reported steps count.

    `epochs`: the epoch (0, 1, 2, ...), as Optuna's examples do. With `in_reference_epochs`,
    STEPS_PER_REFERENCE_EPOCH steps per reference epoch of training: measured in seconds
    (`reference_epoch_seconds` set) or, when the study has no reference, one per epoch.
    """

    name: str
    in_reference_epochs: bool = False
    reference_epoch_seconds: float | None = None

    def step(self, epoch: int, seconds: float) -> int:
        """The step after `epoch` (from 0), `seconds` of training into the full stage."""
        if not self.in_reference_epochs:
            return epoch
        if self.name == "epochs":  # no reference: each epoch counts as one
            return STEPS_PER_REFERENCE_EPOCH * (epoch + 1)
        return round(STEPS_PER_REFERENCE_EPOCH * seconds / self.reference_epoch_seconds)


def trial_resource(
    configured: str, reference_epoch_seconds: float | None
) -> tuple[PrunerResource, str | None]:
    """The resource a trial reports in, and a line to print when it cannot be `configured`."""
    if configured == "epochs":
        return PrunerResource("epochs"), None
    usable = reference_epoch_seconds is not None and reference_epoch_seconds > 0
    if usable and math.isfinite(reference_epoch_seconds):
        return PrunerResource("seconds", True, reference_epoch_seconds), None
    # The pruner was built with its rungs in reference epochs: one epoch stands for one.
    note = (
        "search.pruner.resource=seconds: the study has no measured reference epoch time "
        f"(reference_epoch_seconds={reference_epoch_seconds}), so its pruner counts epochs, "
        "each as one reference epoch"
    )
    return PrunerResource("epochs", in_reference_epochs=True), note


class OptunaPruningCallback(StoppingCallback):
    """Report `monitor` to the trial after each epoch, at the step `resource` gives; stop
    training when the pruner says so.

    The last epoch is never pruned: not `last_epoch` (the full stage's max_epochs - 1), nor an
    epoch at which another callback (early stopping, the time budget) already ended training,
    so a trial that trained to the end keeps its model.

    Training seconds count from the start of the first `fit` to this epoch's end, this callback
    being the last one called: the epoch's training and validation passes, the first epoch's
    tracing, and the metrics logging and checkpoint saves of the callbacks before it. That is
    what the study's budget pays for the epoch, so it is what the rungs compare.
    """

    def __init__(
        self,
        trial: optuna.Trial,
        *,
        monitor: str = "val_auc",
        last_epoch: int,
        resource: PrunerResource = PrunerResource("epochs"),
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__()
        self.trial = trial
        self.monitor = monitor
        self.last_epoch = last_epoch
        self.resource = resource
        self.clock = clock
        self.started: float | None = None
        self.last_step = -1

    def on_train_begin(self, logs=None):
        # A transfer model's full stage is two fits (head, then fine-tune) sharing the
        # callbacks: its training time runs on from the first one's start.
        if self.started is None:
            self.started = self.clock()

    def _next_step(self, epoch: int, seconds: float) -> int:
        # Optuna ignores a step reported twice: an epoch shorter than half a step still moves on.
        self.last_step = max(self.resource.step(epoch, seconds), self.last_step + 1)
        return self.last_step

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(value):
            return
        seconds = self.clock() - self.started
        self.trial.report(float(value), step=self._next_step(epoch, seconds))
        if epoch >= self.last_epoch or self.model.stop_training:
            return
        if self.trial.should_prune():
            self.stop(f"pruned at epoch {epoch + 1} ({self._spent(value, seconds)}by the pruner)")

    def _spent(self, value: float, seconds: float) -> str:
        """The value, and with seconds the training time it took, for the stop reason."""
        spent = f"{self.monitor} {value:.4f}, "
        if self.resource.name == "seconds":
            reference = seconds / self.resource.reference_epoch_seconds
            spent += f"after {seconds:.0f} s of training, {reference:.1f} reference epochs, "
        return spent
