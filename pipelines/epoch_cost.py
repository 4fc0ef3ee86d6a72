"""What a configuration's trial costs on this machine, from a few timed training steps.

A study sizes itself to its budget before its first trial (sweep/sizing.py): it needs, for each
queued configuration, the seconds of one full-stage epoch here and of what a trial spends
besides its epochs. Both come from one short measurement on the cached train tensors: the model
built and traced (one warm-up step), then a few steps timed as model.fit runs them, at the
configuration's batch size, through the same batch pipeline (gather, augmentation) the full
stage uses. Extrapolated to the whole train split and the val pass, it is a few seconds' work.
"""

import math
import statistics
import time
from dataclasses import dataclass

import keras

from pipelines.data.datasets import ImageFolderData, build_batches
from pipelines.plan import TrainingPlan
from pipelines.planned_fit import compiled_model
from pipelines.train.augment import build_augmentation

# After one warm-up step (train_on_batch: builds the optimizer, traces the step), the steps
# run as model.fit's loop runs them: the compiled train function on the prefetched batch
# iterator, back to back, its results read once per round of STEPS_PER_ROUND (reading them
# each step would add a wait per step that fit does not have). Rounds are timed until
# MIN_ROUNDS have run and MIN_SECONDS have passed (a fast model's step is too short to time
# alone), MAX_ROUNDS at most; the median round is the figure (other work on the machine makes
# outliers).
STEPS_PER_ROUND = 4
MIN_ROUNDS = 3
MAX_ROUNDS = 8
MIN_SECONDS = 0.3
# An image scored (validation) costs about this share of an image trained: the forward pass
# without the backward one, which costs about twice as much. Timed here: 0.28 for the small
# CNN, 0.32 for the VGG-style net (a val batch of 256 against training batches of 64 and 32);
# estimating it saves tracing a second function.
FORWARD_SHARE = 1 / 3


@dataclass(frozen=True)
class EpochCost:
    """One configuration's measured cost here, extrapolated to its trial's stages."""

    model_name: str
    batch_size: int
    # The median timed training step (its batch gathered and augmented as the fit does).
    step_seconds: float
    # Building, compiling and tracing the model: paid by each of the trial's stages.
    setup_seconds: float
    train_steps: int
    val_images: int
    # The ablation and overfit checks at their longest, as training steps and images scored.
    check_steps: int
    check_images_scored: int
    # How long this measurement took.
    measured_in_seconds: float

    def _scoring_seconds(self, images: int) -> float:
        return images * FORWARD_SHARE * self.step_seconds / self.batch_size

    @property
    def epoch_seconds(self) -> float:
        """One full-stage epoch: the train split at the batch size, then the val pass."""
        return self.step_seconds * self.train_steps + self._scoring_seconds(self.val_images)

    @property
    def overhead_seconds(self) -> float:
        """What a trial spends besides its full-stage epochs: three model setups and the
        checks at their longest (a configuration that learns passes the overfit check sooner)."""
        checks = self.step_seconds * self.check_steps
        return 3 * self.setup_seconds + checks + self._scoring_seconds(self.check_images_scored)

    def trial_seconds(self, epochs: int) -> float:
        """A trial that trains `epochs` full-stage epochs."""
        return self.overhead_seconds + epochs * self.epoch_seconds


def _check_steps(plan: TrainingPlan, num_classes: int) -> tuple[int, int]:
    """The ablation's and the overfit check's training steps and images scored, at most."""
    steps, scored = 0, 0
    if plan.ablation_enabled:
        images = plan.ablation_images_per_class * num_classes
        steps += plan.ablation_epochs * math.ceil(images / plan.full_batch_size)
    if plan.overfit_enabled:
        images = plan.overfit_images_per_class * num_classes
        steps += plan.overfit_max_epochs * math.ceil(images / plan.overfit_batch_size)
        scored += plan.overfit_max_epochs * images  # the check scores its subset each epoch
    return steps, scored


def _step_seconds(model: keras.Model, batches) -> float:
    """The median over timed rounds of seconds per training step."""
    rounds: list[float] = []
    started = time.perf_counter()
    while len(rounds) < MAX_ROUNDS:
        if len(rounds) >= MIN_ROUNDS and time.perf_counter() - started >= MIN_SECONDS:
            break
        round_started = time.perf_counter()
        for _ in range(STEPS_PER_ROUND):
            logs = model.train_function(batches)  # one step, as fit calls it
        float(logs["loss"])  # waits for the round's steps to finish
        rounds.append((time.perf_counter() - round_started) / STEPS_PER_ROUND)
    return statistics.median(rounds)


def measure_epoch_cost(*, plan: TrainingPlan, data: ImageFolderData) -> EpochCost:
    """Time a few training steps of the plan's model here; extrapolate to its trial."""
    started = time.perf_counter()
    batch_size = plan.full_batch_size
    train = data.splits["train"]
    # Enough images for every step without repeating, when the split has them.
    steps = 1 + MAX_ROUNDS * STEPS_PER_ROUND
    subset = train.take_per_class(math.ceil(steps * batch_size / data.num_classes), plan.seed)
    augmentation = build_augmentation(**plan.augment_settings, seed=plan.seed)
    batches = iter(
        build_batches(
            data, subset, batch_size=batch_size, shuffle_seed=plan.seed, augmentation=augmentation
        ).repeat()
    )
    model = compiled_model(plan, data)
    model.train_on_batch(*next(batches))  # builds the optimizer and traces the train step
    setup_seconds = time.perf_counter() - started
    step_seconds = _step_seconds(model, batches)
    check_steps, check_images_scored = _check_steps(plan, data.num_classes)
    return EpochCost(
        model_name=plan.model_name,
        batch_size=batch_size,
        step_seconds=step_seconds,
        setup_seconds=setup_seconds,
        train_steps=math.ceil(len(train) / batch_size),
        val_images=len(data.splits["val"]),
        check_steps=check_steps,
        check_images_scored=check_images_scored,
        measured_in_seconds=time.perf_counter() - started,
    )
