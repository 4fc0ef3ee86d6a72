"""Grad-CAM (Selvaraju et al., 2017; the keras-io recipe): where a model looked for a class.

The gradients of the class score with respect to the last convolution's feature maps,
averaged over each map, weight those maps; their positive sum, scaled to 0..1 and resized to
the image, is the heat map. The class score is the logit when the model ends in a Dense
sigmoid/softmax layer (a saturated probability has no gradient left), else the probability.

The feature maps are those of the last 4-D layer at or after the last convolution (its
activation, or a residual block's output), so a ResNet's skip path counts; for a transfer
model that is the nested backbone's output. An ensemble's map is the weighted average of its
members' maps, each for the class the ensemble predicts.
"""

import keras
import numpy as np
import tensorflow as tf
from matplotlib import colormaps

from pipelines.errors import ImgsweepError

CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D)
# Pooling and dropout keep the maps but not their resolution or meaning: not a target.
PASS_THROUGH = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D, keras.layers.Dropout)
BATCH_SIZE = 64
OVERLAY_ALPHA = 0.45


def _holds_convolution(layer) -> bool:
    if isinstance(layer, CONVOLUTIONS):
        return True
    return isinstance(layer, keras.Model) and any(
        _holds_convolution(inner) for inner in layer.layers
    )


def _outer_output(layer):
    # A nested model's `.output` is its own graph's tensor; the one in the model that calls
    # it is on the node that call made.
    return layer._inbound_nodes[0].output_tensors[0]


def ensemble_members(model: keras.Model) -> list[tuple[keras.Model, float]]:
    """(member, weight) of an ensemble (pipelines.ensemble): nested classifiers; [] if none."""
    members = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.Model) and len(_outer_output(layer).shape) == 2
    ]
    by_name = {layer.name: layer for layer in model.layers}
    return [
        (member, float(getattr(by_name.get(f"{member.name}_weight"), "scale", 1.0)))
        for member in members
    ]


def feature_layer(model: keras.Model):
    """The layer whose feature maps Grad-CAM weighs; ImgsweepError if there is no convolution."""
    target, seen_convolution = None, False
    for layer in model.layers:
        seen_convolution = seen_convolution or _holds_convolution(layer)
        if (
            seen_convolution
            and not isinstance(layer, PASS_THROUGH)
            and len(_outer_output(layer).shape) == 4
        ):
            target = layer
    if target is None:
        raise ImgsweepError(
            f"model '{model.name}' has no convolution, so Grad-CAM has no feature maps to "
            "explain it with; predict without EXPLAIN=1"
        )
    return target


def check_explainable(model: keras.Model) -> None:
    """Raise ImgsweepError (one line) unless Grad-CAM can explain `model`."""
    for member, _ in ensemble_members(model) or [(model, 1.0)]:
        feature_layer(member)


def _class_scores(model: keras.Model):
    """A model from images to (feature maps, class scores) and whether the scores are logits."""
    output = model.layers[-1]
    activation = getattr(getattr(output, "activation", None), "__name__", "")
    logits = isinstance(output, keras.layers.Dense) and activation in ("sigmoid", "softmax")
    head = output.input if logits else model.output
    grad_model = keras.Model(model.input, [_outer_output(feature_layer(model)), head])
    return grad_model, (output if logits else None)


def _chosen_scores(scores, wanted, *, logits: bool):
    """Each image's score for its class; one sigmoid unit scores the first class by negation."""
    if scores.shape[-1] == 1:
        positive = scores[:, 0]
        return tf.where(wanted == 1, positive, -positive if logits else 1 - positive)
    return tf.gather(scores, wanted, axis=1, batch_dims=1)


def _single_model_maps(model: keras.Model, images: np.ndarray, classes: np.ndarray):
    grad_model, dense = _class_scores(model)
    maps = []
    for start in range(0, len(images), BATCH_SIZE):
        batch = tf.convert_to_tensor(images[start : start + BATCH_SIZE], dtype="float32")
        wanted = classes[start : start + BATCH_SIZE]
        with tf.GradientTape() as tape:
            feature_maps, head = grad_model(batch, training=False)
            scores = head if dense is None else tf.matmul(head, dense.kernel) + dense.bias
            chosen = _chosen_scores(scores, wanted, logits=dense is not None)
        gradients = tape.gradient(chosen, feature_maps)
        weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
        maps.append(tf.nn.relu(tf.reduce_sum(feature_maps * weights, axis=-1)).numpy())
    return np.concatenate(maps)


def _normalise(maps: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    resized = tf.image.resize(maps[..., None], image_size, method="bilinear").numpy()[..., 0]
    peaks = resized.reshape(len(resized), -1).max(axis=1).reshape(-1, 1, 1)
    return np.divide(resized, peaks, out=np.zeros_like(resized), where=peaks > 0)


def gradcam_maps(model: keras.Model, images: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(n, height, width) heat maps in 0..1 of where `model` looked for each image's class."""
    classes = np.asarray(classes, dtype="int32")
    image_size = tuple(images.shape[1:3])
    members = ensemble_members(model) or [(model, 1.0)]
    total = sum(weight for _, weight in members)
    combined = np.zeros((len(images), *image_size), dtype="float32")
    for member, weight in members:
        combined += (
            weight / total * _normalise(_single_model_maps(member, images, classes), image_size)
        )
    return combined


def overlay(
    image: np.ndarray, heat_map: np.ndarray, *, alpha: float = OVERLAY_ALPHA
) -> np.ndarray:
    """An RGB uint8 image: the (grey or colour) image with the heat map blended over it (jet)."""
    pixels = np.clip(image, 0, 255).astype("float32")
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    colored = colormaps["jet"](heat_map)[..., :3] * 255
    return np.clip((1 - alpha) * pixels[..., :3] + alpha * colored, 0, 255).astype("uint8")
