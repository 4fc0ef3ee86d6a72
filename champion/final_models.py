"""The models made after the study: the winner refit on train+val, a greedy ensemble.

`pipelines/refit.py` and `pipelines/ensemble.py` do the training and the model building from
plain values; this module reads the study (trials, their configs and models) and the budget.
"""

import time
from dataclasses import dataclass

import keras
import optuna
from omegaconf import DictConfig, OmegaConf

from pipelines.data.datasets import ImageFolderData, build_batches
from pipelines.ensemble import build_ensemble_model, greedy_selection, member_probabilities
from pipelines.errors import ConfigError
from pipelines.plan import data_loading_key, plan_from_config
from pipelines.provenance import log_run_inputs
from pipelines.refit import refit_epochs, refit_on_train_val, refit_seconds
from pipelines.stage_run import end_raised_run
from pipelines.tracking import RunStatus, Tracker
from pipelines.tracking.keras_logging import load_keras_model

REFIT_CHOICES = ("none", "train_val")
# The ensemble trains nothing, so no share of the budget is held back for it: it is built
# even past the deadline when its estimated cost is at most this share of the budget (the
# trial loop's last epoch overshoots the deadline by as much).
ENSEMBLE_ALLOWANCE = 0.05


@dataclass(frozen=True)
class FinalModelSettings:
    """`registry.refit`, `registry.ensemble` and the time reserved for them."""

    refit: str = "none"
    ensemble: int = 0
    # Share of search.timeout_minutes the trial loop leaves for the refit (refit: train_val).
    reserve_fraction: float = 0.0
    # The val metric ensemble selection optimises and its mode: the study's (search.metric).
    metric: str = "val_auc"
    mode: str = "max"


def final_model_settings(registry: DictConfig) -> FinalModelSettings:
    """The registry's refit/ensemble keys, checked: one line naming a bad key."""
    refit = registry.get("refit", "none")
    if refit not in REFIT_CHOICES:
        raise ConfigError(
            f"registry.refit must be one of {', '.join(REFIT_CHOICES)}, got {refit!r}"
        )
    ensemble = registry.get("ensemble", 0)
    if isinstance(ensemble, bool) or not isinstance(ensemble, int) or ensemble < 0:
        raise ConfigError(
            f"registry.ensemble must be 0 (no ensemble) or a number of greedy steps k >= 1, "
            f"got {ensemble!r}"
        )
    reserve = registry.get("refit_reserve", 0.0)
    if isinstance(reserve, bool) or not isinstance(reserve, int | float) or not 0 <= reserve < 1:
        raise ConfigError(f"registry.refit_reserve must be in [0, 1), got {reserve!r}")
    return FinalModelSettings(
        refit=refit,
        ensemble=ensemble,
        reserve_fraction=float(reserve) if refit == "train_val" else 0.0,
    )


def trial_loop_seconds(timeout_minutes: float | None, reserve_fraction: float) -> float | None:
    """The trial loop's share of search.timeout_minutes, in seconds (None: no budget)."""
    if not timeout_minutes:
        return None
    return 60 * timeout_minutes * (1 - reserve_fraction)


@dataclass(frozen=True)
class BuiltModel:
    """A refit or ensemble model, logged in its own run under the study's run."""

    kind: str
    model_uri: str
    run_id: str
    description: str
    tags: dict[str, str]
    members: int = 1


def trial_config(tracker: Tracker, trial: optuna.trial.FrozenTrial) -> DictConfig:
    """The resolved config the trial ran with (its run's config.yaml)."""
    return OmegaConf.create(tracker.load_text(trial.user_attrs["mlflow_run_id"], "config.yaml"))


def seconds_per_epoch(tracker: Tracker, trial: optuna.trial.FrozenTrial) -> float:
    """The trial's full stage: wall seconds (reports and model logging included) per epoch."""
    run_id = trial.user_attrs["mlflow_run_id"]
    runs = tracker.find_runs(f"tags.mlflow.parentRunId = '{run_id}' and tags.stage = 'full'")
    full = runs[0]
    epochs = max(len(tracker.metric_history(full.info.run_id, "loss")), 1)
    return (full.info.end_time - full.info.start_time) / 1000 / epochs


def build_refit(
    *,
    trial: optuna.trial.FrozenTrial,
    data: ImageFolderData,
    tracker: Tracker,
    parent_run_id: str,
    seconds_left: float | None,
    notes: list[str],
) -> BuiltModel | None:
    """The trial's configuration trained on train+val; None (with a note) if out of time."""
    epochs = refit_epochs(int(trial.user_attrs["best_epoch"]))
    train, val = len(data.splits["train"]), len(data.splits["val"])
    if seconds_left is not None:
        needed = refit_seconds(
            seconds_per_epoch=seconds_per_epoch(tracker, trial),
            epochs=epochs,
            train=train,
            val=val,
        )
        if needed > seconds_left:
            notes.append(
                f"refit skipped: about {needed / 60:.1f} min needed ({epochs} epochs on "
                f"{train + val} images), {max(seconds_left, 0) / 60:.1f} min of "
                "search.timeout_minutes left (raise registry.refit_reserve)"
            )
            return None
    cfg = trial_config(tracker, trial)
    result = refit_on_train_val(
        plan=plan_from_config(cfg),
        data=data,
        epochs=epochs,
        tracker=tracker,
        parent_run_id=parent_run_id,
        config_yaml=OmegaConf.to_yaml(cfg),
        tags={"trial_number": str(trial.number)},
    )
    return BuiltModel(
        kind="refit",
        model_uri=result.model_uri,
        run_id=result.run_id,
        description=f"trial {trial.number}, {epochs} epochs on train+val",
        tags={"trial_number": str(trial.number), "refit_epochs": str(epochs)},
    )


def ensemble_seconds(
    tracker: Tracker, trials: list[optuna.trial.FrozenTrial], data: ImageFolderData
) -> float:
    """Building the ensemble: one prediction pass over val per complete trial, and loading.

    Predicting an image costs less than training on it, so each trial's full-stage seconds
    per epoch, scaled from train to val, bound its pass; loading a model takes about 2 s.
    """
    share = len(data.splits["val"]) / max(len(data.splits["train"]), 1)
    return sum(seconds_per_epoch(tracker, trial) * share + 2.0 for trial in trials)


def ensemble_fits(needed: float, seconds_left: float | None, budget_seconds: float | None) -> bool:
    """Whether an ensemble costing `needed` s fits what is left (plus the allowance)."""
    if seconds_left is None or budget_seconds is None:
        return True
    return needed <= max(seconds_left, 0.0) + ENSEMBLE_ALLOWANCE * budget_seconds


def _members(tracker, trials, data, base_key, notes):
    """(trial, model) for every complete trial whose model takes the study's data as is."""
    members = []
    for trial in trials:
        cfg = trial_config(tracker, trial)
        model = load_keras_model(trial.user_attrs["model_uri"])
        if data_loading_key(cfg) != base_key or tuple(model.input_shape[1:]) != data.input_shape:
            notes.append(
                f"ensemble: trial {trial.number} left out (its images are read differently: "
                f"input {tuple(model.input_shape[1:])})"
            )
            continue
        members.append((trial, model))
    return members


def build_ensemble(
    *,
    trials: list[optuna.trial.FrozenTrial],
    settings: FinalModelSettings,
    data: ImageFolderData,
    tracker: Tracker,
    parent_run_id: str,
    config_yaml: str,
    base_key: str,
    notes: list[str],
) -> BuiltModel | None:
    """Greedy selection (with replacement, `settings.ensemble` steps) over complete trials."""
    started = time.perf_counter()
    members = _members(tracker, trials, data, base_key, notes)
    if len(members) < 2:
        notes.append(f"ensemble skipped: {len(members)} usable complete trial(s), need 2")
        return None
    val = data.splits["val"]
    images = build_batches(data, val, batch_size=256)
    probabilities = [member_probabilities(model, images) for _, model in members]
    weights = greedy_selection(
        probabilities, val.labels, size=settings.ensemble, metric=settings.metric,
        mode=settings.mode,
    )  # fmt: skip
    if len(weights) < 2:
        (kept,) = weights
        notes.append(
            f"ensemble skipped: greedy selection kept only trial {members[kept][0].number}"
        )
        return None
    chosen = [
        (members[index][0].number, members[index][1], weight) for index, weight in weights.items()
    ]
    tags = {"ensemble_size": str(settings.ensemble), "ensemble_metric": settings.metric}
    return log_ensemble(
        chosen, data=data, tracker=tracker, parent_run_id=parent_run_id,
        config_yaml=config_yaml, tags=tags, started=started,
    )  # fmt: skip


def log_ensemble(
    chosen: list[tuple[int, keras.Model, float]],
    *,
    data: ImageFolderData,
    tracker: Tracker,
    parent_run_id: str,
    config_yaml: str,
    tags: dict[str, str],
    started: float,
) -> BuiltModel:
    """(trial number, model, weight) members as one Keras model in a run named `ensemble`."""
    model = build_ensemble_model(
        [member for _, member, _ in chosen],
        [weight for _, _, weight in chosen],
        input_shape=data.input_shape,
        member_names=[f"trial_{number}" for number, _, _ in chosen],
    )
    trial_numbers = ",".join(str(number) for number, _, _ in chosen)
    weight_text = ",".join(f"{weight:.4g}" for _, _, weight in chosen)
    tags = {**tags, "ensemble_trials": trial_numbers, "ensemble_weights": weight_text}
    run_id = tracker.start_run(
        "ensemble", parent_run_id=parent_run_id, tags={"role": "ensemble", **tags}
    )
    try:
        log_run_inputs(tracker, run_id, config_yaml=config_yaml, data=data)
        sample_images = next(iter(build_batches(data, data.splits["val"], batch_size=4)))[0]
        model_uri = tracker.log_keras_model(run_id, model, sample_images.numpy())
        tracker.log_metrics(run_id, {"build_seconds": time.perf_counter() - started})
    except BaseException as error:
        end_raised_run(tracker, run_id, error, prefix="ensemble: ")
        raise
    tracker.end_run(run_id, RunStatus.FINISHED)
    return BuiltModel(
        kind="ensemble",
        model_uri=model_uri,
        run_id=run_id,
        description=f"trials {trial_numbers} (weights {weight_text})",
        tags=tags,
        members=len(chosen),
    )
