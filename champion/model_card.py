"""The model card: descriptions the MLflow UI shows on the registered model and each version.

Written from the version's own tags (classes, input, scores, the gate's decision, and the
`export_<format>_max_abs_diff` / `export_<format>_agreement` tags an export leaves), so a
card never says more than the registry holds; write_model_card again after tags change.
"""

import json
import re

from mlflow import MlflowClient

from champion.image_requests import IMAGE_ITEM, PIXELS_ITEM, curl_line
from champion.promotion import GATE_METRICS
from champion.versions import run_inputs

SERVE_URL = "http://127.0.0.1:5002"
EXPORT_TAG = re.compile(r"export_(?P<format>.+)_max_abs_diff")


def _exports(tags: dict[str, str]) -> str:
    """Each exported format with its parity against Keras, or how to make them."""
    lines = []
    for key in sorted(tags):
        match = EXPORT_TAG.fullmatch(key)
        if match:
            name = match["format"]
            agreement = tags.get(f"export_{name}_agreement", "?")
            lines.append(
                f"- {name}: largest probability difference {tags[key]}, "
                f"prediction agreement {agreement}"
            )
    return "\n".join(lines) if lines else "none yet"


def _scores(tags: dict[str, str]) -> str:
    split = tags.get("gate_split", "test")
    scores = [
        f"{label} {float(tags[f'{split}_{metric}']):.4f}"
        for metric, label in (("auc", "AUC"), ("accuracy", "accuracy"))
        if f"{split}_{metric}" in tags
    ]
    return f"{split} split: " + (", ".join(scores) or "not scored")


def version_card(version, *, class_names: list[str], read_settings) -> str:
    """Markdown for one version: what it is, takes, scored, exports, and how to call it."""
    tags = version.tags
    size = "x".join(map(str, read_settings.image_size))
    crop = "x".join(map(str, read_settings.crop)) if read_settings.crop else None
    promotion = tags.get("promotion")
    return "\n".join(
        [
            f"**{version.name} v{version.version}**: image classifier, candidate "
            f"`{tags.get('candidate', '?')}` of study `{tags.get('study', '?')}`"
            + (f" (trial {tags['trial_number']})" if "trial_number" in tags else ""),
            "",
            f"**Classes** ({len(class_names)}): " + ", ".join(f"`{n}`" for n in class_names),
            f"data fingerprint `{tags.get('data_fingerprint', '?')}`.",
            "",
            f"**Input**: PNG/JPEG files (base64) or pixel arrays of any size, read as {size} "
            f"{read_settings.color_mode}"
            + (f" after a centre crop to {crop}" if crop else "")
            + f', as in training. Request: `{{"inputs": [...]}}`, each item `{IMAGE_ITEM}` '
            f"or `{PIXELS_ITEM}`.",
            "",
            "**Output**: per image `predicted_class` and "
            + ", ".join(f"`p_{name}`" for name in class_names)
            + ".",
            "",
            f"**Scores** ({GATE_METRICS[tags.get('gate_metric', 'auc')]} decides promotion): "
            f"{_scores(tags)}" + (f". Gate: {promotion}." if promotion else "."),
            "",
            f"**Exports**:\n{_exports(tags)}",
            "",
            f"**Call it**: `make serve MODEL={version.name}/{version.version}`, then",
            "",
            f"    {curl_line(SERVE_URL)}",
        ]
    )


def write_model_card(client: MlflowClient, model_name: str, version_number: str) -> None:
    """The version's description, from its tags and its run's classes and read settings."""
    version = client.get_model_version(model_name, version_number)
    class_names, settings = run_inputs(
        client, version.run_id, owner=f"{model_name} v{version_number}"
    )
    client.update_model_version(
        model_name,
        version_number,
        description=version_card(version, class_names=class_names, read_settings=settings),
    )


def write_registered_model_card(client: MlflowClient, model_name: str, alias: str) -> None:
    """The registered model's description: which version holds `alias`, and its card."""
    champion = client.get_model_version_by_alias(model_name, alias)
    classes = ", ".join(f"`{name}`" for name in json.loads(champion.tags["class_names"]))
    client.update_registered_model(
        model_name,
        description=(
            f"Image classifier of {classes}. **@{alias}: v{champion.version}** "
            f"({_scores(champion.tags)}); its version page holds the full card.\n\n"
            f"Serve it: `make serve` (MLflow's scoring server on {SERVE_URL}), then\n\n"
            f"    {curl_line(SERVE_URL)}\n\n"
            f'In Python: `mlflow.pyfunc.load_model("models:/{model_name}@{alias}")'
            f'.predict([{{"image": base64_text}}])`.'
        ),
    )
