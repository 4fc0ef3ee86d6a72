"""Grad-CAM: where a model looked, for every model family, in reports and in predict."""

import csv

import keras
import numpy as np
import pytest
from PIL import Image

from champion.predict import main as predict_main
from pipelines.ensemble import build_ensemble_model
from pipelines.errors import ImgsweepError
from pipelines.evaluate import class_probabilities
from pipelines.models import build_model
from pipelines.plan import load_data
from pipelines.reports.gradcam import check_explainable, feature_layer, gradcam_maps
from tests.registered import register_champion, untrained_model

SIDE, SQUARE = 24, 5


def _square_task(count: int, seed: int):
    """Noise images; class 1 holds a bright square somewhere, class 0 none: (images, labels,
    each image's square mask)."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 90, (count, SIDE, SIDE, 1)).astype("float32")
    labels = rng.integers(0, 2, count)
    masks = np.zeros((count, SIDE, SIDE), dtype=bool)
    for index in np.flatnonzero(labels):
        top, left = rng.integers(0, SIDE - SQUARE, 2)
        images[index, top : top + SQUARE, left : left + SQUARE] = 250
        masks[index, top : top + SQUARE, left : left + SQUARE] = True
    return images, labels, masks


def test_the_heat_map_is_highest_over_the_pixels_that_decide_the_class():
    keras.utils.set_random_seed(0)
    model = build_model(
        name="small_cnn", input_shape=(SIDE, SIDE, 1), num_classes=2, preprocessing="auto",
        conv_blocks=2, base_filters=8, pooling="avg", dense_units=0, dropout_rate=0.0,
    )  # fmt: skip
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    images, labels, _ = _square_task(600, seed=0)
    model.fit(images, labels, epochs=12, batch_size=32, verbose=0)

    images, labels, masks = _square_task(80, seed=1)
    predicted = class_probabilities(np.asarray(model.predict(images, verbose=0))).argmax(axis=1)
    found = np.flatnonzero((labels == 1) & (predicted == 1))
    assert len(found) >= 30  # the task is learned
    maps = gradcam_maps(model, images[found], predicted[found])
    # The peak sits on the square (or within a pixel of it: the maps are 12x12, resized).
    grown = np.zeros_like(masks[found])
    for shift_rows in (-1, 0, 1):
        for shift_columns in (-1, 0, 1):
            grown |= np.roll(masks[found], (shift_rows, shift_columns), axis=(1, 2))
    peaks = maps.reshape(len(found), -1).argmax(axis=1)
    on_square = grown.reshape(len(found), -1)[np.arange(len(found)), peaks]
    assert on_square.mean() >= 0.9
    inside = (maps * masks[found]).sum() / masks[found].sum()
    outside = (maps * ~masks[found]).sum() / (~masks[found]).sum()
    assert inside > 3 * outside


FAMILIES = {
    "small_cnn": ({"name": "small_cnn"}, "relu2"),
    "vgg_cnn": ({"name": "small_cnn", "convs_per_block": 2, "batch_norm": True}, "relu2_2"),
    "resnet": ({"name": "resnet"}, "stage4_block2_out"),
    "transfer": ({"name": "transfer", "weights": "none", "backbone": "mobilenet_v2"}, "backbone"),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_gets_a_map_from_its_last_convolution(family):
    settings, layer_name = FAMILIES[family]
    model = build_model(input_shape=(32, 32, 1), num_classes=3, preprocessing="auto", **settings)
    assert feature_layer(model).name == layer_name
    images = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 1)).astype("float32")
    maps = gradcam_maps(model, images, np.array([0, 1, 2]))
    assert maps.shape == (3, 32, 32)
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1


def test_an_ensemble_map_is_its_members_maps_weighted():
    members = [
        build_model(
            name="small_cnn",
            input_shape=(16, 16, 1),
            num_classes=2,
            preprocessing="auto",
            base_filters=4 * (index + 1),
        )  # fmt: skip
        for index in range(2)
    ]
    ensemble = build_ensemble_model(
        members, [0.75, 0.25], input_shape=(16, 16, 1), member_names=["trial_0", "trial_1"]
    )
    images = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 1)).astype("float32")
    classes = np.array([0, 1, 1, 0])
    expected = 0.75 * gradcam_maps(members[0], images, classes) + 0.25 * gradcam_maps(
        members[1], images, classes
    )
    np.testing.assert_allclose(gradcam_maps(ensemble, images, classes), expected, atol=1e-5)


def test_a_model_without_a_convolution_is_one_line():
    inputs = keras.Input((8, 8, 1))
    dense = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))
    with pytest.raises(ImgsweepError, match="has no convolution, so Grad-CAM") as raised:
        check_explainable(keras.Model(inputs, dense, name="flat"))
    assert "\n" not in str(raised.value)


def test_predict_explain_writes_an_overlay_beside_each_row(binary_digits, tmp_path, make_config):
    cfg, overrides = make_config(binary_digits, tmp_path / "mlruns")
    data = load_data(cfg)
    register_champion(cfg, untrained_model(cfg, data), data, {"decision_rule": "argmax"})
    output = tmp_path / "out" / "predictions.csv"
    folder = binary_digits / "test"
    assert predict_main([str(folder), "--output", str(output), "--explain", *overrides]) == 0
    with open(output, newline="") as stream:
        rows = list(csv.DictReader(stream))
    overlays = sorted((tmp_path / "out" / "predictions_gradcam").rglob("*.png"))
    assert len(overlays) == len(rows) == 60
    first = Image.open(overlays[0])
    assert first.mode == "RGB" and min(first.size) >= 224  # drawn large enough to look at


def test_predict_explain_on_a_model_without_convolutions_is_one_line(
    binary_digits, tmp_path, make_config, capsys
):
    cfg, overrides = make_config(binary_digits, tmp_path / "mlruns")
    data = load_data(cfg)
    inputs = keras.Input(data.input_shape)
    flat = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(inputs))
    register_champion(cfg, keras.Model(inputs, flat, name="flat"), data, {})
    output = tmp_path / "predictions.csv"
    code = predict_main([str(binary_digits / "test"), "--output", str(output), "--explain",
                         *overrides])  # fmt: skip
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert (
        error.startswith("imgsweep: error: model 'flat' has no convolution") and "\n" not in error
    )
    assert not output.exists()  # stopped before predicting anything
