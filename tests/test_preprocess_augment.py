"""Preprocessing kinds inside the model, and the augmentation policies."""

import subprocess
import sys

import keras
import numpy as np
import pytest

from pipelines.config import compose_config
from pipelines.errors import ConfigError
from pipelines.models import build_model
from pipelines.models.preprocessing import build_preprocessing
from pipelines.plan import plan_from_config
from pipelines.train.augment import build_augmentation

IMAGES = np.stack(
    [
        np.linspace(10, 60, 4 * 4 * 3).reshape(4, 4, 3),
        np.linspace(100, 250, 4 * 4 * 3).reshape(4, 4, 3),
    ]
).astype("float32")


def _scaled(name):
    inputs = keras.Input(shape=IMAGES.shape[1:])
    return np.asarray(keras.Model(inputs, build_preprocessing(name)(inputs))(IMAGES))


def test_each_image_is_scaled_by_its_own_statistics():
    minmax = _scaled("minmax")
    assert minmax.min(axis=(1, 2, 3)) == pytest.approx([0, 0])
    assert minmax.max(axis=(1, 2, 3)) == pytest.approx([1, 1])
    standardized = _scaled("standardize")
    assert standardized.mean(axis=(1, 2, 3)) == pytest.approx([0, 0], abs=1e-5)
    assert standardized.std(axis=(1, 2, 3)) == pytest.approx([1, 1], abs=1e-3)
    stretched = _scaled("percentile")
    # 48 evenly spaced values: about 5 % on each side are clipped to 0 and to 1.
    assert (stretched == 0).sum(axis=(1, 2, 3)).tolist() == [3, 3]
    assert (stretched == 1).sum(axis=(1, 2, 3)).tolist() == [3, 3]
    assert _scaled("rescale").max() == pytest.approx(250 / 255)


def test_a_saved_model_loads_without_imgsweep(tmp_path):
    model = build_model(
        name="small_cnn", input_shape=(16, 16, 1), num_classes=2, preprocessing="percentile"
    )
    model.save(tmp_path / "model.keras")
    images = np.random.default_rng(0).uniform(0, 255, (3, 16, 16, 1)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "expected.npy", np.asarray(model(images)))
    script = (
        "import keras, numpy as np; "
        f"m = keras.models.load_model(r'{tmp_path / 'model.keras'}'); "
        f"out = np.asarray(m(np.load(r'{tmp_path / 'images.npy'}'))); "
        f"assert np.allclose(out, np.load(r'{tmp_path / 'expected.npy'}'), atol=1e-5)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert completed.returncode == 0, completed.stderr[-2000:]


def test_backbone_preprocessing_needs_a_transfer_model():
    with pytest.raises(ValueError, match="'backbone' needs a transfer model"):
        build_model(
            name="small_cnn", input_shape=(16, 16, 1), num_classes=2, preprocessing="backbone"
        )


def test_categorical_label_mode_gives_two_classes_a_softmax_pair():
    model = build_model(
        name="small_cnn",
        input_shape=(16, 16, 1),
        num_classes=2,
        preprocessing="auto",
        label_mode="categorical",
    )
    assert model.output_shape == (None, 2)


@pytest.mark.parametrize("policy", ["none", "flip", "light", "medium", "heavy"])
def test_policies_compose_and_change_images_but_not_their_shape(policy):
    cfg = compose_config([f"augment={policy}"])
    settings = plan_from_config(cfg).augment_settings
    augmentation = build_augmentation(**settings, seed=0)
    if policy == "none":
        assert augmentation is None
        return
    images = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    augmented = np.asarray(augmentation(images, training=True))
    assert augmented.shape == images.shape
    assert not np.allclose(augmented, images)


# Every key of conf/augment/ a user can set or search (each policy sets them all).
AUGMENT_KEYS = [key for key in compose_config(["augment=none"]).augment if key != "name"]


@pytest.mark.parametrize("key", AUGMENT_KEYS)
def test_every_augmentation_key_alone_changes_training_images(key):
    value = "true" if key.endswith("flip") else "0.3"
    settings = plan_from_config(compose_config([f"augment.{key}={value}"])).augment_settings
    augmentation = build_augmentation(**settings, seed=0)
    images = np.random.default_rng(0).uniform(0, 255, (8, 16, 16, 3)).astype("float32")
    augmented = np.asarray(augmentation(images, training=True))
    assert augmented.shape == images.shape
    assert not np.allclose(augmented, images)


def test_an_augmentation_strength_out_of_range_names_its_key():
    with pytest.raises(ConfigError, match="augment.shear must be <= 1.0, got 3"):
        plan_from_config(compose_config(["augment=heavy", "augment.shear=3"]))
