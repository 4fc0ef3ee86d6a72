"""A candidate registered as a served model: MLflow's pyfunc in class names, Keras inside.

Each registered version's model carries two flavors: `python_function`, the ImageClassifier
that `mlflow models serve` and `mlflow.pyfunc.load_model` run (images in, class names out),
and `keras`, pointing at the same weights, so `mlflow.keras.load_model("models:/NAME@champion")`
still gives the Keras model. The version's `keras_model` tag names the Keras model it was made
from: promoting that model again finds the version instead of adding another.
"""

import tempfile
import warnings
from importlib.metadata import version as package_version
from pathlib import Path

import mlflow.artifacts
import mlflow.pyfunc
from mlflow.entities import LoggedModelOutput
from mlflow.models import Model

from champion.scoring_model import KERAS_ARTIFACT, model_config
from champion.versions import run_inputs
from pipelines.tracking import Tracker
from pipelines.tracking.keras_logging import package_requirements

KERAS_MODEL_TAG = "keras_model"
# The decision threshold the served model applies ("" for argmax): part of what a version is.
SERVED_THRESHOLD_TAG = "served_threshold"
MODEL_CODE = Path(__file__).with_name("served_model_code.py")


def _add_keras_flavor(model_folder: Path) -> None:
    """The served model's MLmodel also names the Keras weights it holds as a `keras` flavor."""
    keras_folder = model_folder / "artifacts" / KERAS_ARTIFACT
    keras_flavor = Model.load(keras_folder / "MLmodel").flavors["keras"]
    served = Model.load(model_folder / "MLmodel")
    served.flavors["keras"] = {
        **keras_flavor,
        "data": f"artifacts/{KERAS_ARTIFACT}/{keras_flavor.get('data', 'data')}",
    }
    served.save(model_folder / "MLmodel")


def log_served_model(
    tracker: Tracker, *, run_id: str, keras_model_uri: str, threshold: float | None = None
) -> str:
    """The Keras model at `keras_model_uri` as a served model of `run_id`; its models:/ URI.

    `threshold`: the two-class decision threshold its answers' `predicted_class` follows."""
    client = tracker.client
    class_names, settings = run_inputs(client, run_id, owner=keras_model_uri)
    experiment_id = client.get_run(run_id).info.experiment_id
    logged = client.create_logged_model(experiment_id, name="classifier", source_run_id=run_id)
    with tempfile.TemporaryDirectory() as folder:
        model_folder = Path(folder) / "model"
        keras_folder = mlflow.artifacts.download_artifacts(
            keras_model_uri, dst_path=str(Path(folder) / KERAS_ARTIFACT)
        )
        # Saving reads predict's `list[Any]` hint, and MLflow warns (past any filter) that it
        # will not check `Any`: image_requests does.
        with warnings.catch_warnings(record=True):
            mlflow.pyfunc.save_model(
                model_folder,
                python_model=str(MODEL_CODE),
                artifacts={KERAS_ARTIFACT: keras_folder},
                model_config=model_config(class_names, settings, threshold),
                # Given, not inferred: inferring loads the model in a subprocess (~6 s).
                pip_requirements=[*package_requirements(), f"mlflow=={package_version('mlflow')}"],
                mlflow_model=Model(
                    artifact_path=logged.artifact_location,
                    run_id=run_id,
                    model_id=logged.model_id,
                ),
            )
        _add_keras_flavor(model_folder)
        client.log_model_artifacts(logged.model_id, str(model_folder))
    client.finalize_logged_model(logged.model_id, "READY")
    client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
    return f"models:/{logged.model_id}"


def registered_version(
    tracker: Tracker,
    model_name: str,
    keras_model_uri: str,
    run_id: str,
    *,
    threshold: float | None = None,
):
    """The version made from this Keras model and decision threshold, or a new one serving
    them (idempotent)."""
    threshold_text = "" if threshold is None else f"{threshold:.6f}"
    for version in tracker.model_versions(model_name):
        if (
            version.tags.get(KERAS_MODEL_TAG) == keras_model_uri
            and version.tags.get(SERVED_THRESHOLD_TAG, "") == threshold_text
        ):
            return version
    served_uri = log_served_model(
        tracker, run_id=run_id, keras_model_uri=keras_model_uri, threshold=threshold
    )
    version = tracker.create_model_version(
        model_name,
        source=served_uri,
        run_id=run_id,
        model_id=served_uri.removeprefix("models:/"),
    )
    tracker.set_version_tags(
        model_name,
        version.version,
        {KERAS_MODEL_TAG: keras_model_uri, SERVED_THRESHOLD_TAG: threshold_text},
    )
    return version
