"""ResNet-18/34 from basic blocks (He et al. 2015, Table 1), narrowed by a width multiplier."""

import keras

from pipelines.models.heads import classifier_head
from pipelines.models.preprocessing import build_preprocessing

# Basic blocks per stage; stage s has 64·2^s filters (times the width multiplier).
RESNET_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
# imagenet: the paper's 7×7/2 convolution and 3×3/2 max-pool (÷4 before the first stage);
# small: one 3×3/1 convolution, for 28–64 px images where ÷4 would throw detail away.
RESNET_STEMS = ("imagenet", "small")


def _conv_bn(features, filters: int, kernel_size: int, strides: int, name: str):
    features = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        name=f"{name}_conv",
    )(features)
    return keras.layers.BatchNormalization(name=f"{name}_bn")(features)


def _basic_block(features, filters: int, strides: int, name: str):
    """Two 3×3 convolutions plus the identity, or a 1×1 projection when the shape changes."""
    shortcut = features
    if strides != 1 or features.shape[-1] != filters:
        shortcut = _conv_bn(features, filters, 1, strides, f"{name}_shortcut")
    residual = _conv_bn(features, filters, 3, strides, f"{name}_a")
    residual = keras.layers.ReLU(name=f"{name}_a_relu")(residual)
    residual = _conv_bn(residual, filters, 3, 1, f"{name}_b")
    features = keras.layers.Add(name=f"{name}_add")([shortcut, residual])
    return keras.layers.ReLU(name=f"{name}_out")(features)


def build_resnet(
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    preprocessing: str = "auto",
    label_mode: str = "auto",
    depth: int = 18,
    stem: str = "small",
    width_multiplier: float = 0.25,
    dropout_rate: float = 0.0,
) -> keras.Model:
    """ResNet-`depth` over raw 0..255 pixels: stem, four stages, global average pool, output.

    Args:
        width_multiplier: scales every layer's filters (1.0 is the paper's 64…512).
    """
    if depth not in RESNET_BLOCKS:
        raise ValueError(f"model.depth {depth!r} is unknown; choose one of {list(RESNET_BLOCKS)}")
    base_filters = max(1, round(64 * width_multiplier))
    inputs = keras.Input(shape=input_shape, name="image")
    features = build_preprocessing(preprocessing)(inputs)
    if stem == "imagenet":
        features = _conv_bn(features, base_filters, 7, 2, "stem")
        features = keras.layers.ReLU(name="stem_relu")(features)
        features = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(
            features
        )
    elif stem == "small":
        features = _conv_bn(features, base_filters, 3, 1, "stem")
        features = keras.layers.ReLU(name="stem_relu")(features)
    else:
        raise ValueError(f"model.stem {stem!r} is unknown; choose one of {RESNET_STEMS}")
    for stage, blocks in enumerate(RESNET_BLOCKS[depth]):
        for block in range(blocks):
            features = _basic_block(
                features,
                base_filters * 2**stage,
                strides=2 if stage > 0 and block == 0 else 1,
                name=f"stage{stage + 1}_block{block + 1}",
            )
    outputs = classifier_head(
        features,
        num_classes=num_classes,
        pooling="avg",
        dense_units=0,
        dropout_rate=dropout_rate,
        label_mode=label_mode,
    )
    return keras.Model(inputs, outputs, name=f"resnet{depth}")
