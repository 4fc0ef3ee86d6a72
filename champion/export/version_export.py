"""A registered version exported in every format, checked on its test split, timed, and logged:
the usable artifacts under `export/` of the version's run, the figures as version tags."""

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from omegaconf import OmegaConf

from champion.export.formats import FORMATS, keras_runner
from champion.export.latency import Latency, measure_latency
from champion.export.parity import TOLERANCE, ExportCheck, batched_probabilities, check_export
from champion.versions import ServedModel
from pipelines.errors import ImgsweepError

ARTIFACT_FOLDER = "export"


@dataclass(frozen=True)
class VersionExport:
    served: ServedModel
    split: str
    images: int
    checks: list[ExportCheck]
    latencies: dict[str, Latency]  # "keras" and each usable format
    run_id: str


def split_images(client: MlflowClient, served: ServedModel, *, tracking) -> tuple[str, np.ndarray]:
    """The split promotion scored the version on (test, else val), as float32 raw pixels.

    Read with the data settings of the version's run (its config.yaml), through the loader
    training used, so the images are the ones its test scores came from.
    """
    from champion.promotion import gate_split
    from champion.versions import run_artifact
    from pipelines.data.datasets import build_batches
    from pipelines.plan import load_data

    version = client.get_model_version(served.name, served.version)
    run_config = OmegaConf.create(
        run_artifact(
            client, version.run_id, "config.yaml", owner=f"{served.name} v{served.version}"
        )
    )
    run_config.tracking = tracking  # the decoded-image cache of this store, not the run's
    run_config.data.min_val_per_class = 0  # the val-size warning is about training, not this
    data = load_data(run_config)
    split = gate_split(data)
    batches = build_batches(data, data.splits[split], batch_size=256)
    images = np.concatenate([np.asarray(batch) for batch, _ in batches])
    if not len(images):
        raise ImgsweepError(f"the {split} split of {served.name} v{served.version} is empty")
    return split, images.astype("float32")


def export_version(
    served: ServedModel,
    *,
    images: np.ndarray,
    folder: Path,
    formats: list[str],
    latency_calls: int,
) -> tuple[list[ExportCheck], dict[str, Latency]]:
    """Each format written under `folder` and checked on `images`; with `latency_calls`,
    Keras and each usable format timed on as many single-image calls, side by side."""
    reference = batched_probabilities(keras_runner(served.model), images)
    checks = [
        check_export(
            served.model, FORMATS[name], images=images, folder=folder, reference=reference
        )
        for name in formats
    ]
    latencies = {}
    if latency_calls:
        runners = {"keras": keras_runner(served.model)}
        runners |= {
            check.format.name: check.format.load(check.path) for check in checks if check.usable
        }
        latencies = {
            name: measure_latency(run, images, single_calls=latency_calls)
            for name, run in runners.items()
        }
    return checks, latencies


def export_tags(
    checks: list[ExportCheck], latencies: dict[str, Latency], *, split: str, images: int
) -> dict[str, str]:
    """Version tags: per format its parity, artifact or failure reason, and latency."""
    tags = {
        "export_split": split,
        "export_images": str(images),
        "export_tolerance": f"{TOLERANCE:g}",
    }
    for check in checks:
        prefix = f"export_{check.format.name}"
        if check.max_abs_diff is not None:
            tags[f"{prefix}_max_abs_diff"] = f"{check.max_abs_diff:.3e}"
            tags[f"{prefix}_agreement"] = f"{check.agreement:.6f}"
        if check.usable:
            tags[f"{prefix}_artifact"] = f"{ARTIFACT_FOLDER}/{check.format.artifact}"
        else:
            tags[f"{prefix}_failed"] = check.reason
    for name, latency in latencies.items():
        tags |= latency.tags(f"export_{name}")
        tags["export_latency_batch_size"] = str(latency.batch_size)
    return tags


def log_export(client: MlflowClient, result: VersionExport, folder: Path) -> None:
    """The usable artifacts and parity.json under `export/` of the version's run; the tags on
    the version, replacing an earlier export's (a format that fails now loses its old tags)."""
    summary = {
        check.format.name: {
            "artifact": f"{ARTIFACT_FOLDER}/{check.format.artifact}" if check.usable else None,
            "max_abs_diff": check.max_abs_diff,
            "agreement": check.agreement,
            "reason": check.reason,
        }
        for check in result.checks
    }
    (folder / "parity.json").write_text(json.dumps(summary, indent=2))
    client.log_artifacts(result.run_id, str(folder), artifact_path=ARTIFACT_FOLDER)
    served = result.served
    version = client.get_model_version(served.name, served.version)
    for key in version.tags:
        if key.startswith("export_"):
            client.delete_model_version_tag(served.name, served.version, key)
    tags = export_tags(result.checks, result.latencies, split=result.split, images=result.images)
    for key, value in tags.items():
        client.set_model_version_tag(served.name, served.version, key, value)


def run_export(
    client: MlflowClient, served: ServedModel, *, tracking, formats: list[str], latency_calls: int
) -> VersionExport:
    """Export, check, time and log one version."""
    split, images = split_images(client, served, tracking=tracking)
    run_id = client.get_model_version(served.name, served.version).run_id
    with tempfile.TemporaryDirectory(prefix="imgsweep-export-") as temporary:
        folder = Path(temporary)
        checks, latencies = export_version(
            served, images=images, folder=folder, formats=formats, latency_calls=latency_calls
        )
        result = VersionExport(served, split, len(images), checks, latencies, run_id)
        log_export(client, result, folder)
    return result
