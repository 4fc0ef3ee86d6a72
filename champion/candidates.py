"""Promotion among candidates: the best trial, its refit and an ensemble, scored alike.

Each candidate is registered as a version tagged `candidate: single|refit|ensemble` and
scored on the test split by the same function (pipelines.evaluate.evaluate_split); the best of
them then goes through the champion gate (champion.promotion.promote), which moves the alias only
if it beats the current champion by registry.min_delta.
"""

import time
from dataclasses import dataclass, field, replace

import optuna
from omegaconf import DictConfig, OmegaConf

from champion.final_models import (
    BuiltModel,
    build_ensemble,
    build_refit,
    ensemble_fits,
    ensemble_seconds,
    final_model_settings,
)
from champion.promotion import GATE_METRICS, Promotion, gate_split, promote, registered_version
from champion.trust import trusted_candidates
from pipelines.data.folders import fingerprint
from pipelines.evaluate import evaluate_split
from pipelines.metrics import registry_metric, resolve_metric
from pipelines.tracking.keras_logging import load_keras_model

TrialState = optuna.trial.TrialState


@dataclass(frozen=True)
class Candidate:
    kind: str  # single | refit | ensemble
    description: str
    version: str
    test_metrics: dict[str, float]
    images_per_second: float
    members: int = 1


@dataclass(frozen=True)
class FinalModels:
    candidates: list[Candidate]
    promotion: Promotion
    notes: list[str] = field(default_factory=list)


def _score(model_uri: str, data) -> tuple[dict[str, float], float]:
    """Gate-split metrics and the prediction throughput (images per second) of a logged model."""
    model = load_keras_model(model_uri)
    test = data.splits[gate_split(data)]
    started = time.perf_counter()
    metrics = evaluate_split(model, data, test)
    return metrics, len(test) / max(time.perf_counter() - started, 1e-9)


def _register(model_name: str, model: BuiltModel, tracker, data, common: dict):
    """Register one candidate, score it on test, tag the version: (model, tags, Candidate)."""
    version, _ = registered_version(tracker, model_name, model.model_uri, model.run_id)
    metrics, rate = _score(model.model_uri, data)
    tags = {**common, **model.tags, "candidate": model.kind}
    split = gate_split(data)
    test_tags = {f"{split}_{name}": f"{value:.6f}" for name, value in metrics.items()}
    tracker.set_version_tags(model_name, version.version, {**tags, **test_tags})
    candidate = Candidate(
        model.kind, model.description, str(version.version), metrics, rate, model.members
    )
    return model, tags, candidate


def promote_candidates(
    cfg: DictConfig, session, trial: optuna.trial.FrozenTrial, *, deadline: float | None = None
) -> FinalModels:
    """Build the refit and ensemble the registry asks for, register all, gate the best.

    `deadline`: the study budget's end (a time.monotonic() value); a refit that would not
    finish by then is skipped with a note, and so is an ensemble whose estimated cost
    overshoots it by more than ENSEMBLE_ALLOWANCE of the budget.
    """
    data, tracker, study = session.context.base_data, session.tracker, session.study
    study_metric = resolve_metric(cfg.search.metric, data.num_classes)
    settings = replace(
        final_model_settings(cfg.registry), metric=study_metric.name, mode=study_metric.mode
    )
    notes: list[str] = []
    if gate_split(data) != "test" and (settings.refit != "none" or settings.ensemble):
        # The refit trains on val and the ensemble is chosen on it: scored on val they would
        # always look best.
        notes.append("refit and ensemble skipped: the data has no test split to score them on")
        settings = replace(settings, refit="none", ensemble=0)
    common = {
        "study": study.study_name,
        "data_fingerprint": fingerprint(data.splits),
    }
    built = [
        BuiltModel(
            kind="single",
            model_uri=trial.user_attrs["model_uri"],
            run_id=trial.user_attrs["mlflow_run_id"],
            description=f"trial {trial.number}",
            tags={"trial_number": str(trial.number), settings.metric: f"{trial.value:.6f}"},
        )
    ]
    if settings.refit == "train_val":
        seconds_left = None if deadline is None else deadline - time.monotonic()
        refit = build_refit(
            trial=trial,
            data=data,
            tracker=tracker,
            parent_run_id=session.parent_run_id,
            seconds_left=seconds_left,
            notes=notes,
        )
        built += [refit] if refit else []
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if settings.ensemble:
        needed = ensemble_seconds(tracker, complete, data)
        seconds_left = None if deadline is None else deadline - time.monotonic()
        budget = 60 * session.timeout_minutes if session.timeout_minutes else None
        if not ensemble_fits(needed, seconds_left, budget):
            notes.append(
                f"ensemble skipped: about {needed:.0f} s needed ({len(complete)} complete "
                f"trial(s) to predict val), {max(seconds_left or 0, 0):.0f} s of "
                "search.timeout_minutes left (raise registry.refit_reserve)"
            )
            settings = replace(settings, ensemble=0)
    if settings.ensemble:
        ensemble = build_ensemble(
            # The best first: selection's ties go to it.
            trials=sorted(complete, key=lambda each: each.number != trial.number),
            settings=settings,
            data=data,
            tracker=tracker,
            parent_run_id=session.parent_run_id,
            config_yaml=OmegaConf.to_yaml(cfg, resolve=True),
            base_key=session.context.base_data_key,
            notes=notes,
        )
        built += [ensemble] if ensemble else []

    built = trusted_candidates(
        built, registry=cfg.registry, data=data, tracker=tracker, notes=notes
    )
    scored = [_register(cfg.registry.model_name, model, tracker, data, common) for model in built]
    metric = registry_metric(cfg.registry.metric, cfg.search.metric, data.num_classes)
    # Ties keep the simpler candidate (single before refit before ensemble).
    best_model, best_tags, best = max(scored, key=lambda item: item[2].test_metrics[metric])
    promotion = promote(
        tracker=tracker,
        model_uri=best_model.model_uri,
        run_id=best_model.run_id,
        data=data,
        model_name=cfg.registry.model_name,
        metric=metric,
        min_delta=cfg.registry.min_delta,
        force=bool(cfg.registry.force),
        champion_alias=cfg.registry.champion_alias,
        challenger_alias=cfg.registry.challenger_alias,
        tags=best_tags,
        # Scored a moment ago on the same split by the same function: not again.
        scored=best.test_metrics,
    )
    return FinalModels([candidate for _, _, candidate in scored], promotion, notes)


def format_candidates(final: FinalModels) -> str:
    """The candidates side by side, which took the alias, and the champion's predict speed."""
    promotion = final.promotion
    label = GATE_METRICS[promotion.metric]
    lines = [f"candidates ({promotion.gate_split} split; the gate compares {label}):"]
    width = max(len(candidate.description) for candidate in final.candidates)
    chosen = None
    for candidate in final.candidates:
        mark = ""
        if candidate.version == promotion.version:
            chosen, mark = candidate, f"  -> @{promotion.alias}"
        lines.append(
            f"  {candidate.kind:<8} {candidate.description:<{width}}  "
            f"AUC {candidate.test_metrics['auc']:.4f}  "
            f"accuracy {candidate.test_metrics['accuracy']:.4f}  v{candidate.version}{mark}"
        )
    lines += [f"  {note}" for note in final.notes]
    if chosen is not None:
        cost = (
            f"; an ensemble of {chosen.members} costs about {chosen.members}x a single model"
            if chosen.kind == "ensemble"
            else ""
        )
        lines.append(
            f"  v{chosen.version} predicts about {chosen.images_per_second:.0f} img/s here "
            f"({promotion.gate_split} split, batches of 256){cost}"
        )
    return "\n".join(lines)
