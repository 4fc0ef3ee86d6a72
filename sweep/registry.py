"""Promotion: register a trial's model and move the `champion` alias only if it is better.

Both the challenger and the current champion are scored on the same test split now, with
the same preprocessing, rather than trusting numbers logged at other times.
"""

from dataclasses import dataclass

from pipelines.data.datasets import ImageFolderData
from pipelines.errors import ImgsweepError
from pipelines.evaluate import evaluate_split
from pipelines.tracking import Tracker
from pipelines.tracking.keras_logging import load_keras_model

# The test metrics the gate may compare (`registry.metric`), as reasons and tags name them.
GATE_METRICS = {"auc": "AUC", "accuracy": "accuracy"}


@dataclass(frozen=True)
class Promotion:
    model_name: str
    version: str
    alias: str
    metric: str
    test_metrics: dict[str, float]
    champion_version: str | None
    champion_test_metrics: dict[str, float] | None
    reason: str

    @property
    def score(self) -> float:
        """The challenger's test value of the gate's metric."""
        return self.test_metrics[self.metric]

    @property
    def champion_score(self) -> float | None:
        metrics = self.champion_test_metrics
        return None if metrics is None else metrics[self.metric]


def registered_version(tracker: Tracker, model_name: str, model_uri: str, run_id: str):
    """The existing version of this logged model, or a new one (promotion is idempotent)."""
    model_id = model_uri.removeprefix("models:/")
    for version in tracker.model_versions(model_name):
        if version.model_id == model_id or version.source == model_uri:
            return version, False
    version = tracker.create_model_version(
        model_name, source=model_uri, run_id=run_id, model_id=model_id
    )
    return version, True


def _gate(*, score, champion, champion_score, metric, min_delta, force, aliases):
    """(alias, reason) for a challenger scoring `score`; no champion_score: it is the champion."""
    champion_alias, challenger_alias = aliases
    if champion is None:
        return champion_alias, "no champion yet"
    if champion_score is None:
        return champion_alias, "already the champion"
    label = GATE_METRICS[metric]
    comparison = f"test {label} {score:.4f}"
    against = f"champion v{champion.version}'s {champion_score:.4f}"
    if score > champion_score + min_delta:
        return champion_alias, f"{comparison} beats {against}"
    refusal = f"{comparison} does not beat {against} by more than {min_delta}"
    if force:
        return champion_alias, f"forced: {refusal}"
    return challenger_alias, refusal


def promote(
    *,
    tracker: Tracker,
    model_uri: str,
    run_id: str,
    data: ImageFolderData,
    model_name: str,
    metric: str,
    min_delta: float,
    force: bool,
    champion_alias: str,
    challenger_alias: str,
    tags: dict[str, str],
) -> Promotion:
    """Register `model_uri`; it takes `champion_alias` if it beats the champion by min_delta.

    Both are scored now on the same test split: `metric` ("auc" or "accuracy") decides.
    """
    if "test" not in data.splits:
        raise ImgsweepError("data.test_dir is not set; promotion scores models on the test split")
    test_split = data.splits["test"]
    version, _ = registered_version(tracker, model_name, model_uri, run_id)
    test_metrics = evaluate_split(load_keras_model(model_uri), data, test_split)

    champion = tracker.version_by_alias(model_name, champion_alias)
    champion_metrics = None
    if champion is not None and champion.version != version.version:
        champion_model = load_keras_model(f"models:/{model_name}@{champion_alias}")
        champion_metrics = evaluate_split(champion_model, data, test_split)
    alias, reason = _gate(
        score=test_metrics[metric],
        champion=champion,
        champion_score=None if champion_metrics is None else champion_metrics[metric],
        metric=metric,
        min_delta=min_delta,
        force=force,
        aliases=(champion_alias, challenger_alias),
    )

    version_tags = {
        **tags,
        **{f"test_{name}": f"{value:.6f}" for name, value in test_metrics.items()},
        "gate_metric": metric,
        f"champion_test_{metric}_at_promotion": (
            "" if champion_metrics is None else f"{champion_metrics[metric]:.6f}"
        ),
        "promotion": reason,
        "forced": str(reason.startswith("forced")),
    }
    tracker.set_version_tags(model_name, version.version, version_tags)
    tracker.set_alias(model_name, alias, version.version)
    return Promotion(
        model_name=model_name,
        version=str(version.version),
        alias=alias,
        metric=metric,
        test_metrics=test_metrics,
        champion_version=None if champion is None else str(champion.version),
        champion_test_metrics=champion_metrics,
        reason=reason,
    )
