"""`make predict`: the champion on a folder of any images, bad files counted and skipped."""

import csv
import shutil

import keras
import numpy as np
import pytest
from PIL import Image

from champion.predict import main as predict_main
from pipelines.data.datasets import build_batches
from pipelines.evaluate import predict_split
from pipelines.inference import ReadSettings, find_files, predict_files, read_batches
from pipelines.models import build_model
from pipelines.plan import load_data, plan_from_config


def _folder_with_bad_files(source_split, target):
    """Every image of `source_split` (class folders nested one level down) and four bad files."""
    shutil.copytree(source_split, target / "batch_1")
    first = next((target / "batch_1" / "digit_3").iterdir())
    (target / "truncated.png").write_bytes(first.read_bytes()[:60])
    (target / "empty.jpg").write_bytes(b"")
    (target / "notes.txt").write_text("not a picture\n")
    Image.new("RGB", (20, 20)).save(target / "scan.tiff")
    return target


def test_any_size_and_mode_is_read_and_bad_files_are_skipped(binary_digits, tmp_path, make_config):
    cfg, _ = make_config(binary_digits, tmp_path / "mlruns")
    plan, data = plan_from_config(cfg), load_data(cfg)
    keras.utils.set_random_seed(0)
    model = build_model(
        name=plan.model_name,
        input_shape=data.input_shape,
        num_classes=data.num_classes,
        preprocessing=plan.preprocessing,
        **plan.model_settings,
    )
    folder = _folder_with_bad_files(binary_digits / "val", tmp_path / "incoming")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (50, 70, 4), dtype=np.uint8)).save(folder / "big.png")
    Image.fromarray(rng.integers(0, 255, (9, 9, 3), dtype=np.uint8)).save(folder / "tiny.jpg")

    settings = ReadSettings(image_size=data.image_size, color_mode=cfg.data.color_mode)
    predictions = predict_files(model, find_files(folder), settings=settings, batch_size=16)

    assert len(predictions.files) == 60 + 3
    assert {str(folder / name) for name in ("big.png", "tiny.jpg", "scan.tiff")} <= set(
        predictions.files
    )
    assert predictions.skipped == {
        str(folder / "truncated.png"): "truncated/undecodable",
        str(folder / "empty.jpg"): "zero-byte",
        str(folder / "notes.txt"): "non-image",
    }
    assert predictions.probabilities.shape == (63, 2)
    np.testing.assert_allclose(predictions.probabilities.sum(axis=1), 1, rtol=1e-6)


def test_predict_decodes_exactly_as_training_did(binary_digits, tmp_path, make_config):
    cfg, _ = make_config(binary_digits, tmp_path / "mlruns")
    data = load_data(cfg)
    split = data.splits["val"]
    trained_on = next(iter(build_batches(data, split, batch_size=len(split))))[0].numpy()
    settings = ReadSettings(image_size=data.image_size, color_mode=cfg.data.color_mode)
    ((files, read, skipped),) = read_batches(split.files, settings=settings, batch_size=len(split))
    assert files == list(split.files) and skipped == {}
    np.testing.assert_array_equal(read.astype("float32"), trained_on)


@pytest.mark.slow
def test_predict_writes_a_row_per_image_and_counts_the_skips(finished_study, tmp_path, capsys):
    import mlflow

    folder = _folder_with_bad_files(finished_study.data_root / "test", tmp_path / "incoming")
    output = tmp_path / "out" / "predictions.csv"
    exit_code = predict_main([str(folder), "--output", str(output), *finished_study.overrides])
    printed = capsys.readouterr().out
    assert exit_code == 0, printed

    with open(output, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == ["file", "predicted_class", "p_digit_3", "p_digit_8"]
    assert len(rows) == 61  # 60 test images and the TIFF, which the loader reads too
    # The same probabilities as the champion scoring the test split through the training data
    # pipeline: predict resizes and converts as training did.
    cfg_overrides = finished_study.overrides
    from pipelines.config import compose_config

    data = load_data(compose_config(cfg_overrides))
    champion = mlflow.keras.load_model("models:/test_classifier@champion")
    expected = predict_split(champion, data, data.splits["test"])
    by_name = {row["file"].split("batch_1/")[-1]: row for row in rows if "batch_1/" in row["file"]}
    for file, probabilities in zip(data.splits["test"].files, expected, strict=True):
        row = by_name[file.split("test/")[-1]]
        assert float(row["p_digit_8"]) == pytest.approx(probabilities[1], abs=1e-5)
        assert row["predicted_class"] == ("digit_8" if probabilities[1] > 0.5 else "digit_3")

    assert "model: test_classifier v1 (16x16 grayscale)" in printed
    assert "predicted 61 images" in printed and "img/s" in printed
    assert "skipped 3 files" in printed
    assert f"1 truncated/undecodable (e.g. {folder / 'truncated.png'})" in printed
    assert "1 non-image" in printed and "1 zero-byte" in printed


@pytest.mark.slow
def test_predict_names_a_version_and_refuses_an_unknown_model(finished_study, tmp_path, capsys):
    image = next((finished_study.data_root / "test" / "digit_8").iterdir())
    output = tmp_path / "one.csv"
    arguments = [str(image), "--output", str(output), *finished_study.overrides]
    assert predict_main([*arguments, "--model", "test_classifier/1"]) == 0
    assert len(output.read_text().splitlines()) == 2

    assert predict_main([*arguments, "--model", "nope@champion"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("imgsweep: error: model 'nope@champion' is not in the registry")
    assert "\n" not in error
