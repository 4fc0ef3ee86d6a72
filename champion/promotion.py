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


def gate_split(data: ImageFolderData) -> str:
    """The split promotion scores on: test, or val when the data has no test split."""
    return "test" if "test" in data.splits else "val"


def class_names_tag(text: str) -> tuple[str, ...]:
    """A version's `class_names` tag: a JSON list (older versions: comma-joined)."""
    try:
        return tuple(json.loads(text))
    except json.JSONDecodeError:
        return tuple(text.split(","))


def _registered_input(tracker: Tracker, version) -> DataIdentity:
    """A version's classes and input shape: its tags, else its run's config, else its model."""
    tags = version.tags
    if "input_shape" in tags and "class_names" in tags:
        return DataIdentity(class_names_tag(tags["class_names"]), parse_shape(tags["input_shape"]))
    # Versions registered before the input_shape tag.
    from champion.versions import load_served_model

    reference = f"{version.name}/{version.version}"
    try:
        served = load_served_model(tracker.client, reference)
        shape = (*served.read_settings.image_size, served.channels)
        return DataIdentity(tuple(served.class_names), shape)
    except ImgsweepError:
        shape = load_keras_model(f"models:/{reference}").input_shape[1:]
        return DataIdentity(class_names_tag(tags.get("class_names", "")), tuple(shape))


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
    registered = _registered_input(tracker, version)
    if registered.fits(current):
        return
    which = f"@{champion_alias}" if champion_alias in version.aliases else "latest"
    raise ImgsweepError(
        f"registered model '{model_name}' holds models of {registered.describe()} "
        f"(v{version.version}, {which}), this data has {current.describe()}; pass "
        f"registry.model_name={alternative_name(model_name, registered, current)} to register "
        "its models under their own name"
    )


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
    scored: dict[str, float] | None = None,
) -> Promotion:
    """Register `model_uri`; it takes `champion_alias` if it beats the champion by min_delta.

    Both are scored now on the same test split (val without one): `metric` ("auc" or
    "accuracy") decides. A registered model of other classes or input stops it first.
    `scored`: the challenger's metrics on that split when the caller has just computed them.
    """
    current = DataIdentity.of(data)
    check_registered_model(
        tracker=tracker, model_name=model_name, current=current, champion_alias=champion_alias
    )
    split = gate_split(data)
    test_split = data.splits[split]
    version, _ = registered_version(tracker, model_name, model_uri, run_id)
    test_metrics = scored or evaluate_split(load_keras_model(model_uri), data, test_split)

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
        split=split,
    )
    if split != "test":
        reason = f"{reason}; scored on the {split} split: the data has no test split"

    version_tags = {
        **tags,
        **{f"{split}_{name}": f"{value:.6f}" for name, value in test_metrics.items()},
        "gate_metric": metric,
        "gate_split": split,
        "input_shape": shape_text(current.input_shape),
        "class_names": json.dumps(list(current.class_names)),
        f"champion_{split}_{metric}_at_promotion": (
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
        gate_split=split,
    )
