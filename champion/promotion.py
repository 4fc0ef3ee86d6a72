"""Promotion: register a trial's model and move the `champion` alias only if it is better.

Both the challenger and the current champion are scored on the same test split now (the val
split when the data has no test split), with the same preprocessing, rather than trusting
numbers logged at other times; never a champion of other classes or another input shape.
"""

import json
from dataclasses import dataclass

from pipelines.data.datasets import ImageFolderData
from pipelines.data.identity import DataIdentity, alternative_name, parse_shape, shape_text
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
    # The split both were scored on: "test", or "val" when the data has none (test_metrics
    # then holds val figures).
    gate_split: str = "test"

    @property
    def score(self) -> float:
        """The challenger's test value of the gate's metric."""
        return self.test_metrics[self.metric]

    @property
    def champion_score(self) -> float | None:
        metrics = self.champion_test_metrics
        return None if metrics is None else metrics[self.metric]


def gate_split(data: ImageFolderData) -> str:
    """The split promotion scores on: test, or val when the data has no test split."""
    return "test" if "test" in data.splits else "val"


def identity_tags(data: ImageFolderData) -> dict[str, str]:
    """The classes and input shape a version takes, as tags the registry check reads."""
    current = DataIdentity.of(data)
    return {
        "input_shape": shape_text(current.input_shape),
        "class_names": json.dumps(list(current.class_names)),
    }


def check_registered_model(
    *, tracker: Tracker, model_name: str, current: DataIdentity, champion_alias: str
) -> None:
    """Stop with one line if `model_name`'s champion (or latest version) takes other classes or
    another input shape than `current`: its models cannot be scored on this data."""
    versions = tracker.model_versions(model_name, create=False)
    if not versions:
        return
    version = tracker.version_by_alias(model_name, champion_alias) or max(
        versions, key=lambda candidate: int(candidate.version)
    )
    tags = version.tags
    if "input_shape" not in tags or "class_names" not in tags:
        return  # registered by hand: nothing says what it takes
    registered = DataIdentity(
        tuple(json.loads(tags["class_names"])), parse_shape(tags["input_shape"])
    )
    if registered.fits(current):
        return
    which = f"@{champion_alias}" if champion_alias in version.aliases else "latest"
    raise ImgsweepError(
        f"registered model '{model_name}' holds models of {registered.describe()} "
        f"(v{version.version}, {which}), this data has {current.describe()}; pass "
        f"registry.model_name={alternative_name(model_name, registered, current)} to register "
        "its models under their own name"
    )


def _gate(*, score, champion, champion_score, metric, min_delta, force, aliases, split="test"):
    """(alias, reason) for a challenger scoring `score`; no champion_score: it is the champion."""
    champion_alias, challenger_alias = aliases
    if champion is None:
        return champion_alias, "no champion yet"
    if champion_score is None:
        return champion_alias, "already the champion"
    label = GATE_METRICS[metric]
    comparison = f"{split} {label} {score:.4f}"
    against = f"champion v{champion.version}'s {champion_score:.4f}"
    if score > champion_score + min_delta:
        return champion_alias, f"{comparison} beats {against}"
    refusal = f"{comparison} does not beat {against} by more than {min_delta}"
    if force:
        return champion_alias, f"forced: {refusal}"
    return challenger_alias, refusal


def _champion_now(tracker, *, model_name, champion_alias, challenger_version, data):
    """(the champion's version or None, its metrics on the gate split, or None when the
    challenger already is the champion)."""
    champion = tracker.version_by_alias(model_name, champion_alias)
    if champion is None or str(champion.version) == challenger_version:
        return champion, None
    model = load_keras_model(f"models:/{model_name}/{champion.version}")
    return champion, evaluate_split(model, data, data.splits[gate_split(data)])


def promote(
    *,
    tracker: Tracker,
    model_name: str,
    version: str,
    test_metrics: dict[str, float],
    data: ImageFolderData,
    metric: str,
    min_delta: float,
    force: bool,
    champion_alias: str,
    challenger_alias: str,
) -> Promotion:
    """Registered `version` (scored `test_metrics`) takes `champion_alias` if it beats the
    champion by min_delta on the same split (test; val without one), else challenger_alias.

    `metric` ("auc" or "accuracy") decides; the champion is scored now, by the same function.
    """
    split = gate_split(data)
    champion, champion_metrics = _champion_now(
        tracker,
        model_name=model_name,
        champion_alias=champion_alias,
        challenger_version=version,
        data=data,
    )
    alias, reason = _gate(
        score=test_metrics[metric],
        champion=champion,
        champion_score=None if champion_metrics is None else champion_metrics[metric],
        metric=metric,
        min_delta=min_delta,
        force=force,
        aliases=(champion_alias, challenger_alias),
        split=split,
    )
    if split != "test":
        reason = f"{reason}; scored on the {split} split: the data has no test split"
    tracker.set_version_tags(
        model_name,
        version,
        {
            "gate_metric": metric,
            "gate_split": split,
            f"champion_{split}_{metric}_at_promotion": (
                "" if champion_metrics is None else f"{champion_metrics[metric]:.6f}"
            ),
            "promotion": reason,
            "forced": str(reason.startswith("forced")),
        },
    )
    tracker.set_alias(model_name, alias, version)
    return Promotion(
        model_name=model_name,
        version=version,
        alias=alias,
        metric=metric,
        test_metrics=test_metrics,
        champion_version=None if champion is None else str(champion.version),
        champion_test_metrics=champion_metrics,
        reason=reason,
        gate_split=split,
    )
