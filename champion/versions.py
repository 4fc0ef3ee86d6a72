"""Registered model versions loaded for prediction, with the classes and input they expect."""

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras
import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from omegaconf import OmegaConf

from pipelines.data.loading import CHANNELS
from pipelines.errors import ImgsweepError
from pipelines.inference import ReadSettings
from pipelines.tracking.keras_logging import load_keras_model
from pipelines.urls import mlflow_store_file, sqlite_uri


@dataclass(frozen=True)
class ServedModel:
    """A registered model version with what predicting needs: classes and input settings."""

    model: keras.Model
    name: str
    version: str
    class_names: list[str]
    read_settings: ReadSettings

    @property
    def channels(self) -> int:
        return CHANNELS[self.read_settings.color_mode]


def open_registry(*, mlruns_dir: Path, tracking_uri: str | None) -> MlflowClient:
    """A client of the existing store (predict must not create an empty one)."""
    store_file = mlflow_store_file(mlruns_dir)
    if not tracking_uri and not store_file.exists():
        raise ImgsweepError(
            f"no MLflow store at '{store_file}'; run `make sweep` first or set tracking.mlruns_dir"
        )
    uri = tracking_uri or sqlite_uri(mlruns_dir)
    # As connect_tracking does: the registry URI is left to follow it (models:/ loads).
    mlflow.set_tracking_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def find_version(client: MlflowClient, reference: str, default_alias: str):
    """`name`, `name@alias` or `name/version` (a `models:/` prefix is fine) → model version."""
    reference = reference.removeprefix("models:/")
    name, at, alias = reference.partition("@")
    number = None
    if not at:
        name, _, number = reference.partition("/")
        alias = None if number else default_alias
    try:
        if alias:
            return client.get_model_version_by_alias(name, alias)
        return client.get_model_version(name, number)
    except MlflowException:
        registered = [model.name for model in client.search_registered_models()]
        if name in registered:
            which = f"@{alias}" if alias else f"version {number}"
            raise ImgsweepError(
                f"registered model '{name}' has no {which} yet; promote a version with "
                "`make promote`, or name NAME@ALIAS or NAME/VERSION"
            ) from None
        names = ", ".join(registered) or "none"
        raise ImgsweepError(
            f"model '{reference}' is not in the registry (registered models: {names}); "
            "promote one with `make promote`, or name NAME@ALIAS or NAME/VERSION"
        ) from None


def run_artifact(client: MlflowClient, run_id: str, name: str, *, owner: str) -> str:
    """An artifact of the run or, for a stage run, of the trial run above it."""
    current = run_id
    while current:
        with tempfile.TemporaryDirectory() as folder:
            try:
                return Path(client.download_artifacts(current, name, folder)).read_text()
            except (MlflowException, OSError):
                current = client.get_run(current).data.tags.get("mlflow.parentRunId")
    raise ImgsweepError(
        f"{owner}: its run {run_id} has no {name}, so the classes or the input it was trained "
        "with are unknown"
    )


def run_inputs(client: MlflowClient, run_id: str, *, owner: str) -> tuple[list[str], ReadSettings]:
    """The classes a run's model predicts and how its images were read (its config.yaml)."""
    data_config = OmegaConf.create(run_artifact(client, run_id, "config.yaml", owner=owner)).data
    # The run's JSON list, not the version's tag: one list, written when the run started.
    class_names = json.loads(run_artifact(client, run_id, "class_names.json", owner=owner))
    settings = ReadSettings(
        image_size=tuple(data_config.image_size),
        color_mode=data_config.color_mode,
        crop=tuple(data_config.crop) if data_config.get("crop") else None,
    )
    return class_names, settings


def load_served_model(
    client: MlflowClient, reference: str, *, default_alias: str = "champion"
) -> ServedModel:
    """The registered version `reference` names, with its classes and its training input."""
    version = find_version(client, reference, default_alias)
    owner = f"{version.name} v{version.version}"
    class_names, settings = run_inputs(client, version.run_id, owner=owner)
    model = load_keras_model(f"models:/{version.name}/{version.version}")
    served = ServedModel(
        model=model,
        name=version.name,
        version=str(version.version),
        class_names=class_names,
        read_settings=settings,
    )
    expected = (None, *settings.image_size, served.channels)
    if tuple(model.input_shape) != expected:
        raise ImgsweepError(
            f"{owner} takes {model.input_shape[1:]} but its config says "
            f"{expected[1:]}; the run's config.yaml does not describe this model"
        )
    return served
