"""The models made after the study: the winner refit on train+val, a greedy ensemble.

`pipelines/refit.py` and `pipelines/ensemble.py` do the training and the model building from
plain values; this module reads the study (trials, their configs and models) and the budget.
"""

import time
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from champion.outcome import TrialRecord
from pipelines.data.datasets import ImageFolderData
from pipelines.errors import ConfigError
from pipelines.evaluate import SplitScore
from pipelines.plan import plan_from_config
from pipelines.refit import refit_epochs, refit_on_train_val, refit_seconds
from pipelines.refit_budget import RefitBudget, epochs_that_fit
from pipelines.tracking import Tracker

REFIT_CHOICES = ("none", "train_val", "budget")
# registry.refit_reserve: auto: the trial loop holds back what the current best trial's refit
# takes by its measured epochs, and this share more: the refit's report, test scoring and model
# logging, the estimate's noise, and the last trial's epoch that ends past the loop's deadline.
RESERVE_MARGIN = 0.2
# Until a trial has completed there is no epoch to measure: the share held back meanwhile.
UNMEASURED_RESERVE = 0.25
# A final model is still built when its estimate runs past search.timeout_minutes by at most
# this share of it. The trial running at the loop's end stops at its next epoch end, up to an
# epoch late, which can take the reserve's whole margin: a 5.1-minute refit was once skipped
# with 5.0 minutes left (BENCHMARKS.md §3d).
OVERRUN_ALLOWANCE = 0.05


@dataclass(frozen=True)
class FinalModelSettings:
    """`registry.refit`, `registry.ensemble`, `registry.average_refit` and the time reserved."""

    refit: str = "none"
    ensemble: int = 0
    # With a refit: the best trial's model and its refit averaged, one more candidate.
    average_refit: bool = False
    # Share of search.timeout_minutes the trial loop leaves for the refit; None: auto (the
    # current best trial's refit, measured: refit_reserve_seconds).
    reserve_fraction: float | None = 0.0
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
    average_refit = registry.get("average_refit", False)
    if not isinstance(average_refit, bool):
        raise ConfigError(f"registry.average_refit must be true or false, got {average_refit!r}")
    reserve = _reserve_fraction(registry.get("refit_reserve", "auto"))
    return FinalModelSettings(
        refit=refit,
        ensemble=ensemble,
        average_refit=average_refit,
        reserve_fraction=reserve if refit != "none" else 0.0,
    )


def _reserve_fraction(reserve) -> float | None:
    """registry.refit_reserve: "auto" (None here) or a fraction of the budget in [0, 1)."""
    if reserve == "auto":
        return None
    if isinstance(reserve, bool) or not isinstance(reserve, int | float) or not 0 <= reserve < 1:
        raise ConfigError(
            f"registry.refit_reserve must be auto or a fraction of search.timeout_minutes in "
            f"[0, 1), got {reserve!r}"
        )
    return float(reserve)


def overrun_allowance(budget_seconds: float | None) -> float:
    """The seconds a final model may end past the budget (none without one)."""
    return OVERRUN_ALLOWANCE * budget_seconds if budget_seconds else 0.0


def fits_budget(needed: float, seconds_left: float | None, budget_seconds: float | None) -> bool:
    """Whether `needed` seconds fit what is left of the budget, plus OVERRUN_ALLOWANCE of it."""
    if seconds_left is None:
        return True
    return needed <= max(seconds_left, 0.0) + overrun_allowance(budget_seconds)


def trial_loop_seconds(timeout_minutes: float | None, reserve_fraction: float) -> float | None:
    """The trial loop's share of search.timeout_minutes, in seconds (None: no budget)."""
    if not timeout_minutes:
        return None
    return 60 * timeout_minutes * (1 - reserve_fraction)


def refit_reserve_seconds(
    *, full_seconds: float, full_epochs: int, best_epoch: int, train: int, val: int
) -> float:
    """refit_reserve: auto: a trial's refit by its measured full-stage epochs, plus the margin.

    A budget refit needs as much: it trains at least the trial's best-epoch count when that fits.
    """
    needed = refit_seconds(
        seconds_per_epoch=full_seconds / max(full_epochs, 1),
        epochs=refit_epochs(best_epoch),
        train=train,
        val=val,
    )
    return (1 + RESERVE_MARGIN) * needed


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
    if trial.full_seconds and trial.full_epochs:
        return trial.full_seconds / trial.full_epochs
    # A trial recorded before its stage times were: its full-stage run's start and end.
    runs = tracker.find_runs(f"tags.mlflow.parentRunId = '{trial.run_id}' and tags.stage = 'full'")
    full = runs[0]
    epochs = max(len(tracker.metric_history(full.info.run_id, "loss")), 1)
    return (full.info.end_time - full.info.start_time) / 1000 / epochs


def _refit_budget(
    trial: TrialRecord, *, epoch_seconds: float, seconds_left: float, images: int, notes: list
) -> RefitBudget | None:
    """The budget refit's deadline, one epoch before the end: its report, test scoring and
    model logging take less than a training epoch on train+val. None (noted) if none fits;
    fewer epochs than the trial's best-epoch count are trained, and noted after (build_refit).
    """
    planned = epochs_that_fit(seconds_left - epoch_seconds, epoch_seconds)
    if planned < 1:
        notes.append(
            f"refit skipped: an epoch on {images} images takes about {epoch_seconds:.0f} s; "
            f"the {max(seconds_left, 0):.0f} s of search.timeout_minutes left hold none besides "
            "the refit's scoring (raise registry.refit_reserve)"
        )
        return None
    return RefitBudget(
        deadline=time.monotonic() + seconds_left - epoch_seconds,
        epoch_seconds=epoch_seconds,
        best_epoch=trial.best_epoch,
    )


def build_refit(
    *,
    trial: TrialRecord,
    data: ImageFolderData,
    tracker: Tracker,
    parent_run_id: str,
    seconds_left: float | None,
    notes: list[str],
    mode: str = "train_val",
    budget_seconds: float | None = None,
) -> BuiltModel | None:
    """The trial's configuration trained on train+val (registry.refit `mode`): for its
    best-epoch count (train_val) or to the deadline (budget); None (with a note) if out of time.
    A train_val refit may end past the deadline by OVERRUN_ALLOWANCE of `budget_seconds`.
    """
    epochs = refit_epochs(trial.best_epoch)
    train, val = len(data.splits["train"]), len(data.splits["val"])
    epoch_seconds = refit_seconds(
        seconds_per_epoch=seconds_per_epoch(tracker, trial), epochs=1, train=train, val=val
    )
    budget = None
    if mode == "budget" and seconds_left is None:
        notes.append(
            f"refit: budget without search.timeout_minutes has no deadline to train to: "
            f"trained the trial's {epochs} epochs, as train_val does"
        )
    elif mode == "budget":
        budget = _refit_budget(
            trial,
            epoch_seconds=epoch_seconds,
            seconds_left=seconds_left,
            images=train + val,
            notes=notes,
        )
        if budget is None:
            return None
    elif not fits_budget(epochs * epoch_seconds, seconds_left, budget_seconds):
        allowance = overrun_allowance(budget_seconds) / 60
        allowed = f" and {allowance:.1f} min allowed past it" if budget_seconds else ""
        notes.append(
            f"refit skipped: about {epochs * epoch_seconds / 60:.1f} min needed ({epochs} epochs "
            f"on {train + val} images), {max(seconds_left, 0) / 60:.1f} min of "
            f"search.timeout_minutes left{allowed} (raise registry.refit_reserve)"
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
        budget=budget,
    )
    trained = result.epochs_trained
    if budget and trained < epochs:
        notes.append(
            f"refit: {trained} of trial {trial.number}'s {epochs} epochs fit by the deadline; "
            "it trained those (registry.refit_reserve: a larger fraction holds more)"
        )
    return BuiltModel(
        kind="refit",
        model_uri=result.model_uri,
        run_id=result.run_id,
        description=f"trial {trial.number}, {trained} epochs on train+val"
        + (" to the deadline" if budget else ""),
        tags={
            "trial_number": str(trial.number),
            "refit_epochs": str(trained),
            "refit_mode": "budget" if budget else "train_val",
        },
        test_score=result.test_score,
    )
