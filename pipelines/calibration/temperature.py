"""Temperature scaling (Guo et al., 2017): one number T that softens (T > 1) or sharpens a
model's probabilities, fitted on val by minimising the negative log-likelihood.

Dividing the logits by T changes no ranking and no argmax, so AUC and accuracy stay as they
were; only how much each probability promises changes. The logits are recovered from the
probabilities (log p: a softmax's logits up to a constant; for a sigmoid's two columns,
log p1 - log p0 is its logit), so any model's outputs can be fitted.
"""

import keras
import numpy as np
from keras import ops
from scipy.optimize import minimize_scalar

from pipelines.calibration.ece import expected_calibration_error

# log T is searched in [-4, 4]: T from 0.02 to 55, far past any useful value either way.
LOG_TEMPERATURE_BOUNDS = (-4.0, 4.0)
# Probabilities are clipped before the log: float32 softmax rows hold exact zeros. Far below
# any probability that float32 rounds to, so the recovered logits are exact but for those.
EPSILON = 1e-30


def _log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    return np.log(np.clip(probabilities.astype("float64"), EPSILON, 1.0))


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """(n, classes) probabilities with their logits divided by `temperature`."""
    scaled = _log_probabilities(probabilities) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exponentials = np.exp(scaled)
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the val negative log-likelihood of the true classes."""
    log_probabilities = _log_probabilities(probabilities)
    rows = np.arange(len(labels))

    def negative_log_likelihood(log_temperature: float) -> float:
        scaled = log_probabilities / np.exp(log_temperature)
        peak = scaled.max(axis=1, keepdims=True)
        log_normaliser = peak[:, 0] + np.log(np.exp(scaled - peak).sum(axis=1))
        return float(np.mean(log_normaliser - scaled[rows, labels]))

    result = minimize_scalar(
        negative_log_likelihood, bounds=LOG_TEMPERATURE_BOUNDS, method="bounded"
    )
    return float(np.exp(result.x))


@keras.saving.register_keras_serializable(package="imgsweep")
class TemperatureScaling(keras.layers.Layer):
    """Probabilities in, probabilities out with their logits divided by `temperature`.

    For outputs that are not one Dense layer's (an ensemble's averaged probabilities);
    registered, so `keras.models.load_model` rebuilds it once this module is imported.
    """

    def __init__(self, temperature: float, **kwargs):
        super().__init__(**kwargs)
        self.temperature = float(temperature)

    def call(self, probabilities):
        clipped = ops.clip(probabilities, EPSILON, 1.0)
        if probabilities.shape[-1] == 1:
            logits = ops.log(clipped) - ops.log(ops.clip(1.0 - probabilities, EPSILON, 1.0))
            return ops.sigmoid(logits / self.temperature)
        return ops.softmax(ops.log(clipped) / self.temperature, axis=-1)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


def _scaled_output_dense(model: keras.Model, temperature: float) -> keras.Model | None:
    """`model` with its output Dense layer's kernel and bias divided by T; None if it has none.

    Exactly the logits over T, with built-in layers only: the model saves, serves and
    exports with nothing to register.
    """
    output = model.layers[-1]
    activation = getattr(getattr(output, "activation", None), "__name__", "")
    if not isinstance(output, keras.layers.Dense) or activation not in ("sigmoid", "softmax"):
        return None
    scaled = keras.layers.Dense(
        output.units, activation=activation, dtype="float32", name=output.name
    )
    outputs = scaled(output.input)
    kernel, *bias = output.get_weights()
    scaled.set_weights([kernel / temperature, *(value / temperature for value in bias)])
    return keras.Model(model.input, outputs, name=model.name)


def with_temperature(model: keras.Model, temperature: float) -> keras.Model:
    """`model` whose outputs are its probabilities at `temperature`, inside the model."""
    scaled = _scaled_output_dense(model, temperature)
    if scaled is not None:
        return scaled
    outputs = TemperatureScaling(temperature, name="temperature", dtype="float32")(model.output)
    return keras.Model(model.input, outputs, name=model.name)


def calibrate_model(
    model: keras.Model, val_probabilities: np.ndarray, val_labels: np.ndarray
) -> tuple[keras.Model, float, float, float]:
    """(calibrated model, temperature, val ECE before, val ECE after): T fitted on val."""
    temperature = fit_temperature(val_probabilities, val_labels)
    calibrated = apply_temperature(val_probabilities, temperature)
    return (
        with_temperature(model, temperature),
        temperature,
        expected_calibration_error(val_labels, val_probabilities),
        expected_calibration_error(val_labels, calibrated),
    )
