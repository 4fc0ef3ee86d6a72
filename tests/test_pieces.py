"""Schedules, checkpointing, the NaN guard, TensorFlow's console lines and the Fashion-MNIST
preparation, on files the test makes."""

import gzip
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from pipelines.data.prepare import prepare_fashion, read_idx
from pipelines.errors import DataError
from pipelines.train.callbacks import BestModelCheckpoint, FiniteLossGuard
from pipelines.train.schedules import build_lr_schedule


def test_step_schedule_halves_every_epoch_like_the_usual_notebook():
    schedule = build_lr_schedule(name="step", initial_learning_rate=0.1, max_epochs=5, factor=0.5)
    assert [schedule(epoch) for epoch in range(4)] == pytest.approx([0.1, 0.05, 0.025, 0.0125])


def test_step_every_two_epochs_and_exponential_and_cosine():
    step = build_lr_schedule(
        name="step", initial_learning_rate=1.0, max_epochs=6, factor=0.1, every_epochs=2
    )
    assert [step(epoch) for epoch in range(4)] == pytest.approx([1, 1, 0.1, 0.1])
    exponential = build_lr_schedule(
        name="exponential", initial_learning_rate=1.0, max_epochs=3, decay_rate=0.5
    )
    assert exponential(3) == pytest.approx(0.125)
    cosine = build_lr_schedule(name="cosine", initial_learning_rate=1.0, max_epochs=5)
    assert cosine(0) == pytest.approx(1.0) and cosine(4) == pytest.approx(0.0)
    assert cosine(2) == pytest.approx(0.5)


def test_best_checkpoint_keeps_the_best_epoch_and_restores_it(tmp_path):
    inputs = keras.Input(shape=(2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    checkpoint = BestModelCheckpoint(tmp_path / "best.keras", monitor="val_auc")
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"val_auc": 0.7})
    best_weights = [weight.copy() for weight in model.get_weights()]
    model.set_weights([weight + 1 for weight in best_weights])
    checkpoint.on_epoch_end(1, {"val_auc": 0.6})
    checkpoint.on_epoch_end(2, {"val_auc": float("nan")})
    checkpoint.on_train_end()
    assert checkpoint.best_epoch == 0
    for restored, best in zip(model.get_weights(), best_weights, strict=True):
        np.testing.assert_array_equal(restored, best)
    saved = keras.models.load_model(tmp_path / "best.keras")
    np.testing.assert_array_equal(saved.get_weights()[0], best_weights[0])
    assert [path.name for path in tmp_path.iterdir()] == ["best.keras"]  # no partial file left


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        size.to_bytes(4, "big") for size in array.shape
    )
    with gzip.open(path, "wb") as stream:
        stream.write(header + array.astype(np.uint8).tobytes())


def test_prepare_writes_class_folders_and_is_idempotent(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    rng = np.random.default_rng(0)
    train_labels = np.repeat([0, 6, 3], 20)
    test_labels = np.repeat([0, 6, 3], 5)
    _write_idx(source / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (60, 28, 28)))
    _write_idx(source / "train-labels-idx1-ubyte.gz", train_labels)
    _write_idx(source / "t10k-images-idx3-ubyte.gz", rng.integers(0, 255, (15, 28, 28)))
    _write_idx(source / "t10k-labels-idx1-ubyte.gz", test_labels)
    assert read_idx(source / "train-images-idx3-ubyte.gz").shape == (60, 28, 28)

    output = tmp_path / "pair"
    classes = {0: "tshirt_top", 6: "shirt"}
    counts = prepare_fashion(
        source=source, output=output, classes=classes, val_per_class=4, seed=0
    )
    assert counts == {"train": 32, "val": 8, "test": 10}
    for split, per_class in (("train", 16), ("val", 4), ("test", 5)):
        for name in classes.values():
            assert len(list((output / split / name).glob("*.png"))) == per_class
    train_files = {path.name for path in (output / "train" / "shirt").iterdir()}
    val_files = {path.name for path in (output / "val" / "shirt").iterdir()}
    assert not train_files & val_files

    before = {path: path.stat().st_mtime_ns for path in output.rglob("*.png")}
    prepare_fashion(source=source, output=output, classes=classes, val_per_class=4, seed=0)
    assert {path: path.stat().st_mtime_ns for path in output.rglob("*.png")} == before


def test_prepare_names_the_missing_file(tmp_path):
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz' is missing"):
        prepare_fashion(
            source=tmp_path,
            output=tmp_path / "out",
            classes={0: "a", 6: "b"},
            val_per_class=1,
            seed=0,
        )


def test_a_nan_loss_stops_training_at_once_with_its_epoch_as_the_reason(capfd):
    inputs = keras.Input(shape=(2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    features = np.ones((8, 2), dtype="float32")
    features[6:] = np.nan  # the last batch of every epoch
    guard = FiniteLossGuard()
    history = model.fit(
        features, np.ones(8), batch_size=2, epochs=5, shuffle=False, callbacks=[guard], verbose=0
    )
    assert guard.stop_reason == "nan loss at epoch 1"
    assert len(history.epoch) == 1
    assert "Invalid loss" not in capfd.readouterr().out  # the trial's line says it instead


# TensorFlow's C++ code logs a warning line for a failed op: one written mid-run, after the
# import, as oneDNN's `E0000 ... supports DT_BOOL only on platforms with AVX-512` is.
FAILED_OP_AFTER_IMPORT = """
from pipelines.console import import_tensorflow_quietly
import_tensorflow_quietly(verbose={verbose})
import tensorflow as tf
try:
    tf.function(lambda: tf.io.read_file("/no/such/file"))()
except tf.errors.NotFoundError:
    print("raised as usual")
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_tensorflow_log_lines_reach_the_console_only_when_verbose(verbose):
    environment = {
        key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"
    }
    completed = subprocess.run(
        [sys.executable, "-c", FAILED_OP_AFTER_IMPORT.format(verbose=verbose)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert completed.stdout == "raised as usual\n"
    assert ("NOT_FOUND" in completed.stderr) == verbose
    if not verbose:
        assert completed.stderr == ""


# The per-epoch rates each schedule gave before it was built on Keras' schedules, written
# out as formulas: the learning-rate curve a user sees in training_curves.png must not move.
def _formula_rate(
    name, epoch, rate, *, factor, every_epochs, decay_rate, min_fraction, max_epochs
):
    if name == "step":
        return rate * factor ** (epoch // every_epochs)
    if name == "exponential":
        return rate * decay_rate**epoch
    if name == "cosine":
        progress = min(epoch / max(max_epochs - 1, 1), 1.0)
        floor = rate * min_fraction
        return floor + (rate - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    return rate


# factor, every_epochs, decay_rate, min_fraction, max_epochs
SCHEDULE_SETTINGS = [(0.5, 1, 0.9, 0.0, 1), (0.3, 3, 0.7, 0.1, 8), (0.9, 2, 0.98, 0.5, 30)]


@pytest.mark.parametrize("name", ["constant", "step", "exponential", "cosine"])
@pytest.mark.parametrize("values", SCHEDULE_SETTINGS)
def test_every_schedule_gives_the_same_per_epoch_rates_as_its_formula(name, values):
    keys = ("factor", "every_epochs", "decay_rate", "min_fraction", "max_epochs")
    settings = dict(zip(keys, values, strict=True))
    schedule = build_lr_schedule(name=name, initial_learning_rate=0.003, **settings)
    epochs = range(settings["max_epochs"] + 3)  # past the last epoch too: the cosine floor
    expected = [_formula_rate(name, epoch, 0.003, **settings) for epoch in epochs]
    rates = [schedule(epoch) for epoch in epochs]
    assert all(type(rate) is float for rate in rates)  # what LearningRateScheduler accepts
    assert rates == pytest.approx(expected, rel=1e-6)
