"""keras.applications backbones without their top, a new head, and the last N layers trainable."""

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import keras

from pipelines.models.heads import classifier_head
from pipelines.models.preprocessing import build_preprocessing, uses_backbone_preprocessing

BACKBONE_LAYER_NAME = "backbone"


@dataclass(frozen=True)
class Backbone:
    constructor: Callable[..., keras.Model]
    preprocess_input: Callable
    # keras.applications refuses smaller inputs without the top.
    min_size: int = 32


BACKBONES = {
    "vgg16": Backbone(keras.applications.VGG16, keras.applications.vgg16.preprocess_input),
    "mobilenet": Backbone(
        keras.applications.MobileNet, keras.applications.mobilenet.preprocess_input
    ),
    "mobilenet_v2": Backbone(
        keras.applications.MobileNetV2, keras.applications.mobilenet_v2.preprocess_input
    ),
    "resnet50": Backbone(
        keras.applications.ResNet50, keras.applications.resnet50.preprocess_input
    ),
}


def keras_weights(weights: str | None) -> str | None:
    """`imagenet`, a weights file path, or None for `none`/null (random initialisation)."""
    return None if weights in (None, "none") else weights


def build_backbone(
    *, backbone: str, image_size: tuple[int, int], weights: str | None
) -> keras.Model:
    """The named backbone on RGB images of `image_size`, without its classifier top."""
    with warnings.catch_warnings():
        # MobileNets have ImageNet weights for a few sizes and warn that they load the 224 px
        # ones for any other: convolution weights fit any size, so that is what we want.
        warnings.filterwarnings("ignore", message="`input_shape` is undefined or non-square")
        return BACKBONES[backbone].constructor(
            include_top=False,
            weights=keras_weights(weights),
            input_shape=(*image_size, 3),
            name=BACKBONE_LAYER_NAME,
        )


def backbone_layers(backbone: keras.Model) -> list[keras.Layer]:
    """The layers freezing counts, in order: every layer but the input."""
    return [layer for layer in backbone.layers if not isinstance(layer, keras.layers.InputLayer)]


def set_trainable_layers(model: keras.Model, trainable_layers: int | None) -> None:
    """Freeze every backbone layer but the last `trainable_layers` (None: freeze none).

    The head always trains.
    """
    layers = backbone_layers(model.get_layer(BACKBONE_LAYER_NAME))
    first_trainable = 0 if trainable_layers is None else len(layers) - trainable_layers
    for index, layer in enumerate(layers):
        layer.trainable = index >= first_trainable


def build_transfer(
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    preprocessing: str = "auto",
    label_mode: str = "auto",
    backbone: str = "mobilenet_v2",
    weights: str | None = "imagenet",
    trainable_layers: int | None = 10,
    resize_to: tuple[int, int] | None = None,
    pooling: str = "avg",
    dense_units: int = 0,
    dropout_rate: float = 0.2,
) -> keras.Model:
    """A pretrained backbone over raw 0..255 pixels, with a new pooled dense head.

    With `preprocessing` auto or backbone, the backbone's own preprocess_input (what its
    weights were trained with) is part of the model; another name is used as asked.

    Args:
        weights: `imagenet`, `none`, or a Keras weights file of the backbone without its top.
        trainable_layers: how many of the backbone's last layers train; the rest are frozen.
            None trains them all (from scratch, with `weights` none: frozen random layers
            pass on next to nothing).
        resize_to: [height, width] the backbone sees, resized inside the model; None keeps
            the input's size.
    """
    spec = BACKBONES[backbone]
    image_size = tuple(resize_to) if resize_to else tuple(input_shape[:2])
    inputs = keras.Input(shape=input_shape, name="image")
    images = inputs
    if image_size != tuple(input_shape[:2]):
        images = keras.layers.Resizing(*image_size, name="resize")(images)
    if input_shape[-1] == 1:
        images = keras.layers.Concatenate(name="gray_to_rgb")([images, images, images])
    if uses_backbone_preprocessing(preprocessing):
        images = spec.preprocess_input(images)
    else:
        images = build_preprocessing(preprocessing)(images)
    base = build_backbone(backbone=backbone, image_size=image_size, weights=weights)
    # Pretrained batch-norm statistics stay fixed even in the layers that train (keras-io's
    # fine-tuning advice); trained from scratch, they must be learned.
    pretrained = keras_weights(weights) is not None
    features = base(images, training=False if pretrained else None)
    outputs = classifier_head(
        features,
        num_classes=num_classes,
        pooling=pooling,
        dense_units=dense_units,
        dropout_rate=dropout_rate,
        label_mode=label_mode,
    )
    model = keras.Model(inputs, outputs, name=f"transfer_{backbone}")
    set_trainable_layers(model, trainable_layers)
    return model
