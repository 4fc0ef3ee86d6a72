"""The registered model as MLflow's scoring server and `mlflow.pyfunc` run it: in class names.

Images in (base64 PNG/JPEG files or pixel arrays of any size, champion/image_requests.py),
per image `predicted_class` and `p_<class>` out: the numbers `make predict` writes, read and
predicted by the same functions (pipelines/inference.py).
"""

import warnings
from typing import Any

import mlflow.keras
import mlflow.pyfunc

from champion.image_requests import read_request
from pipelines.evaluate import predict_probabilities
from pipelines.inference import ReadSettings, labelled

# The Keras model's folder inside the served model (an MLflow Keras model of its own).
KERAS_ARTIFACT = "keras_model"


def model_config(
    class_names: list[str], settings: ReadSettings, threshold: float | None = None
) -> dict[str, Any]:
    """What the served model keeps beside its weights: classes, how training read images, and
    the decision threshold (None: the most probable class)."""
    return {
        "decision_threshold": threshold,
        "class_names": list(class_names),
        "image_size": list(settings.image_size),
        "color_mode": settings.color_mode,
        "crop": list(settings.crop) if settings.crop else None,
    }


# `list[Any]`: MLflow hands the request's "inputs" over as sent, and image_requests checks
# each item itself (one line per mistake). MLflow warns, at class creation and from a warnings
# context of its own that no filter reaches, that it will not: that warning is kept here.
with warnings.catch_warnings(record=True):

    class ImageClassifier(mlflow.pyfunc.PythonModel):
        """A Keras image classifier answering in class names."""

        def load_context(self, context) -> None:
            config = context.model_config
            self.model = mlflow.keras.load_model(context.artifacts[KERAS_ARTIFACT])
            self.class_names = list(config["class_names"])
            self.settings = ReadSettings(
                image_size=tuple(config["image_size"]),
                color_mode=config["color_mode"],
                crop=tuple(config["crop"]) if config.get("crop") else None,
            )
            self.threshold = config.get("decision_threshold")

        def predict(self, context, model_input: list[Any], params=None) -> list[dict[str, Any]]:
            """A list of {"image": base64} / {"pixels": [[...]]} → a list of class-name answers."""
            images = read_request(model_input, self.settings)
            probabilities = predict_probabilities(self.model, images.astype("float32"))
            return labelled(probabilities, self.class_names, self.threshold)
