"""Runs, params, tags and artifacts in MLflow, addressed by run id (no global active run)."""

import json
import logging
import time
from enum import StrEnum
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from pipelines.errors import ImgsweepError

# MLflow's params are strings of at most 6000 characters; ours are short values.
PARAM_VALUE_LIMIT = 6000


class RunStatus(StrEnum):
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


class Tracker:
    """One MLflow experiment and the calls the pipeline makes on its runs."""

    def __init__(self, client: MlflowClient, experiment_id: str, tracking_uri: str):
        self.client = client
        self.experiment_id = experiment_id
        self.tracking_uri = tracking_uri

    def start_run(
        self, name: str, *, parent_run_id: str | None = None, tags: dict[str, Any] | None = None
    ) -> str:
        """A new RUNNING run (nested under `parent_run_id` in the UI); returns its id."""
        all_tags = {key: str(value) for key, value in (tags or {}).items()}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags)
        return run.info.run_id

    def resume_run(self, run_id: str) -> None:
        """Mark an ended run RUNNING again (a resumed study's parent run)."""
        self.client.update_run(run_id, status="RUNNING")

    def end_run(self, run_id: str, status: RunStatus, reason: str | None = None) -> None:
        if reason:
            self.client.set_tag(run_id, "reason", reason[:PARAM_VALUE_LIMIT])
        self.client.set_terminated(run_id, status=str(status))

    def run_status(self, run_id: str) -> str | None:
        """The run's status, or None if no such run exists."""
        try:
            return self.client.get_run(run_id).info.status
        except MlflowException:
            return None

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        items = [Param(key, str(value)[:PARAM_VALUE_LIMIT]) for key, value in params.items()]
        self.client.log_batch(run_id, params=items)

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        self.client.log_batch(
            run_id, tags=[RunTag(key, str(value)) for key, value in tags.items()]
        )

    def log_metrics(self, run_id: str, metrics: dict[str, float], *, step: int = 0) -> None:
        now = int(time.time() * 1000)
        items = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        self.client.log_batch(run_id, metrics=items)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, text, artifact_file)

    def log_json(self, run_id: str, content: Any, artifact_file: str) -> None:
        self.client.log_text(run_id, json.dumps(content, indent=2), artifact_file)

    def find_runs(self, filter_string: str) -> list[Any]:
        """Runs of this experiment matching an MLflow search filter, newest first."""
        return self.client.search_runs(
            [self.experiment_id], filter_string=filter_string, order_by=["start_time DESC"]
        )


def sqlite_uri(mlruns_dir: Path) -> str:
    """The tracking URI of the sqlite store inside `mlruns_dir`."""
    return f"sqlite:///{mlruns_dir / 'mlflow.db'}"


def connect_tracking(
    *, mlruns_dir: Path, tracking_uri: str | None, experiment_name: str
) -> Tracker:
    """Open (creating if needed) the store and the experiment; one clear error if unreachable."""
    mlruns_dir.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri or sqlite_uri(mlruns_dir)
    # MLflow and Alembic log every schema migration at INFO when a new sqlite store is created.
    for logger in ("alembic", "mlflow"):
        logging.getLogger(logger).setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is None:
            experiment_id = client.create_experiment(
                experiment_name, artifact_location=(mlruns_dir / "artifacts").as_uri()
            )
        else:
            experiment_id = experiment.experiment_id
            if experiment.lifecycle_stage == "deleted":
                client.restore_experiment(experiment_id)
    except MlflowException as error:
        message = str(error).splitlines()[0][:300]
        raise ImgsweepError(
            f"tracking store '{uri}' cannot be used: {message}; check tracking.tracking_uri "
            "(or start the server)"
        ) from None
    return Tracker(client, experiment_id, uri)


def package_requirements() -> list[str]:
    """Pinned requirements of a logged Keras model, given so MLflow does not infer them (~6 s)."""
    return [f"{name}=={version(name)}" for name in ("keras", "tensorflow", "numpy", "pillow")]
