"""KerasTuner's Hyperband over an imgsweep search space, on the clock bench/vs_kerastuner.py reads.

The space's dimensions become KerasTuner hyperparameters; each trial trains the model
imgsweep's full stage trains (same model code, data, input pipeline, augmentation layers and
Keras AUC metric). A callback after KerasTuner's own (so after its best-epoch checkpoint)
records the time and val AUC of every epoch; the epochs of trials that end COMPLETED count.
"""

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.epoch_curves import EpochPoint


class BudgetSpent(Exception):
    """Raised between KerasTuner trials once the wall-clock budget is used up."""


@dataclass
class TunerClock:
    """KerasTuner's side of the timeline: when it started (before loading its data) and began
    its search, its deadline, and every epoch it trained, timed from the search's start."""

    started: float
    search_started: float = math.inf
    deadline: float = math.inf
    trial_id: str = ""
    epochs: list[EpochPoint] = field(default_factory=list)

    def epoch_ended(self, epoch: int, logs: dict | None) -> None:
        value = (logs or {}).get("val_auc", math.nan)
        seconds = time.monotonic() - self.search_started
        self.epochs.append(EpochPoint(seconds, float(value), self.trial_id, epoch))


def _space_hypermodel(base_overrides: list[str], dimensions: list, data, clock: TunerClock):
    """A KerasTuner HyperModel over `dimensions`, training as imgsweep's full stage does."""
    import keras
    import keras_tuner

    from pipelines.config import compose_config
    from pipelines.plan import plan_from_config
    from pipelines.planned_fit import compiled_model
    from pipelines.train.augment import build_augmentation
    from pipelines.train.callbacks import StopAtDeadline
    from pipelines.train.fit import fit_classifier

    def trial_plan(hp):
        overrides = []
        for dimension in dimensions:
            if dimension.type == "categorical":
                value = hp.Choice(dimension.name, list(dimension.choices))
            elif dimension.type == "float":
                sampling = "log" if dimension.log else "linear"
                value = hp.Float(dimension.name, dimension.low, dimension.high, sampling=sampling)
            else:
                value = hp.Int(dimension.name, dimension.low, dimension.high)
            overrides.append(f"{dimension.override}={value}")
        return plan_from_config(compose_config(base_overrides + overrides))

    class SpaceHyperModel(keras_tuner.HyperModel):
        def build(self, hp):
            return compiled_model(trial_plan(hp), data)

        def fit(self, hp, model, *args, epochs, initial_epoch=0, callbacks=(), **kwargs):
            plan = trial_plan(hp)
            # After KerasTuner's own callbacks, so an epoch's time includes its checkpoint.
            timer = keras.callbacks.LambdaCallback(on_epoch_end=clock.epoch_ended)
            return fit_classifier(
                model,
                data=data,
                train_split=data.splits["train"],
                val_split=data.splits["val"],
                epochs=epochs,
                initial_epoch=initial_epoch,
                batch_size=plan.full_batch_size,
                seed=plan.seed,
                augmentation=build_augmentation(**plan.augment_settings, seed=plan.seed),
                callbacks=[*callbacks, timer, StopAtDeadline(clock.deadline)],
            )

    return SpaceHyperModel()


def _timed_hyperband(hypermodel, *, max_epochs: int, seed: int, scratch: Path, clock):
    """Hyperband that starts no trial past the clock's deadline and tells the clock each trial."""
    import keras_tuner

    class TimedHyperband(keras_tuner.Hyperband):
        def pre_create_trial(self):
            if time.monotonic() >= clock.deadline:
                raise BudgetSpent
            super().pre_create_trial()

        def on_trial_begin(self, trial):
            clock.trial_id = trial.trial_id
            super().on_trial_begin(trial)

    return TimedHyperband(
        hypermodel,
        objective=keras_tuner.Objective("val_auc", direction="max"),
        max_epochs=max_epochs,
        factor=3,
        hyperband_iterations=1000,  # the budget ends the search, not the iteration count
        seed=seed,
        directory=str(scratch / "keras_tuner"),
        project_name="hyperband",
        overwrite=True,
    )


def keras_tuner_search(base_overrides: list[str], minutes: float, scratch: Path) -> dict:
    """Hyperband over the same space; returns its counted epochs and best model's scores."""
    import keras
    from keras_tuner.engine.trial import TrialStatus

    from pipelines.config import compose_config
    from pipelines.evaluate import evaluate_split
    from pipelines.plan import load_data
    from sweep.space import parse_space

    clock = TunerClock(started=time.monotonic())
    cfg = compose_config(base_overrides)
    dimensions = parse_space(cfg.search.space)
    if any(dimension.when for dimension in dimensions):
        raise SystemExit("bench.vs_kerastuner: conditional (`when`) dimensions are not mapped")
    data = load_data(cfg)
    tuner = _timed_hyperband(
        _space_hypermodel(base_overrides, dimensions, data, clock),
        max_epochs=cfg.stages.full.max_epochs,
        seed=cfg.seed,
        scratch=scratch,
        clock=clock,
    )
    keras.utils.set_random_seed(cfg.seed)
    clock.search_started = time.monotonic()
    clock.deadline = clock.search_started + 60 * minutes
    with contextlib.suppress(BudgetSpent):
        tuner.search(verbose=0)
    wall = time.monotonic() - clock.started
    trials = tuner.oracle.trials
    completed = {key for key, trial in trials.items() if trial.status == TrialStatus.COMPLETED}
    best_model = tuner.get_best_models(1)[0] if completed else None
    return {
        "trials": len(trials),
        "trials_complete": len(completed),
        "epochs_trained": len(clock.epochs),
        "counted": [point for point in clock.epochs if point.trial in completed],
        "setup": clock.search_started - clock.started,
        "wall": wall,
        "test": evaluate_split(best_model, data, data.splits["test"]) if best_model else None,
    }
