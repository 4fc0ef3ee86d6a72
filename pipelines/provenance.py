"""What a run was made from: its config, data, the code's git commit and package versions."""

import functools
import json
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from pipelines.compose import data_name
from pipelines.data.datasets import ImageFolderData
from pipelines.data.folders import fingerprint
from pipelines.tracking import Tracker
from pipelines.urls import mask_password

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    "tensorflow",
    "keras",
    "numpy",
    "scikit-learn",
    "pillow",
    "mlflow",
    "optuna",
    "hydra-core",
)


def _git(*arguments: str) -> str:
    completed = subprocess.run(
        ["git", *arguments], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10
    )
    if completed.returncode:
        raise subprocess.SubprocessError(completed.stderr)
    return completed.stdout.strip()


@functools.cache
def git_state() -> dict[str, str]:
    """The checkout's commit, and whether tracked files differ from it; {} outside git."""
    try:
        commit = _git("rev-parse", "HEAD")
        changed = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": commit, "dirty": "true" if changed else "false"}


@functools.cache
def package_versions() -> dict[str, str]:
    """Python's version and each installed package of PACKAGES'."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def _image_schema(data: ImageFolderData) -> dict:
    """MLflow's tensor-spec schema: uint8 images of the input shape, integer class labels."""
    image = {"dtype": "uint8", "shape": [-1, *data.input_shape]}
    label = {"dtype": "int64", "shape": [-1]}
    return {
        "mlflow_tensorspec": {
            "features": json.dumps([{"name": "image", "type": "tensor", "tensor-spec": image}]),
            "targets": json.dumps([{"name": "label", "type": "tensor", "tensor-spec": label}]),
        }
    }


def log_data_input(
    tracker: Tracker, run_id: str, *, data: ImageFolderData, data_root: str | Path | None
) -> None:
    """The image folders as the run's MLflow dataset: name, fingerprint, path, class counts."""
    if data_root is None:
        # No root given: the folder that holds every file the run read.
        data_root = os.path.commonpath(
            [file for split in data.splits.values() for file in split.files]
        )
    per_class = {
        split_name: dict(
            zip(
                data.class_names,
                np.bincount(split.labels, minlength=data.num_classes).tolist(),
                strict=True,
            )
        )
        for split_name, split in data.splits.items()
    }
    tracker.log_dataset(
        run_id,
        name=data_name(data_root),
        digest=fingerprint(data.splits),
        source=str(Path(data_root).expanduser().resolve()),
        schema=_image_schema(data),
        profile={
            "num_images": sum(len(split) for split in data.splits.values()),
            "input_shape": list(data.input_shape),
            "images_per_class": per_class,
        },
    )


def log_run_inputs(
    tracker: Tracker,
    run_id: str,
    *,
    config_yaml: str,
    data: ImageFolderData,
    data_root: str | Path | None = None,
) -> None:
    """What a run was given and made from: its resolved config (passwords masked), classes,
    file check, data fingerprint (also as its MLflow dataset input), git commit and package
    versions."""
    tags = {"data_fingerprint": fingerprint(data.splits)}
    git = git_state()
    if git:
        # MLflow's own tag: the UI shows it as the run's source version.
        tags["mlflow.source.git.commit"] = git["commit"]
        tags["git_dirty"] = git["dirty"]
    tracker.set_tags(run_id, tags)
    log_data_input(tracker, run_id, data=data, data_root=data_root)
    tracker.log_text(run_id, mask_password(config_yaml), "config.yaml")
    tracker.log_json(run_id, data.class_names, "class_names.json")
    tracker.log_json(run_id, data.report.as_dict(), "data_check.json")
    tracker.log_json(run_id, package_versions(), "packages.json")
