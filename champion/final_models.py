"""The models made after the study: the winner refit on train+val, a greedy ensemble.

`pipelines/refit.py` and `pipelines/ensemble.py` do the training and the model building from
plain values; this module reads the study (trials, their configs and models) and the budget.
"""

from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from champion.outcome import TrialRecord
from pipelines.data.datasets import ImageFolderData
from pipelines.errors import ConfigError
from pipelines.evaluate import SplitScore
from pipelines.plan import plan_from_config
from pipelines.refit import refit_epochs, refit_on_train_val, refit_seconds
from pipelines.tracking import Tracker

REFIT_CHOICES = ("none", "train_val")


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
    # Its test score when building it scored it already (the refit): promotion reuses it.
    test_score: SplitScore | None = None


def trial_config(tracker: Tracker, trial: TrialRecord) -> DictConfig:
    """The resolved config the trial ran with (its run's config.yaml)."""
    return OmegaConf.create(tracker.load_text(trial.run_id, "config.yaml"))


def seconds_per_epoch(tracker: Tracker, trial: TrialRecord) -> float:
    """The trial's full stage: wall seconds (reports and model logging included) per epoch."""
    runs = tracker.find_runs(f"tags.mlflow.parentRunId = '{trial.run_id}' and tags.stage = 'full'")
    full = runs[0]
    epochs = max(len(tracker.metric_history(full.info.run_id, "loss")), 1)
    return (full.info.end_time - full.info.start_time) / 1000 / epochs


def build_refit(
    *,
    trial: TrialRecord,
    data: ImageFolderData,
    tracker: Tracker,
    parent_run_id: str,
    seconds_left: float | None,
    notes: list[str],
) -> BuiltModel | None:
    """The trial's configuration trained on train+val; None (with a note) if out of time."""
    epochs = refit_epochs(trial.best_epoch)
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
        test_score=result.test_score,
    )
