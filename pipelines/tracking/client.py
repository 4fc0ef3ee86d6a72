"""Runs, params, tags and artifacts in MLflow, addressed by run id (no global active run)."""

import json
import sys
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from pipelines.tracking.retry import call_with_retry

# MLflow's params are strings of at most 6000 characters; ours are short values.
PARAM_VALUE_LIMIT = 6000


def entry_point() -> str:
    """The command this process runs, as MLflow's Source column shows it: `python -m sweep`."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        return f"python -m {spec.name.removesuffix('.__main__')}"
    return f"python {Path(sys.argv[0]).name}" if sys.argv and sys.argv[0] else "python"


class RunStatus(StrEnum):
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


class Tracker:
    """One MLflow experiment and the calls the pipeline makes on its runs.

    Every call is retried with backoff for up to `retry_seconds` (a tracking server restarting,
    a sqlite file locked by another worker), then raises TrackingUnavailable: never a hang
    (pipelines/tracking/retry.py).
    """

    def __init__(
        self, client: MlflowClient, experiment_id: str, tracking_uri: str, retry_seconds: float
    ):
        self.client = client
        self.experiment_id = experiment_id
        self.tracking_uri = tracking_uri
        self.retry_seconds = retry_seconds

    def _call(self, function: Callable, *args, **kwargs):
        return call_with_retry(
            function,
            *args,
            tracking_uri=self.tracking_uri,
            retry_seconds=self.retry_seconds,
            **kwargs,
        )

    def start_run(
        self, name: str, *, parent_run_id: str | None = None, tags: dict[str, Any] | None = None
    ) -> str:
        """A new RUNNING run (nested under `parent_run_id` in the UI); returns its id."""
        # MLflow's own source tags (the UI's Source column), which only its fluent API sets.
        all_tags = {"mlflow.source.type": "LOCAL", "mlflow.source.name": entry_point()}
        all_tags.update({key: str(value) for key, value in (tags or {}).items()})
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = self._call(self.client.create_run, self.experiment_id, run_name=name, tags=all_tags)
        return run.info.run_id

    def resume_run(self, run_id: str) -> None:
        """Mark an ended run RUNNING again (a resumed study's parent run)."""
        self._call(self.client.update_run, run_id, status="RUNNING")

    def end_run(self, run_id: str, status: RunStatus, reason: str | None = None) -> None:
        if reason:
            self._call(self.client.set_tag, run_id, "reason", reason[:PARAM_VALUE_LIMIT])
        self._call(self.client.set_terminated, run_id, status=str(status))

    def end_unfinished_children(self, run_id: str, status: RunStatus, reason: str) -> None:
        """End the RUNNING runs nested under `run_id` (a dead worker's stage runs)."""
        children = self._call(
            self.client.search_runs,
            [self.experiment_id],
            filter_string=(
                f"tags.mlflow.parentRunId = '{run_id}' and attributes.status = 'RUNNING'"
            ),
        )
        for child in children:
            self.end_run(child.info.run_id, status, reason)

    def run_status(self, run_id: str) -> str | None:
        """The run's status, or None if no such run exists."""
        try:
            return self._call(self.client.get_run, run_id).info.status
        except MlflowException:
            return None

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        items = [Param(key, str(value)[:PARAM_VALUE_LIMIT]) for key, value in params.items()]
        self._call(self.client.log_batch, run_id, params=items)

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        items = [RunTag(key, str(value)) for key, value in tags.items()]
        self._call(self.client.log_batch, run_id, tags=items)

    def log_metrics(self, run_id: str, metrics: dict[str, float], *, step: int = 0) -> None:
        self.log_metric_steps(run_id, [(step, metrics)])

    def log_metric_steps(self, run_id: str, steps: list[tuple[int, dict[str, float]]]) -> None:
        """Several steps' metrics in as few writes as MLflow allows (1000 values a batch)."""
        now = int(time.time() * 1000)
        items = [
            Metric(key, float(value), now, step)
            for step, metrics in steps
            for key, value in metrics.items()
        ]
        for start in range(0, len(items), 1000):
            self._call(self.client.log_batch, run_id, metrics=items[start : start + 1000])

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self._call(self.client.log_text, run_id, text, artifact_file)

    def log_json(self, run_id: str, content: Any, artifact_file: str) -> None:
        self.log_text(run_id, json.dumps(content, indent=2), artifact_file)

    def log_dataset(
        self,
        run_id: str,
        *,
        name: str,
        digest: str,
        source: str,
        schema: dict[str, Any],
        profile: dict[str, Any],
        context: str = "training",
    ) -> None:
        """An image-folder tree as the run's dataset input (the UI's Dataset column).

        MLflow keeps one dataset per name and digest and one input per run: logging again
        (a resumed study) adds nothing.
        """
        dataset = Dataset(
            name=name,
            digest=digest,
            source_type="local",
            source=json.dumps({"uri": source}),
            schema=json.dumps(schema),
            profile=json.dumps(profile),
        )
        tags = [InputTag("mlflow.data.context", context)]
        self._call(self.client.log_inputs, run_id, datasets=[DatasetInput(dataset, tags)])

    def log_keras_model(self, run_id: str, model: Any, sample_images: Any) -> str:
        """Log a Keras model with its signature; returns its models:/ URI."""
        from pipelines.tracking.keras_logging import log_keras_model

        return self._call(log_keras_model, self, run_id, model, sample_images)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        """A matplotlib Figure as an image artifact (e.g. "augmentation_grid.png")."""
        self._call(self.client.log_figure, run_id, figure, artifact_file)

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every logged value of one metric of a run."""
        return self._call(self.client.get_metric_history, run_id, key)

    def log_artifacts(self, run_id: str, folder: str) -> None:
        """A local folder's files as the run's artifacts, in one upload."""
        self._call(self.client.log_artifacts, run_id, folder)

    def load_text(self, run_id: str, artifact_file: str) -> str:
        """A text artifact of the run (e.g. its config.yaml)."""
        uri = f"runs:/{run_id}/{artifact_file}"
        return self._call(mlflow.artifacts.load_text, uri)

    def get_run(self, run_id: str) -> Any:
        return self._call(self.client.get_run, run_id)

    # The model registry, through the same retry.
    def model_versions(self, model_name: str, *, create: bool = True) -> list[Any]:
        """Every version of a registered model; with `create`, the model is created when new
        (a check before any training leaves the registry as it was)."""
        if create:
            try:
                self._call(self.client.create_registered_model, model_name)
            except MlflowException as error:
                if error.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
        return self._call(self.client.search_model_versions, f"name='{model_name}'")

    def create_model_version(self, model_name: str, *, source: str, run_id: str, model_id: str):
        return self._call(
            self.client.create_model_version,
            model_name,
            source=source,
            run_id=run_id,
            model_id=model_id,
        )

    def version_by_alias(self, model_name: str, alias: str) -> Any | None:
        """The version holding `alias`, or None."""
        try:
            return self._call(self.client.get_model_version_by_alias, model_name, alias)
        except MlflowException:
            return None

    def set_version_tags(self, model_name: str, version: str, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self._call(self.client.set_model_version_tag, model_name, version, key, str(value))

    def set_alias(self, model_name: str, alias: str, version: str) -> None:
        self._call(self.client.set_registered_model_alias, model_name, alias, version)

    def find_runs(self, filter_string: str) -> list[Any]:
        """Runs of this experiment matching an MLflow search filter, newest first."""
        return self._call(
            self.client.search_runs,
            [self.experiment_id],
            filter_string=filter_string,
            order_by=["start_time DESC"],
        )
