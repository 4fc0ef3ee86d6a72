"""A folder full of the files users really have: counted, skipped or converted, and it trains."""

import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from PIL import Image

from pipelines.config import compose_config
from pipelines.plan import load_data
from pipelines.single_run import train_once
from tests.conftest import small_overrides

EXPECTED_COUNTS = {
    "skipped_zero_byte": 1,
    "skipped_undecodable": 2,
    "skipped_non_image": 4,
    "skipped_too_small": 0,
    "converted_RGBA": 1,
    "converted_CMYK": 1,
    "converted_palette": 2,
    "converted_16-bit": 1,
    "converted_BMP": 1,
    "in_nested_folders": 2,
}


@pytest.fixture(scope="module")
def bad_tree(tmp_path_factory, binary_digits):
    """The digits tree plus one of every bad or odd file, in train/digit_3."""
    root = tmp_path_factory.mktemp("bad") / "tree"
    shutil.copytree(binary_digits, root)
    folder = root / "train" / "digit_3"
    good = sorted(folder.glob("*.png"))[0].read_bytes()
    pixels = np.random.default_rng(0).integers(0, 255, (12, 12, 3), dtype=np.uint8)
    rgb = Image.fromarray(pixels)
    (folder / "empty.png").write_bytes(b"")
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    rgb.save(folder / "cut.jpg")
    (folder / "cut.jpg").write_bytes((folder / "cut.jpg").read_bytes()[:300])
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "notes.txt").write_text("labels were checked twice")
    (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (folder / "text renamed.jpg").write_text("not an image")
    rgb.convert("RGBA").save(folder / "alpha ÄÖ ü.PNG")
    rgb.convert("CMYK").save(folder / "print shop.JPEG")
    rgb.convert("P").save(folder / "palette.png")
    rgb.convert("P").save(folder / "animated.GIF")
    deep = np.random.default_rng(1).integers(0, 65535, (12, 12)).astype(np.uint16)
    Image.fromarray(deep).save(folder / "sixteen bit.png")
    (folder / "more" / "deeper").mkdir(parents=True)
    rgb.save(folder / "more" / "deeper" / "nested.bmp")
    rgb.save(folder / "more" / "nested.jpg")
    return root


def test_every_bad_file_is_counted_once(bad_tree, tmp_path, capsys):
    cfg = compose_config(small_overrides(bad_tree, tmp_path / "mlruns"))
    data = load_data(cfg)
    counts = data.report.counts()
    assert {key: counts.get(key, 0) for key in EXPECTED_COUNTS} == EXPECTED_COUNTS
    # 100 good digit_3 images + 7 usable odd ones (alpha, cmyk, palette x2, 16-bit, 2 nested).
    assert np.bincount(data.splits["train"].labels).tolist() == [107, 100]
    printed = capsys.readouterr().out
    assert "skipped 1 zero-byte, 2 truncated/undecodable, 4 non-image" in printed
    assert data.report.cached == 0

    again = load_data(cfg)
    assert again.report.counts() == counts
    # Read back from the cache: every file that was opened (all but the 3 non-image names).
    assert again.report.cached == again.report.checked - 3


def test_converted_files_keep_their_pixels(bad_tree, tmp_path):
    cfg = compose_config(
        small_overrides(bad_tree, tmp_path / "mlruns", **{"data.color_mode": "rgb"})
    )
    data = load_data(cfg)
    folder = bad_tree / "train" / "digit_3"
    expected = np.asarray(Image.open(folder / "palette.png").convert("RGB").resize((16, 16)))
    split = data.splits["train"]
    index = next(i for i, f in enumerate(split.files) if f.endswith("palette.png"))
    decoded = data.images(split)[index].astype(int)
    assert np.abs(decoded - expected).mean() < 40  # same picture, resized by another library
    cmyk = next(i for i, f in enumerate(split.files) if f.endswith("print shop.JPEG"))
    expected = np.asarray(Image.open(folder / "print shop.JPEG").convert("RGB").resize((16, 16)))
    assert np.abs(data.images(split)[cmyk].astype(int) - expected).mean() < 40  # not inverted


@pytest.mark.slow
def test_the_bad_folder_trains_and_the_run_shows_what_was_skipped(bad_tree, tmp_path):
    mlruns = tmp_path / "mlruns"
    cfg = compose_config(
        small_overrides(bad_tree, mlruns, **{"augment": "heavy", "data.class_weight": "balanced"})
    )
    result = train_once(cfg)
    assert result.status == "FINISHED", result.reason
    client = MlflowClient(f"sqlite:///{mlruns / 'mlflow.db'}")
    mlflow.set_tracking_uri(client.tracking_uri)
    assert all(
        run.info.status != "RUNNING"
        for run in client.search_runs([client.get_experiment_by_name("test_study").experiment_id])
    )
    check_file = client.download_artifacts(result.run_id, "data_check.json", str(tmp_path))
    check = json.loads(Path(check_file).read_text())
    assert check["counts"]["skipped_undecodable"] == 2
    assert any(path.endswith("text renamed.jpg") for path in check["skipped_files"]["non-image"])
    full = client.search_runs(
        [client.get_run(result.run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.run_id}' and tags.stage = 'full'",
    )[0]
    assert "augmentation_grid.png" in {
        item.path for item in client.list_artifacts(full.info.run_id)
    }
    # What `make predict` names its columns by.
    names_file = client.download_artifacts(result.run_id, "class_names.json", str(tmp_path))
    assert json.loads(Path(names_file).read_text()) == ["digit_3", "digit_8"]
