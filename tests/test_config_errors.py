"""Bad input stops before any training with one clear line naming the key or folder."""

import re
import subprocess
import sys

import pytest

from pipelines.config import compose_config
from pipelines.errors import ConfigError, DataError, ImgsweepError
from pipelines.plan import plan_from_config
from sweep.run import run_sweep
from tests.conftest import small_overrides


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optimizer.learning_rate=-0.1", "optimizer.learning_rate must be > 0, got -0.1"),
        ("model.name=resnet999", "model.name 'resnet999' is unknown; choose one of: small_cnn"),
        ("stages.full.max_epochs=0", "stages.full.max_epochs must be >= 1"),
        ("search.space.learning_rate.low=0.5", "learning_rate needs numeric low < high"),
        ("search.space.dropout_rate.type=uniform", "search.space.dropout_rate.type 'uniform'"),
        ("stages.overfit.enabled=sometimes", "stages.overfit.enabled must be true or false"),
        ("compute.deterministic=maybe", "compute.deterministic must be true or false"),
        ("registry.ensemble=-1", "registry.ensemble must be 0 .no ensemble. or a number"),
        ("registry.ensemble=three", "registry.ensemble must be 0 .no ensemble. or a number"),
        ("registry.refit=all", "registry.refit must be one of none, train_val, budget, got 'all'"),
    ],
)
def test_bad_values_name_their_key(binary_digits, tmp_path, override, message):
    overrides = small_overrides(binary_digits, tmp_path / "mlruns") + [override]
    cfg = compose_config(overrides)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        run_sweep(cfg, overrides)
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()  # nothing started


def test_unknown_group_option_is_a_config_error():
    with pytest.raises(
        ConfigError, match="optimizer=adagrad is not a config in conf/optimizer/; "
    ):
        compose_config(["optimizer=adagrad"])


def test_command_line_names_the_unknown_group_option_in_one_line():
    completed = subprocess.run(
        [sys.executable, "-m", "sweep", "model=resnet99"], capture_output=True, text=True
    )
    assert completed.returncode == 2
    assert completed.stderr.strip() == (
        "imgsweep: error: model=resnet99 is not a config in conf/model/; "
        "choose one of: resnet, small_cnn, transfer, vgg_cnn"
    )


@pytest.mark.parametrize(
    ("override", "suggestion"),
    [
        ("optimzer.learning_rate=0.1", "optimizer.learning_rate"),
        ("data.image_sise=[32,32]", "data.image_size"),
        ("optimzer=sgd", "optimizer"),
    ],
)
def test_a_typo_in_a_key_suggests_the_closest_key(override, suggestion):
    key = override.split("=")[0]
    with pytest.raises(
        ConfigError, match=f"^{key} is not a config key; did you mean {suggestion}"
    ):
        compose_config([override])


def test_command_line_suggests_the_key_for_a_typo_in_one_line():
    completed = subprocess.run(
        [sys.executable, "-m", "sweep", "optimzer.learning_rate=0.1"],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip() == (
        "imgsweep: error: optimzer.learning_rate is not a config key; "
        "did you mean optimizer.learning_rate?"
    )


def test_missing_data_folder_names_the_key(tmp_path):
    overrides = small_overrides(tmp_path / "nowhere", tmp_path / "mlruns")
    with pytest.raises(DataError, match=r"data.train_dir '.*nowhere/train' is not a folder"):
        run_sweep(compose_config(overrides), overrides)


def test_single_class_layout_is_refused(tmp_path, binary_digits):
    import shutil

    root = tmp_path / "one_class"
    for split in ("train", "val", "test"):
        shutil.copytree(binary_digits / split / "digit_3", root / split / "digit_3")
    overrides = small_overrides(root, tmp_path / "mlruns")
    with pytest.raises(DataError, match=r"has 1 class folder\(s\) \('digit_3'\); need >= 2"):
        run_sweep(compose_config(overrides), overrides)


def test_different_classes_between_splits_are_refused(tmp_path, binary_digits):
    import shutil

    root = tmp_path / "mismatch"
    shutil.copytree(binary_digits, root)
    (root / "val" / "digit_8").rename(root / "val" / "digit_9")
    overrides = small_overrides(root, tmp_path / "mlruns")
    with pytest.raises(ImgsweepError, match="every split needs the same class folders"):
        run_sweep(compose_config(overrides), overrides)


def test_command_line_prints_one_line_and_exits_2(binary_digits, tmp_path):
    overrides = small_overrides(binary_digits, tmp_path / "mlruns")
    completed = subprocess.run(
        [sys.executable, "-m", "sweep", *overrides, "optimizer.learning_rate=-1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert lines == ["imgsweep: error: optimizer.learning_rate must be > 0, got -1"]
    assert "Traceback" not in completed.stdout + completed.stderr


@pytest.mark.parametrize(
    ("override", "message"),
    [
        # The one once blamed on the storage runs in the fast suite; each other key costs a
        # command-line start (TensorFlow's import included), 10-25 s.
        ("search.grace_period=-5", "search.grace_period must be >= 1, got -5"),
        *(
            pytest.param(override, message, marks=pytest.mark.slow)
            for override, message in [
                ("search.workers=0", "search.workers must be >= 1, got 0"),
                ("search.heartbeat_interval=0", "search.heartbeat_interval must be >= 1, got 0"),
                (
                    "search.grace_period=5",
                    "search.grace_period must be > search.heartbeat_interval (10), got 5",
                ),
                ("search.max_retry=-1", "search.max_retry must be >= 0, got -1"),
                (
                    "search.max_consecutive_failures=0",
                    "search.max_consecutive_failures must be >= 1, got 0",
                ),
            ]
        ),
    ],
)
def test_a_bad_study_setting_is_one_line_before_the_storage_opens(
    binary_digits, tmp_path, override, message
):
    mlruns = tmp_path / "mlruns"
    completed = subprocess.run(
        [sys.executable, "-m", "sweep", *small_overrides(binary_digits, mlruns), override],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert lines == [f"imgsweep: error: {message}"]
    # Named as the setting it is, not as a storage that cannot be opened: nothing was opened.
    assert not (mlruns / "optuna.db").exists() and not (mlruns / "mlflow.db").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("search.workers=two", "search.workers must be a whole number, got 'two'"),
        ("search.max_retry=1.5", "search.max_retry must be a whole number, got 1.5"),
        ("search.heartbeat_interval=null", "search.heartbeat_interval must be a whole number"),
    ],
)
def test_study_settings_must_be_whole_numbers(binary_digits, tmp_path, override, message):
    cfg = compose_config(small_overrides(binary_digits, tmp_path) + [override])
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}"):
        plan_from_config(cfg)
