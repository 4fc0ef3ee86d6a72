"""`make export`: every format loads and agrees with Keras; a failing one is a line, not a file."""

import shlex
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from mlflow import MlflowClient

from champion.export.__main__ import main as export_main
from champion.export.formats import FORMATS, keras_runner
from champion.export.parity import TOLERANCE, batched_probabilities, check_export
from pipelines.data.datasets import build_batches
from pipelines.ensemble import build_ensemble_model
from pipelines.models import build_model
from pipelines.plan import load_data, plan_from_config
from pipelines.urls import sqlite_uri

REPO = Path(__file__).resolve().parents[1]


def _images(data, split: str) -> np.ndarray:
    batches = build_batches(data, data.splits[split], batch_size=256)
    return np.concatenate([np.asarray(images) for images, _ in batches])


@pytest.fixture(scope="module")
def trained(binary_digits, tmp_path_factory):
    """Two tiny CNNs trained a few epochs on digits (one with batch norm), and test images."""
    from pipelines.config import compose_config
    from tests.conftest import small_overrides

    cfg = compose_config(small_overrides(binary_digits, tmp_path_factory.mktemp("mlruns")))
    plan, data = plan_from_config(cfg), load_data(cfg)
    keras.utils.set_random_seed(0)
    members = []
    for settings in ({"base_filters": 8}, {"base_filters": 4, "batch_norm": True}):
        model = build_model(
            name=plan.model_name,
            input_shape=data.input_shape,
            num_classes=data.num_classes,
            preprocessing=plan.preprocessing,
            **{**plan.model_settings, "dense_units": 16, **settings},
        )
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
        train = build_batches(data, data.splits["train"], batch_size=32, shuffle_seed=0)
        model.fit(train, epochs=5, shuffle=False, verbose=0)  # shuffled by the dataset
        members.append(model)
    return members, _images(data, "test"), data.input_shape


def _assert_agrees(model, export_format, images, folder):
    """The export passes the check, and its artifact, loaded afresh, predicts as Keras does."""
    check = check_export(model, export_format, images=images, folder=folder)
    assert check.usable, check.reason
    assert check.max_abs_diff <= TOLERANCE and check.agreement == 1.0
    assert sorted(path.name for path in folder.iterdir()) == [export_format.artifact]
    expected = batched_probabilities(keras_runner(model), images)
    loaded = batched_probabilities(export_format.load(folder / export_format.artifact), images)
    np.testing.assert_allclose(loaded, expected, atol=TOLERANCE)
    # The model learned something: a constant model would agree with any export.
    assert expected[:, 1].std() > 0.05


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_loads_and_agrees_with_keras_on_a_trained_model(trained, name, tmp_path):
    members, images, _ = trained
    _assert_agrees(members[0], FORMATS[name], images, tmp_path)


@pytest.mark.parametrize("name", FORMATS)
def test_a_two_member_ensemble_exports_as_one_graph(trained, name, tmp_path):
    members, images, input_shape = trained
    ensemble = build_ensemble_model(
        members, [0.75, 0.25], input_shape=input_shape, member_names=["first", "second"]
    )
    _assert_agrees(ensemble, FORMATS[name], images, tmp_path)
    if name == "onnx":
        import onnx

        graph = onnx.load(tmp_path / "model.onnx").graph
        assert [each.name for each in graph.input] == ["image"] and len(graph.output) == 1


@pytest.mark.parametrize("name", FORMATS)
def test_augmentation_layers_inside_a_model_are_inactive_in_every_export(trained, name, tmp_path):
    """Keras' random layers default to training=True: exported as Keras does it, SavedModel
    kept flipping and rotating and ONNX held random ops onnxruntime cannot load."""
    members, images, input_shape = trained
    inputs = keras.Input(shape=input_shape, name="image")
    augmented = keras.layers.RandomRotation(0.2)(keras.layers.RandomFlip("horizontal")(inputs))
    model = keras.Model(inputs, members[0](augmented))
    _assert_agrees(model, FORMATS[name], images, tmp_path)


def test_a_failing_export_is_a_line_and_leaves_no_artifact(trained, tmp_path):
    """Percentile preprocessing sorts pixels: LiteRT keeps that as a TensorFlow (Flex) op,
    which ai_edge_litert's interpreter cannot run."""
    _, images, input_shape = trained
    model = build_model(
        name="small_cnn", input_shape=input_shape, num_classes=2, preprocessing="percentile"
    )
    failed = check_export(model, FORMATS["litert"], images=images, folder=tmp_path)
    assert not failed.usable and failed.path is None
    assert "\n" not in failed.reason
    assert failed.reason.startswith("run failed: RuntimeError: Select TensorFlow op(s)")
    assert list(tmp_path.iterdir()) == []


def test_bad_values_are_one_line(tmp_path, capsys):
    assert export_main([f"tracking.mlruns_dir={tmp_path / 'mlruns'}"]) == 2
    assert export_main(["--formats", "onnx,pdf"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors[0].startswith("imgsweep: error: no MLflow store at")
    assert errors[1] == (
        "imgsweep: error: --formats 'onnx,pdf': unknown pdf; choose from saved_model,onnx,litert"
    )


@pytest.mark.slow
def test_make_export_logs_the_usable_artifacts_and_the_figures(finished_study, capsys):
    """`make export` on the promoted model of a tiny study: artifacts on its run, tags on it."""
    arguments = shlex.join([*finished_study.overrides, "--latency-calls", "20"])
    command = ["make", "--no-print-directory", "-o", ".venv/.installed", "export"]
    command += [f"PY={sys.executable}", f"ARGS={arguments}"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "3 of 3 formats logged under export/" in done.stdout
    uri = sqlite_uri(finished_study.mlruns)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version_by_alias("test_classifier", "champion")
    tags = version.tags
    assert tags["export_split"] == "test" and tags["export_images"] == "60"
    for name in (*FORMATS, "keras"):
        assert float(tags[f"export_{name}_p99_ms"]) >= float(tags[f"export_{name}_p50_ms"]) > 0
        assert float(tags[f"export_{name}_batch_img_per_s"]) > 0
    logged = {item.path for item in client.list_artifacts(version.run_id, "export")}
    for export_format in FORMATS.values():
        prefix = f"export_{export_format.name}"
        assert float(tags[f"{prefix}_max_abs_diff"]) <= TOLERANCE
        assert tags[f"{prefix}_agreement"] == "1.000000"
        assert tags[f"{prefix}_artifact"] in logged

    assert export_main([*finished_study.overrides, "--model", "test_classifier@nope"]) == 2
    assert capsys.readouterr().err == (
        "imgsweep: error: registered model 'test_classifier' has no @nope yet; promote a "
        "version with `make promote`, or name NAME@ALIAS or NAME/VERSION\n"
    )
