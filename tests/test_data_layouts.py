"""Every folder layout and data option on tiny real images, and each layout error's one line."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pipelines.config import compose_config
from pipelines.data.datasets import DiskImages, balanced_class_weights, build_batches
from pipelines.errors import DataError
from pipelines.plan import load_data
from sweep.run import run_sweep
from tests.conftest import small_overrides, write_digit_folders


def _load(root, tmp_path, **extra):
    return load_data(compose_config(small_overrides(root, tmp_path / "mlruns", **extra)))


def test_kaggle_layout_with_upper_case_class_names(tmp_path, binary_digits):
    root = tmp_path / "chest_xray"
    shutil.copytree(binary_digits, root)
    for split in ("train", "val", "test"):
        (root / split / "digit_3").rename(root / split / "NORMAL")
        (root / split / "digit_8").rename(root / split / "PNEUMONIA")
    data = _load(root, tmp_path)
    assert data.class_names == ["NORMAL", "PNEUMONIA"]
    assert {name: len(split) for name, split in data.splits.items()} == {
        "train": 200,
        "val": 60,
        "test": 60,
    }
    assert data.label_mode == "binary" and data.output_units == 1


def test_val_fraction_takes_the_same_stratified_val_for_the_same_seed(tmp_path):
    root = write_digit_folders(tmp_path / "tree", [3, 8], per_class={"train": 50, "test": 10})
    first = _load(root, tmp_path, **{"data.val_fraction": 0.2})
    again = _load(root, tmp_path, **{"data.val_fraction": 0.2})
    other_seed = _load(root, tmp_path, **{"data.val_fraction": 0.2, "seed": 1})
    val, train = first.splits["val"], first.splits["train"]
    assert np.bincount(val.labels).tolist() == [10, 10]
    assert np.bincount(train.labels).tolist() == [40, 40]
    assert not set(val.files) & set(train.files)
    assert again.splits["val"].files == val.files
    assert other_seed.splits["val"].files != val.files


def test_missing_val_folder_suggests_val_fraction(tmp_path):
    root = write_digit_folders(tmp_path / "tree", [3, 8], per_class={"train": 10, "test": 5})
    with pytest.raises(
        DataError, match=r"data.val_dir '.*tree/val' is not a folder; set data.val_fraction"
    ):
        _load(root, tmp_path)


def test_one_folder_of_classes_points_to_the_split_command(tmp_path):
    root = write_digit_folders(tmp_path / "flowers", [1, 2], per_class={"all": 5}) / "all"
    with pytest.raises(DataError, match=r"holds class folders \(digit_1, digit_2\) with no split"):
        _load(root, tmp_path)


def test_max_images_per_class_caps_every_split(tmp_path, binary_digits):
    data = _load(binary_digits, tmp_path, **{"data.max_images_per_class": 7})
    for split in data.splits.values():
        assert np.bincount(split.labels).tolist() == [7, 7]


def _write_rgba_tree(root, size=(20, 30)):
    """Two classes of RGBA images: a red opaque centre on a fully transparent black border."""
    for split in ("train", "val"):
        for name, colour in (("red", (255, 0, 0, 255)), ("blue", (0, 0, 255, 255))):
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(4):
                pixels = np.zeros((*size, 4), dtype=np.uint8)
                pixels[
                    size[0] // 2 - 4 : size[0] // 2 + 4, size[1] // 2 - 4 : size[1] // 2 + 4
                ] = colour
                Image.fromarray(pixels, "RGBA").save(folder / f"{index}.png")
    return root


def test_color_modes_and_centre_crop(tmp_path):
    root = _write_rgba_tree(tmp_path / "icons")
    common = {"data.test_dir": "null", "data.image_size": "[8,8]"}
    flattened = _load(root, tmp_path, **common, **{"data.color_mode": "rgba-to-rgb"})
    dropped = _load(root, tmp_path, **common, **{"data.color_mode": "rgb"})
    cropped = _load(root, tmp_path, **common, **{"data.color_mode": "rgb", "data.crop": "[8,8]"})
    gray = _load(root, tmp_path, **common)
    corner = (0, 0)
    assert flattened.images(flattened.splits["train"])[0][corner].tolist() == [255, 255, 255]
    assert dropped.images(dropped.splits["train"])[0][corner].tolist() == [0, 0, 0]
    # The central 8×8 is all colour: red for class 1 ("red"), blue for class 0 ("blue").
    crops = cropped.images(cropped.splits["train"])
    assert cropped.class_names == ["blue", "red"]
    assert (crops[cropped.splits["train"].labels == 1] == [255, 0, 0]).all()
    assert gray.input_shape == (8, 8, 1) and flattened.input_shape == (8, 8, 3)


def test_images_smaller_than_the_crop_are_skipped_and_counted(tmp_path):
    root = _write_rgba_tree(tmp_path / "icons")
    Image.new("RGB", (10, 10)).save(root / "train" / "red" / "tiny.png")
    data = _load(root, tmp_path, **{"data.test_dir": "null", "data.crop": "[16,16]"})
    assert data.report.counts()["skipped_too_small"] == 1
    assert data.report.skipped["too-small"][0].endswith("tiny.png")


def test_label_mode_override_and_balanced_class_weights(
    tmp_path, binary_digits, multiclass_digits
):
    categorical = _load(binary_digits, tmp_path, **{"data.label_mode": "categorical"})
    assert categorical.output_units == 2
    _, labels = next(iter(build_batches(categorical, categorical.splits["val"], batch_size=4)))
    assert labels.shape == (4, 2)
    with pytest.raises(DataError, match="data.label_mode 'binary' needs exactly 2 classes"):
        _load(multiclass_digits, tmp_path, **{"data.label_mode": "binary"})
    weights = balanced_class_weights(np.array([0, 1, 1, 1]), 2)
    assert weights == pytest.approx({0: 2.0, 1: 2 / 3})


def test_same_seed_gives_the_same_batch_order(tmp_path, binary_digits):
    data = _load(binary_digits, tmp_path)
    split = data.splits["train"]

    def first_epoch(seed):
        batches = build_batches(data, split, batch_size=16, shuffle_seed=seed)
        return np.concatenate([images.numpy().sum(axis=(1, 2, 3)) for images, _ in batches])

    assert np.array_equal(first_epoch(5), first_epoch(5))
    assert not np.array_equal(first_epoch(5), first_epoch(6))


def test_over_budget_pixels_are_read_from_a_file_and_every_load_reuses_the_decode(
    tmp_path, binary_digits
):
    in_memory = _load(binary_digits, tmp_path)
    on_disk = _load(binary_digits, tmp_path, **{"data.cache_budget_mb": 0})
    assert isinstance(on_disk.pixels, DiskImages) and not isinstance(in_memory.pixels, DiskImages)
    assert on_disk.report.cached == 320  # same files, same settings: not decoded again
    split = in_memory.splits["val"]
    np.testing.assert_array_equal(in_memory.images(split), on_disk.images(split))
    batches = build_batches(on_disk, split, batch_size=32, shuffle_seed=0)
    assert next(iter(batches))[0].shape == (32, 16, 16, 1)
    (cache_file,) = (tmp_path / "mlruns" / "cache").glob("decoded-*.u8")
    stamp = cache_file.stat().st_mtime_ns
    resized = _load(binary_digits, tmp_path, **{"data.image_size": "[12,12]"})
    assert resized.report.cached == 0 and resized.input_shape == (12, 12, 1)
    assert cache_file.stat().st_mtime_ns == stamp


def _layout(tmp_path, binary_digits, breakage):
    root = tmp_path / "broken"
    shutil.copytree(binary_digits, root)
    breakage(root)
    return root


LAYOUT_ERRORS = {
    "single class": (
        lambda root: [shutil.rmtree(root / s / "digit_8") for s in ("train", "val", "test")],
        r"data.train_dir '.*broken/train' has 1 class folder\(s\) \('digit_3'\); need >= 2",
    ),
    "empty class folder": (
        lambda root: [path.unlink() for path in (root / "val" / "digit_8").iterdir()],
        r"data.val_dir: class folder '.*broken/val/digit_8' has no images",
    ),
    "class sets differ": (
        lambda root: (root / "test" / "digit_8").rename(root / "test" / "digit_9"),
        r"data.test_dir '.*broken/test' has classes \['digit_3', 'digit_9'\] but data.train_dir",
    ),
    "missing split": (
        lambda root: shutil.rmtree(root / "test"),
        r"data.test_dir '.*broken/test' is not a folder; set data.test_dir=null",
    ),
    "no images at all": (
        lambda root: [shutil.rmtree(path) for path in (root / "train").iterdir()],
        r"data.train_dir '.*broken/train' has no class folders and no images \(Found 0 images\)",
    ),
    "images without class folders": (
        lambda root: (
            [
                shutil.move(str(image), root / "train" / f"{image.parent.name}-{image.name}")
                for folder in list((root / "train").iterdir())
                for image in list(folder.iterdir())
            ]
            + [shutil.rmtree(folder) for folder in (root / "train").iterdir() if folder.is_dir()]
        ),
        r"data.train_dir '.*broken/train' holds 200 images directly but no class folders",
    ),
}


@pytest.mark.parametrize("case", LAYOUT_ERRORS)
def test_layout_errors_stop_before_any_run(tmp_path, binary_digits, case):
    breakage, message = LAYOUT_ERRORS[case]
    root = _layout(tmp_path, binary_digits, breakage)
    overrides = small_overrides(root, tmp_path / "mlruns")
    with pytest.raises(DataError, match=message) as raised:
        run_sweep(compose_config(overrides), overrides)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()  # no run was started, none RUNNING


def test_layout_error_on_the_command_line_is_one_line(tmp_path, binary_digits):
    root = _layout(tmp_path, binary_digits, LAYOUT_ERRORS["class sets differ"][0])
    completed = subprocess.run(
        [sys.executable, "-m", "pipelines.train", *small_overrides(root, tmp_path / "mlruns")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("imgsweep: error: data.test_dir '")
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()


def test_batches_on_the_cpu_run_without_the_tf_data_autotuner(tmp_path, binary_digits):
    # With it on, every few epochs took twice as long on 2 cores (BENCHMARKS.md §18).
    data = _load(binary_digits, tmp_path)
    batches = build_batches(data, data.splits["train"], batch_size=16, shuffle_seed=0)
    assert batches.options().autotune.enabled is False
    assert next(iter(batches))[0].shape == (16, 16, 16, 1)
