"""Open the tracking store (a local sqlite file or an MLflow server) and the experiment."""

import logging
import os
import urllib.request
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from pipelines.errors import ImgsweepError
from pipelines.tracking.client import Tracker
from pipelines.tracking.retry import TrackingUnavailable
from pipelines.urls import mask_password, sqlite_uri


def _check_server_answers(uri: str) -> None:
    """A quick probe of an MLflow server, so a wrong URL fails in seconds, not minutes."""
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=5):
            return
    except OSError as error:
        reason = getattr(error, "reason", error)
        raise TrackingUnavailable(
            f"tracking.tracking_uri '{mask_password(uri)}' does not answer ({reason}); start the "
            "server (`make tracking-server`) or fix the URL"
        ) from None


def connect_tracking(
    *,
    mlruns_dir: Path,
    tracking_uri: str | None,
    experiment_name: str,
    retry_seconds: float = 60,
) -> Tracker:
    """Open (creating if needed) the store and the experiment; one clear error if unreachable."""
    mlruns_dir.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri or sqlite_uri(mlruns_dir)
    if uri.startswith("http"):
        # Our own retry loop bounds the wait; MLflow's default retries can take minutes.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        # Against a server MLflow prints a "View run at" link for every run it ends.
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        _check_server_answers(uri)
    # Reading a trial's config.yaml back (Tracker.load_text) would draw a progress bar each time.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow and Alembic log every schema migration at INFO when a new sqlite store is created.
    for logger in ("alembic", "mlflow"):
        logging.getLogger(logger).setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    tracker = Tracker(client, "", uri, retry_seconds)
    try:
        experiment = tracker._call(client.get_experiment_by_name, experiment_name)
        if experiment is None:
            # A server keeps artifacts where it was told to; a local store keeps them here.
            location = None if uri.startswith("http") else (mlruns_dir / "artifacts").as_uri()
            experiment_id = tracker._call(
                client.create_experiment, experiment_name, artifact_location=location
            )
        else:
            experiment_id = experiment.experiment_id
            if experiment.lifecycle_stage == "deleted":
                tracker._call(client.restore_experiment, experiment_id)
    except MlflowException as error:
        message = mask_password(str(error).splitlines()[0])[:300]
        raise ImgsweepError(
            f"tracking store '{mask_password(uri)}' cannot be used: {message}; check "
            "tracking.tracking_uri (or start the server)"
        ) from None
    tracker.experiment_id = experiment_id
    return tracker
