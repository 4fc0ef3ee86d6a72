"""Transfer models: weights from ImageNet, a file or nowhere, and the two-phase fine-tune."""

import os
import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving import legacy_h5_format

from pipelines.config import compose_config
from pipelines.errors import ConfigError
from pipelines.models import build_model
from pipelines.models import weights as weights_check
from pipelines.models.transfer import (
    BACKBONE_LAYER_NAME,
    backbone_layers,
    build_backbone,
)
from pipelines.models.weights import check_transfer_setup
from pipelines.plan import plan_from_config
from pipelines.train.callbacks import StoppingCallback
from pipelines.train.fine_tune import fit_full_stage
from pipelines.train.fit import compile_classifier
from pipelines.train.optimizers import build_optimizer
from tests.conftest import small_overrides

VGG16_NOTOP = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
# A proxy on a closed port: any download fails at once, with or without network.
# conf/model/transfer.yaml fitted to the tests' 16×16 images and two-epoch full stage.
TINY_TRANSFER = ["model.resize_to=[32,32]", "model.fine_tune.head_epochs=1"]
NO_NETWORK = {"https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}


@pytest.fixture(autouse=True)
def _fresh_weights_checks():
    weights_check._checked_backbone_layers.cache_clear()
    yield
    weights_check._checked_backbone_layers.cache_clear()


def _transfer(**settings):
    defaults = {"backbone": "vgg16", "weights": "none", "trainable_layers": 4, "resize_to": None}
    return build_model(
        name="transfer",
        input_shape=(32, 32, 3),
        num_classes=2,
        preprocessing="rescale",
        **{**defaults, **settings},
    )


def test_imagenet_without_network_stops_the_sweep_with_one_line(binary_digits, tmp_path):
    overrides = small_overrides(binary_digits, tmp_path / "mlruns")
    env = {**os.environ, **NO_NETWORK, "KERAS_HOME": str(tmp_path / "keras")}
    env.pop("no_proxy", None)
    env.pop("NO_PROXY", None)
    completed = subprocess.run(
        [sys.executable, "-m", "sweep", *overrides, "model=transfer", *TINY_TRANSFER],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert completed.returncode == 2
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith(
        "imgsweep: error: model.weights=imagenet: cannot download mobilenet_v2's ImageNet weights"
    )
    assert "pass model.weights=/path/to/mobilenet_v2_weights_tf_dim_ordering_tf" in lines[0]
    assert completed.stdout.strip() == ""
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()  # stopped before any run


def test_imagenet_weights_in_the_keras_cache_are_used_offline(tmp_path, monkeypatch):
    # A stand-in for the real file in Keras' cache; only its checksum (not ours) is skipped.
    reference = build_backbone(backbone="vgg16", image_size=(32, 32), weights=None)
    (tmp_path / "models").mkdir()
    with h5py.File(tmp_path / "models" / VGG16_NOTOP, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, reference)
    monkeypatch.setattr("keras.src.backend.config._KERAS_DIR", str(tmp_path))
    monkeypatch.setattr("keras.src.utils.file_utils.validate_file", lambda *args, **kw: True)
    for name, value in NO_NETWORK.items():
        monkeypatch.setenv(name, value)

    check_transfer_setup(
        backbone="vgg16", weights="imagenet", trainable_layers=4, image_size=(32, 32)
    )
    model = _transfer(weights="imagenet")
    loaded = model.get_layer(BACKBONE_LAYER_NAME).get_weights()
    for got, expected in zip(loaded, reference.get_weights(), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_a_local_weights_file_is_loaded_and_a_wrong_one_refused(tmp_path):
    reference = build_backbone(backbone="vgg16", image_size=(32, 32), weights=None)
    path = tmp_path / "vgg16_notop.weights.h5"
    reference.save_weights(path)
    check_transfer_setup(
        backbone="vgg16", weights=str(path), trainable_layers=4, image_size=(32, 32)
    )
    loaded = _transfer(weights=str(path)).get_layer(BACKBONE_LAYER_NAME).get_weights()
    np.testing.assert_array_equal(loaded[-2], reference.get_weights()[-2])

    with pytest.raises(ConfigError, match=r"cannot be loaded into mobilenet without its top"):
        check_transfer_setup(
            backbone="mobilenet", weights=str(path), trainable_layers=4, image_size=(32, 32)
        )
    with pytest.raises(ConfigError, match=r"model.weights '.*missing.h5' is not a file"):
        check_transfer_setup(
            backbone="vgg16",
            weights=str(tmp_path / "missing.h5"),
            trainable_layers=4,
            image_size=(32, 32),
        )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.resize_to=null"], r"mobilenet_v2 needs images of at least 32×32, got 28×28"),
        (["model.trainable_layers=19", "model.backbone=vgg16"], r"must be <= 18, the layers of"),
        (["model.backbone=inception"], r"model.backbone 'inception' is unknown"),
        (["model.fine_tune.head_epochs=12"], r"head_epochs must be < stages.full.max_epochs"),
        (
            ["model.pooling=mean"],
            r"model.pooling 'mean' is unknown; choose one of: flatten, avg, max",
        ),
    ],
)
def test_bad_transfer_settings_name_their_key(overrides, message):
    cfg = compose_config(["model=transfer", "model.weights=none", *overrides])
    with pytest.raises(ConfigError, match=message):
        plan_from_config(cfg)


class _PhaseRecorder(keras.callbacks.Callback):
    """Per epoch: trainable backbone layers, learning rate, and the last conv kernel."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        backbone = self.model.get_layer(BACKBONE_LAYER_NAME)
        self.epochs.append(
            {
                "epoch": epoch,
                "trainable": sum(layer.trainable for layer in backbone_layers(backbone)),
                "learning_rate": float(self.model.optimizer.learning_rate),
                "kernel": backbone.get_layer("block5_conv3").kernel.numpy().copy(),
            }
        )


def test_two_phase_fine_tune_switches_trainable_layers_and_learning_rate():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = _transfer(trainable_layers=4)
    images = np.random.default_rng(0).uniform(0, 255, size=(16, 32, 32, 3)).astype("float32")
    labels = (np.arange(16) % 2).astype("float32").reshape(-1, 1)

    def recompile(model):
        optimizer = build_optimizer(name="sgd", learning_rate=0.5)  # the schedule overrides it
        return compile_classifier(model, optimizer=optimizer, num_classes=2)

    def fit(model, *, epochs, callbacks, initial_epoch=0):
        return model.fit(
            images,
            labels,
            batch_size=8,
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=0,
        )

    recorder = _PhaseRecorder()
    epochs_run = fit_full_stage(
        model,
        fit=fit,
        recompile=recompile,
        schedule=lambda epoch: 0.01,
        max_epochs=4,
        callbacks=[recorder],
        stoppers=[StoppingCallback()],
        head_epochs=2,
        lr_divisor=10,
        trainable_layers=4,
    )
    assert epochs_run == 4
    assert [epoch["epoch"] for epoch in recorder.epochs] == [0, 1, 2, 3]
    assert [epoch["trainable"] for epoch in recorder.epochs] == [0, 0, 4, 4]
    assert [epoch["learning_rate"] for epoch in recorder.epochs] == pytest.approx(
        [0.01, 0.01, 0.001, 0.001]
    )
    # Frozen in the head phase, trained after the switch.
    kernels = [epoch["kernel"] for epoch in recorder.epochs]
    np.testing.assert_array_equal(kernels[0], kernels[2])
    final = model.get_layer(BACKBONE_LAYER_NAME).get_layer("block5_conv3").kernel.numpy()
    assert not np.allclose(final, kernels[2])


def test_a_stopped_head_phase_skips_the_fine_tune():
    model = _transfer(trainable_layers=4)
    stopper = StoppingCallback()
    stopper.stop_reason = "pruned by the study"
    calls = []

    def fit(model, *, epochs, callbacks, initial_epoch=0):
        calls.append((initial_epoch, epochs))
        history = keras.callbacks.History()
        history.epoch = [0]
        return history

    epochs_run = fit_full_stage(
        model,
        fit=fit,
        recompile=lambda model: compile_classifier(
            model, optimizer=build_optimizer(name="adam", learning_rate=1e-3), num_classes=2
        ),
        schedule=lambda epoch: 1e-3,
        max_epochs=5,
        callbacks=[],
        stoppers=[stopper],
        head_epochs=2,
        lr_divisor=10,
        trainable_layers=4,
    )
    assert calls == [(0, 2)] and epochs_run == 1
    assert not model.get_layer(BACKBONE_LAYER_NAME).trainable_weights  # still frozen


@pytest.mark.slow
def test_full_stage_fine_tunes_in_two_phases_and_logs_the_summary(binary_digits, tmp_path):
    import mlflow

    from pipelines.single_run import train_once
    from pipelines.tracking.keras_logging import load_keras_model

    mlruns = tmp_path / "mlruns"
    overrides = small_overrides(
        binary_digits,
        mlruns,
        **{
            "model": "transfer",
            "model.backbone": "vgg16",
            "model.weights": "none",
            "model.trainable_layers": 4,
            "model.resize_to": "[32,32]",
            "model.fine_tune.head_epochs": 1,
            "model.fine_tune.lr_divisor": 10,
            "optimizer.learning_rate": 0.001,
            # The reference batch: the configured rate is the one trained at.
            "stages.full.batch_size": 64,
            "stages.overfit.enabled": "false",
            "stages.full.max_epochs": 3,
            "stages.full.early_stopping_patience": 5,
        },
    )
    result = train_once(compose_config(overrides))
    assert result.reason is None, result.reason
    client = mlflow.MlflowClient(f"sqlite:///{mlruns / 'mlflow.db'}")
    run = client.get_run(result.run_id)
    artifacts = {item.path for item in client.list_artifacts(result.run_id)}
    assert "model_summary.txt" in artifacts
    summary = client.download_artifacts(result.run_id, "model_summary.txt", str(tmp_path))
    with open(summary) as text:
        assert "block5_conv3" in text.read()  # the backbone's layers are listed
    model = load_keras_model(result.model_uri)
    assert int(run.data.params["total_params"]) == model.count_params()
    # VGG16's last four layers (block 5) and the output layer are what trains.
    backbone = model.get_layer(BACKBONE_LAYER_NAME)
    block5 = sum(layer.count_params() for layer in backbone.layers if "block5" in layer.name)
    head = model.get_layer("output").count_params()
    assert int(run.data.params["trainable_params"]) == block5 + head
    (full,) = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.run_id}' and tags.stage = 'full'",
    )
    learning_rates = [metric.value for metric in client.get_metric_history(full.info.run_id, "lr")]
    assert learning_rates == pytest.approx([0.001, 0.0001, 0.0001])
