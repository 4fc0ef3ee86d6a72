"""Promotion among candidates: the best trial, its refit, the two averaged and an ensemble,
scored alike.

Each candidate is registered as a version tagged `candidate: single|refit|single+refit|ensemble`
with its test-split scores (pipelines.evaluate: the refit's from its own run, the others' now);
the best of them then goes through the champion gate (champion.promotion.promote), which moves
the alias only if it beats the current champion by registry.min_delta.
"""

import time
from dataclasses import dataclass, field, replace

from omegaconf import DictConfig, OmegaConf

from champion.ensembles import build_ensemble, build_refit_average, ensemble_seconds
from champion.final_models import (
    BuiltModel,
    FinalModelSettings,
    build_refit,
    final_model_settings,
    fits_budget,
)
from champion.model_card import write_model_card, write_registered_model_card
from champion.outcome import StudyOutcome
from champion.promotion import (
    Promotion,
    check_registered_model,
    gate_split,
    identity_tags,
    promote,
)
from champion.registration import registered_version
from champion.trust import trusted_candidates
from pipelines.data.datasets import ImageFolderData
from pipelines.data.folders import fingerprint
from pipelines.data.identity import DataIdentity
from pipelines.evaluate import timed_evaluation
from pipelines.metrics import registry_metric, resolve_metric
from pipelines.tracking import Tracker
from pipelines.tracking.keras_logging import load_keras_model


@dataclass(frozen=True)
class Candidate:
    kind: str  # single | refit | single+refit | ensemble
    description: str
    version: str
    test_metrics: dict[str, float]
    images_per_second: float
    members: int = 1


@dataclass(frozen=True)
class PromotedCandidates:
    """The candidates side by side, the gate's decision on the best, and why any was skipped."""

    candidates: list[Candidate]
    promotion: Promotion
    notes: list[str] = field(default_factory=list)


def register_candidate(
    model: BuiltModel, *, model_name: str, tracker: Tracker, data: ImageFolderData, tags: dict
) -> Candidate:
    """Register one candidate and tag its version with what it is, takes and scored."""
    threshold = model.tags.get("decision_threshold")
    version = registered_version(
        tracker,
        model_name,
        model.model_uri,
        model.run_id,
        threshold=None if threshold is None else float(threshold),
    )
    split = gate_split(data)
    score = model.test_score or timed_evaluation(
        load_keras_model(model.model_uri), data, data.splits[split]
    )
    tracker.set_version_tags(
        model_name,
        version.version,
        {
            **tags,
            **model.tags,
            "candidate": model.kind,
            **identity_tags(data),
            **{f"{split}_{name}": f"{value:.6f}" for name, value in score.metrics.items()},
        },
    )
    return Candidate(
        model.kind,
        model.description,
        str(version.version),
        score.metrics,
        score.images_per_second,
        model.members,
    )


def _settings(cfg: DictConfig, data: ImageFolderData, notes: list[str]) -> FinalModelSettings:
    """registry.refit/ensemble, with the study's metric; neither without a test split."""
    metric = resolve_metric(cfg.search.metric, data.num_classes)
    settings = replace(final_model_settings(cfg.registry), metric=metric.name, mode=metric.mode)
    if gate_split(data) != "test" and (settings.refit != "none" or settings.ensemble):
        # The refit trains on val and the ensemble is chosen on it: scored on val they would
        # always look best.
        notes.append("refit and ensemble skipped: the data has no test split to score them on")
        settings = replace(settings, refit="none", ensemble=0)
    return settings


def _seconds_left(outcome: StudyOutcome) -> float | None:
    return None if outcome.deadline is None else outcome.deadline - time.monotonic()


def _single(outcome: StudyOutcome, settings: FinalModelSettings) -> BuiltModel:
    best = outcome.best
    return BuiltModel(
        kind="single",
        model_uri=best.model_uri,
        run_id=best.run_id,
        description=f"trial {best.number}",
        tags={"trial_number": str(best.number), settings.metric: f"{best.value:.6f}"},
    )


def _refit(
    outcome: StudyOutcome, settings: FinalModelSettings, notes: list[str]
) -> list[BuiltModel]:
    """The refit; a budget refit trains to the deadline less the ensemble's estimated cost."""
    seconds_left = _seconds_left(outcome)
    if settings.refit == "budget" and settings.ensemble and seconds_left is not None:
        seconds_left -= ensemble_seconds(outcome.tracker, outcome.complete, outcome.data)
    refit = build_refit(
        trial=outcome.best,
        data=outcome.data,
        tracker=outcome.tracker,
        parent_run_id=outcome.parent_run_id,
        seconds_left=seconds_left,
        notes=notes,
        mode=settings.refit,
        budget_seconds=outcome.budget_seconds,
    )
    return [refit] if refit else []


def _refit_average(
    outcome: StudyOutcome, single: BuiltModel, refit: BuiltModel, config_yaml: str
) -> BuiltModel:
    """The single model and its refit averaged. From the models as trained: calibration
    (trusted_candidates) fits the average a temperature of its own."""
    return build_refit_average(
        single, refit, trial_number=outcome.best.number, data=outcome.data,
        tracker=outcome.tracker, parent_run_id=outcome.parent_run_id, config_yaml=config_yaml,
    )  # fmt: skip


def _ensemble(
    outcome: StudyOutcome, settings: FinalModelSettings, config_yaml: str, notes: list[str]
) -> list[BuiltModel]:
    """The greedy ensemble when its estimated cost fits the budget (a note when it does not)."""
    complete = outcome.complete
    needed = ensemble_seconds(outcome.tracker, complete, outcome.data)
    seconds_left = _seconds_left(outcome)
    # The ensemble trains nothing, so nothing is held back for it: it is built past the
    # deadline too, within the allowance.
    if not fits_budget(needed, seconds_left, outcome.budget_seconds):
        notes.append(
            f"ensemble skipped: about {needed:.0f} s needed ({len(complete)} complete "
            f"trial(s) to predict val), {max(seconds_left or 0, 0):.0f} s of "
            "search.timeout_minutes left (raise registry.refit_reserve)"
        )
        return []
    ensemble = build_ensemble(
        # The best first: selection's ties go to it.
        trials=sorted(complete, key=lambda each: each.number != outcome.best.number),
        settings=settings,
        data=outcome.data,
        tracker=outcome.tracker,
        parent_run_id=outcome.parent_run_id,
        config_yaml=config_yaml,
        base_key=outcome.base_data_key,
        notes=notes,
    )
    return [ensemble] if ensemble else []


def promote_candidates(cfg: DictConfig, outcome: StudyOutcome) -> PromotedCandidates:
    """Build the refit and ensemble the registry asks for, register all, gate the best.

    A train_val refit or an ensemble whose estimated cost overshoots `outcome.deadline` by more
    than OVERRUN_ALLOWANCE of the budget is skipped with a note.
    """
    registry, data, tracker = cfg.registry, outcome.data, outcome.tracker
    if not outcome.registry_checked:
        # Before a refit trains: a registered model of other classes stops it first.
        check_registered_model(
            tracker=tracker,
            model_name=registry.model_name,
            current=DataIdentity.of(data),
            champion_alias=registry.champion_alias,
        )
    notes: list[str] = []
    settings = _settings(cfg, data, notes)
    config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    single = _single(outcome, settings)
    refits = _refit(outcome, settings, notes) if settings.refit != "none" else []
    built = [single, *refits]
    if settings.average_refit and refits:
        built.append(_refit_average(outcome, single, refits[0], config_yaml))
    if settings.ensemble:
        built += _ensemble(outcome, settings, config_yaml, notes)
    built = trusted_candidates(built, registry=registry, data=data, tracker=tracker, notes=notes)
    common = {"study": outcome.study_name, "data_fingerprint": fingerprint(data.splits)}
    candidates = [
        register_candidate(
            model, model_name=registry.model_name, tracker=tracker, data=data, tags=common
        )
        for model in built
    ]
    metric = registry_metric(registry.metric, cfg.search.metric, data.num_classes)
    # Ties keep the simpler candidate (the order built: single, refit, their average, ensemble).
    best = max(candidates, key=lambda candidate: candidate.test_metrics[metric])
    promotion = promote(
        tracker=tracker,
        model_name=registry.model_name,
        version=best.version,
        test_metrics=best.test_metrics,
        data=data,
        metric=metric,
        min_delta=registry.min_delta,
        force=bool(registry.force),
        champion_alias=registry.champion_alias,
        challenger_alias=registry.challenger_alias,
    )
    # After the gate: the cards show its decision.
    for candidate in candidates:
        write_model_card(tracker.client, registry.model_name, candidate.version)
    write_registered_model_card(tracker.client, registry.model_name, registry.champion_alias)
    return PromotedCandidates(candidates, promotion, notes)
