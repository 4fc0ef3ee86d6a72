"""Every model family builds, trains, freezes what it is told to, and survives save/load."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines.models import build_model
from pipelines.models.transfer import BACKBONE_LAYER_NAME, BACKBONES, backbone_layers
from pipelines.tracking.keras_logging import model_summary
from pipelines.train.device import configure_compute
from pipelines.train.fit import compile_classifier
from pipelines.train.optimizers import build_optimizer

# Tiny variants of each family: 32×32 is the keras.applications backbones' minimum.
MODELS = {
    "small_cnn": {"name": "small_cnn"},
    "small_cnn_bn_gap": {
        "name": "small_cnn",
        "batch_norm": True,
        "pooling": "avg",
        "dense_units": 0,
        "conv_blocks": 3,
    },
    # conf/model/vgg_cnn.yaml: two convolutions per block.
    "vgg_cnn": {
        "name": "small_cnn",
        "convs_per_block": 2,
        "batch_norm": True,
        "pooling": "flatten",
        "dense_units": 128,
    },
    "resnet18_imagenet_stem": {
        "name": "resnet",
        "depth": 18,
        "stem": "imagenet",
        "width_multiplier": 0.125,
    },
    "resnet34_small_stem": {
        "name": "resnet",
        "depth": 34,
        "stem": "small",
        "width_multiplier": 0.125,
    },
    **{
        f"transfer_{backbone}": {
            "name": "transfer",
            "backbone": backbone,
            "weights": "none",
            # Random weights: every layer trains (frozen ones would pass on next to nothing).
            "trainable_layers": None,
            "resize_to": None,
            "dense_units": 16,
        }
        for backbone in BACKBONES
    },
}


def _build(key: str, *, channels: int, num_classes: int, size: int = 32, **changes):
    settings = {**MODELS[key], **changes}
    return build_model(
        input_shape=(size, size, channels),
        num_classes=num_classes,
        preprocessing="rescale",
        **settings,
    )


def _images(count: int, channels: int, size: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, size=(count, size, size, channels)).astype("float32")


def _labels(count: int, num_classes: int) -> np.ndarray:
    labels = np.arange(count) % num_classes
    if num_classes == 2:
        return labels.astype("float32").reshape(-1, 1)
    return np.eye(num_classes, dtype="float32")[labels]


def _model_cases():
    for key in MODELS:
        combos = [(1, 2), (3, 5)]
        if key == "small_cnn":
            combos += [(3, 2), (1, 5)]
        for channels, num_classes in combos:
            yield pytest.param(key, channels, num_classes, id=f"{key}-c{channels}-k{num_classes}")


@pytest.mark.parametrize(("key", "channels", "num_classes"), _model_cases())
def test_every_model_builds_and_trains_one_step(key, channels, num_classes):
    keras.backend.clear_session()
    model = _build(key, channels=channels, num_classes=num_classes)
    compile_classifier(
        model,
        optimizer=build_optimizer(name="adam", learning_rate=1e-3),
        num_classes=num_classes,
    )
    # One eager step: a fraction of the time tracing the train function takes for the large
    # backbones. The traced path is trained in the save/reload and stage tests.
    model.run_eagerly = True
    output_kernel = model.get_layer("output").kernel.numpy().copy()
    logs = model.train_on_batch(_images(4, channels), _labels(4, num_classes), return_dict=True)
    assert np.isfinite(logs["loss"])
    assert not np.allclose(model.get_layer("output").kernel.numpy(), output_kernel)
    outputs = np.asarray(model(_images(3, channels, seed=1), training=False))
    assert outputs.shape == (3, 1 if num_classes == 2 else num_classes)
    if num_classes > 2:
        np.testing.assert_allclose(outputs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("backbone", list(BACKBONES))
@pytest.mark.parametrize("trainable_layers", [0, 4, None])
def test_freezing_leaves_exactly_the_last_n_backbone_layers_trainable(backbone, trainable_layers):
    model = _build(
        f"transfer_{backbone}",
        channels=1,
        num_classes=2,
        trainable_layers=trainable_layers,
    )
    layers = backbone_layers(model.get_layer(BACKBONE_LAYER_NAME))
    trainable = [layer for layer in layers if layer.trainable]
    expected = layers if trainable_layers is None else layers[len(layers) - trainable_layers :]
    assert trainable == expected
    # Only the unfrozen backbone layers and the head (dense 16 + output) have weights to train.
    head_weights = {
        id(weight)
        for name in ("dense", "output")
        for weight in model.get_layer(name).trainable_weights
    }
    backbone_weights = {id(weight) for layer in trainable for weight in layer.trainable_weights}
    assert {id(weight) for weight in model.trainable_weights} == head_weights | backbone_weights


def test_vgg16_last_four_layers_are_its_fifth_block_like_the_seeds():
    model = _build("transfer_vgg16", channels=3, num_classes=2, trainable_layers=4)
    layers = backbone_layers(model.get_layer(BACKBONE_LAYER_NAME))
    assert [layer.name for layer in layers if layer.trainable] == [
        "block5_conv1",
        "block5_conv2",
        "block5_conv3",
        "block5_pool",
    ]
    text, counts = model_summary(model)
    rows = {line.split()[2]: line for line in text.splitlines() if "└ block" in line}
    assert rows["block5_conv3"].rstrip(" │").endswith("Y")  # the trainable column
    assert rows["block4_conv3"].rstrip(" │").endswith("N")
    frozen_params = sum(layer.count_params() for layer in layers if not layer.trainable)
    assert counts["non_trainable_params"] == frozen_params
    assert counts["total_params"] == model.count_params()


@pytest.mark.parametrize(
    ("key", "channels", "size", "changes"),
    [
        ("small_cnn_bn_gap", 1, 32, {}),
        ("resnet18_imagenet_stem", 3, 32, {}),
        # Resized inside the model, grayscale to RGB, VGG's BGR mean subtraction.
        ("transfer_vgg16", 1, 28, {"resize_to": [40, 40]}),
        ("transfer_mobilenet", 3, 32, {"trainable_layers": 5}),
    ],
)
def test_saved_and_reloaded_model_predicts_identically(tmp_path, key, channels, size, changes):
    keras.backend.clear_session()
    model = _build(key, channels=channels, num_classes=3, size=size, **changes)
    compile_classifier(
        model, optimizer=build_optimizer(name="sgd", learning_rate=0.01), num_classes=3
    )
    model.run_eagerly = True  # one step needs no traced train function
    # One step moves batch-norm statistics and weights away from their initial values.
    model.train_on_batch(_images(6, channels, size), _labels(6, 3))
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    images = _images(5, channels, size, seed=2)
    np.testing.assert_allclose(
        np.asarray(reloaded(images, training=False)),
        np.asarray(model(images, training=False)),
        rtol=1e-6,
        atol=1e-7,
    )
    assert reloaded.count_params() == model.count_params()
    assert len(reloaded.trainable_weights) == len(model.trainable_weights)


def test_mixed_float16_keeps_the_output_layer_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        for key in ("small_cnn_bn_gap", "resnet18_imagenet_stem", "transfer_vgg16"):
            model = _build(key, channels=1, num_classes=2)
            assert model.get_layer("output").compute_dtype == "float32", key
            assert model.output.dtype == "float32", key
            conv = next(
                layer
                for layer in model.layers
                if isinstance(layer, keras.layers.Conv2D | keras.Model)
            )
            assert conv.compute_dtype == "float16", key
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_mixed_precision_is_left_off_without_a_gpu():
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    note = configure_compute(gpu_memory_growth=True, mixed_precision=True)
    assert note == "compute.mixed_precision: no GPU found, training in float32"
    assert keras.mixed_precision.global_policy().name == "float32"
    assert configure_compute(gpu_memory_growth=True, mixed_precision=False) is None


def test_vgg_style_blocks_hold_two_convolutions_before_each_pooling():
    model = _build("vgg_cnn", channels=1, num_classes=10, size=28)
    convolutions = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convolutions == ["conv1_1", "conv1_2", "conv2_1", "conv2_2"]
    assert model.get_layer("conv2_2").output.shape[1:] == (14, 14, 64)
