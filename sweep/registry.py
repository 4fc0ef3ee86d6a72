"""Promotion: register a trial's model and move the `champion` alias only if it is better.

Both the challenger and the current champion are scored on the same test split now, with
the same preprocessing, rather than trusting numbers logged at other times.
"""

from dataclasses import dataclass

from mlflow.exceptions import MlflowException

from pipelines.data.datasets import ImageFolderData
from pipelines.errors import ImgsweepError
from pipelines.evaluate import evaluate_split
from pipelines.tracking import Tracker
from pipelines.tracking.keras_logging import load_keras_model


@dataclass(frozen=True)
class Promotion:
    model_name: str
    version: str
    alias: str
    test_auc: float
    champion_version: str | None
    champion_test_auc: float | None
    reason: str


def _registered_version(tracker: Tracker, model_name: str, model_uri: str, run_id: str):
    """The existing version of this logged model, or a new one (promotion is idempotent)."""
    client = tracker.client
    try:
        client.create_registered_model(model_name)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    model_id = model_uri.removeprefix("models:/")
    for version in client.search_model_versions(f"name='{model_name}'"):
        if version.model_id == model_id or version.source == model_uri:
            return version, False
    version = client.create_model_version(
        model_name, source=model_uri, run_id=run_id, model_id=model_id
    )
    return version, True


def _current_champion(tracker: Tracker, model_name: str, alias: str):
    try:
        return tracker.client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def promote(
    *,
    tracker: Tracker,
    model_uri: str,
    run_id: str,
    data: ImageFolderData,
    model_name: str,
    min_delta: float,
    force: bool,
    champion_alias: str,
    challenger_alias: str,
    tags: dict[str, str],
) -> Promotion:
    """Register `model_uri`; give it `champion_alias` if it beats the champion by min_delta."""
    if "test" not in data.splits:
        raise ImgsweepError("data.test_dir is not set; promotion scores models on the test split")
    test_split = data.splits["test"]
    version, _ = _registered_version(tracker, model_name, model_uri, run_id)
    test_auc = evaluate_split(load_keras_model(model_uri), data, test_split)["auc"]

    champion = _current_champion(tracker, model_name, champion_alias)
    champion_auc = None
    if champion is not None and champion.version != version.version:
        champion_model = load_keras_model(f"models:/{model_name}@{champion_alias}")
        champion_auc = evaluate_split(champion_model, data, test_split)["auc"]

    if champion is None:
        alias, reason = champion_alias, "no champion yet"
    elif champion.version == version.version:
        alias, reason = champion_alias, "already the champion"
    elif test_auc > champion_auc + min_delta:
        alias = champion_alias
        reason = f"test AUC {test_auc:.4f} beats champion v{champion.version}'s {champion_auc:.4f}"
    elif force:
        alias = champion_alias
        reason = (
            f"forced: test AUC {test_auc:.4f} does not beat champion v{champion.version}'s "
            f"{champion_auc:.4f} by more than {min_delta}"
        )
    else:
        alias = challenger_alias
        reason = (
            f"test AUC {test_auc:.4f} does not beat champion v{champion.version}'s "
            f"{champion_auc:.4f} by more than {min_delta}"
        )

    version_tags = {
        **tags,
        "test_auc": f"{test_auc:.6f}",
        "champion_test_auc_at_promotion": "" if champion_auc is None else f"{champion_auc:.6f}",
        "promotion": reason,
        "forced": str(force and reason.startswith("forced")),
    }
    for key, value in version_tags.items():
        tracker.client.set_model_version_tag(model_name, version.version, key, value)
    tracker.client.set_registered_model_alias(model_name, alias, version.version)
    return Promotion(
        model_name=model_name,
        version=str(version.version),
        alias=alias,
        test_auc=test_auc,
        champion_version=None if champion is None else str(champion.version),
        champion_test_auc=champion_auc,
        reason=reason,
    )
