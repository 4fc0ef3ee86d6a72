"""A small CNN: Conv2D–MaxPool blocks (filters doubling), then a dense head.

With `convs_per_block: 2` it is VGG-style (two 3×3 convolutions before each pooling), which
with batch norm and global-average pooling is the stronger family for 28–64 px images.
"""

import keras

from pipelines.models.heads import classifier_head
from pipelines.models.preprocessing import build_preprocessing


def build_small_cnn(
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    preprocessing: str = "auto",
    label_mode: str = "auto",
    conv_blocks: int = 2,
    convs_per_block: int = 1,
    base_filters: int = 32,
    kernel_size: int = 3,
    batch_norm: bool = False,
    pooling: str = "flatten",
    dense_units: int = 128,
    dropout_rate: float = 0.3,
) -> keras.Model:
    """A small convolutional classifier over raw 0..255 pixels.

    Args:
        convs_per_block: 3×3 convolutions before each pooling (2: VGG-style).
        pooling: `flatten` (the notebook's), or global `avg` or `max`: far fewer weights.
        dense_units: width of the hidden dense layer; 0 goes straight to the output.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    features = build_preprocessing(preprocessing)(inputs)
    for block in range(1, conv_blocks + 1):
        for conv in range(1, convs_per_block + 1):
            # The first model's layer names stay as they were (conv1, bn1, relu1).
            suffix = f"{block}" if convs_per_block == 1 else f"{block}_{conv}"
            features = keras.layers.Conv2D(
                base_filters * 2 ** (block - 1),
                kernel_size,
                padding="same",
                # Batch norm's shift makes the convolution's bias redundant.
                use_bias=not batch_norm,
                name=f"conv{suffix}",
            )(features)
            if batch_norm:
                # Keras' default momentum (0.99) lets the moving statistics lag the weights for
                # hundreds of steps: scored in inference mode, the overfit stage's 200 images
                # then stayed near chance (0.58) while training fitted them. 0.9 (PyTorch's
                # default) tracks them: the same setup reaches its target.
                features = keras.layers.BatchNormalization(momentum=0.9, name=f"bn{suffix}")(
                    features
                )
            features = keras.layers.ReLU(name=f"relu{suffix}")(features)
        features = keras.layers.MaxPooling2D(name=f"pool{block}")(features)
    outputs = classifier_head(
        features,
        num_classes=num_classes,
        pooling=pooling,
        dense_units=dense_units,
        dropout_rate=dropout_rate,
        label_mode=label_mode,
    )
    return keras.Model(inputs, outputs, name="small_cnn")
