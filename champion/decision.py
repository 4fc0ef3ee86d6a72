"""The decision threshold a registered version carries (set by champion.trust)."""

from mlflow import MlflowClient


def stored_threshold(client: MlflowClient, name: str, version: str) -> float | None:
    """The version's `decision_threshold` tag; None when it decides by argmax."""
    tags = client.get_model_version(name, version).tags
    if tags.get("decision_rule", "argmax") == "argmax" or "decision_threshold" not in tags:
        return None
    return float(tags["decision_threshold"])
