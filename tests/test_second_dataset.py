"""A user's second data set: names follow the data, collisions stop before training, layouts
without a test split are promoted on val, a tiny val split is warned about."""

import shutil
import subprocess
import sys

import pytest
from mlflow import MlflowClient

from pipelines.config import compose_config
from pipelines.data.folders import fingerprint
from pipelines.errors import ImgsweepError
from pipelines.plan import load_data
from sweep.promote import promote_from_config
from sweep.run import run_sweep
from tests.conftest import small_overrides


def _client(mlruns) -> MlflowClient:
    uri = f"sqlite:///{mlruns / 'mlflow.db'}"
    return MlflowClient(uri, registry_uri=uri)


def _running_runs(mlruns) -> list[str]:
    client = _client(mlruns)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    runs = client.search_runs(experiments, max_results=1000)
    return [run.info.run_name for run in runs if run.info.status == "RUNNING"]


def test_default_names_follow_the_data_folder():
    default = compose_config([])
    assert default.search.study_name == "fashion_pair_small_cnn"
    assert default.registry.model_name == "fashion_pair_classifier"
    assert compose_config(["experiment=fashion10"]).search.study_name == "fashion10_small_cnn"
    own = compose_config(["data.root=/path/to/chest_xray/"])
    assert own.search.study_name == "chest_xray_small_cnn"
    assert own.registry.model_name == "chest_xray_classifier"
    assert own.tracking.experiment_name is None  # the experiment follows the study name
    named = compose_config(["data.root=/x/chest_xray", "registry.model_name=mine"])
    assert named.registry.model_name == "mine"


@pytest.fixture
def copied_study(finished_study, tmp_path):
    """The finished study's mlruns (test_classifier v1 on 16×16 digits 3 and 8), copied."""
    mlruns = tmp_path / "mlruns"
    shutil.copytree(finished_study.mlruns, mlruns)
    return mlruns


@pytest.mark.slow
def test_other_classes_under_the_same_model_name_stop_before_training(
    copied_study, multiclass_digits
):
    overrides = small_overrides(
        multiclass_digits, copied_study, **{"search.study_name": "digits012"}
    )
    with pytest.raises(ImgsweepError) as stopped:
        run_sweep(compose_config(overrides), overrides)
    message = str(stopped.value)
    assert "registered model 'test_classifier' holds models of classes digit_3,digit_8" in message
    assert "this data has classes digit_0,digit_1,digit_2" in message
    assert "pass registry.model_name=test_classifier_" in message
    assert _running_runs(copied_study) == []
    experiment = _client(copied_study).get_experiment_by_name("digits012")
    assert _client(copied_study).search_runs([experiment.experiment_id]) == []


@pytest.mark.slow
def test_another_image_size_stops_the_command_line_with_one_line(copied_study, binary_digits):
    overrides = small_overrides(
        binary_digits,
        copied_study,
        **{"search.study_name": "bigger", "data.image_size": "[12,12]"},
    )
    completed = subprocess.run(
        [sys.executable, "-m", "sweep", *overrides], capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.strip().splitlines() == [
        "imgsweep: error: registered model 'test_classifier' holds models of classes "
        "digit_3,digit_8 on 16x16x1 images (v1, @champion), this data has classes "
        "digit_3,digit_8 on 12x12x1 images; pass registry.model_name=test_classifier_12x12x1 "
        "to register its models under their own name"
    ]
    assert "trial 0" not in completed.stdout
    assert _running_runs(copied_study) == []


@pytest.mark.slow
def test_resuming_a_study_on_other_data_stops_with_the_name_to_use(copied_study, binary_digits):
    overrides = small_overrides(
        binary_digits,
        copied_study,
        **{"data.image_size": "[12,12]", "registry.model_name": "small_digits"},
    )
    with pytest.raises(ImgsweepError) as stopped:
        run_sweep(compose_config(overrides), overrides)
    message = str(stopped.value)
    assert message.startswith("study 'test_study' ran its trials on other data (classes ")
    assert "pass search.study_name=test_study_12x12x1 to start a study" in message
    assert _running_runs(copied_study) == []
    parents = _client(copied_study).search_runs(
        [_client(copied_study).get_experiment_by_name("test_study").experiment_id],
        filter_string="tags.role = 'study'",
    )
    assert [parent.info.status for parent in parents] == ["FINISHED"]  # not resumed


def test_a_tiny_val_split_is_warned_about_with_its_figures(binary_digits, tmp_path, capsys):
    cfg = compose_config(small_overrides(binary_digits, tmp_path / "mlruns"))
    load_data(cfg)
    warnings = [line for line in capsys.readouterr().out.splitlines() if "warning" in line]
    assert warnings == [
        "imgsweep: warning: the val split has fewer than data.min_val_per_class=50 images in "
        "a class (digit_3 30, digit_8 30): trials would be compared on noise; "
        "data.val_fraction=0.2 takes a seeded, stratified val split from train instead (the "
        "val folder is then unused)"
    ]
    carved = small_overrides(
        binary_digits,
        tmp_path / "mlruns",
        **{"data.val_fraction": 0.3, "data.min_val_per_class": 30},
    )
    data = load_data(compose_config(carved))
    assert "warning" not in capsys.readouterr().out
    assert len(data.splits["val"]) == 60


@pytest.mark.slow
def test_without_a_test_split_the_gate_scores_on_val(binary_digits, tmp_path, capsys):
    root = tmp_path / "photos"
    for split in ("train", "val"):
        shutil.copytree(binary_digits / split, root / split)
    mlruns = tmp_path / "mlruns"
    overrides = small_overrides(root, mlruns, **{"data.test_dir": "null", "search.n_trials": 1})
    result = run_sweep(compose_config(overrides), overrides)

    first_lines = capsys.readouterr().out.splitlines()[:6]
    assert any(line.startswith("registry: no test split") for line in first_lines)
    promotion = result.promotion
    assert promotion.alias == "champion" and promotion.gate_split == "val"
    assert "val split" in promotion.reason
    client = _client(mlruns)
    version = client.get_model_version("test_classifier", promotion.version)
    assert version.tags["gate_split"] == "val"
    assert version.tags["input_shape"] == "16x16x1"
    assert 0.5 < float(version.tags["val_auc"]) <= 1 and "test_auc" not in version.tags
    assert "val split" in version.tags["promotion"]
    again = promote_from_config(
        compose_config(overrides)
    ).promotion  # `make promote`: the same split
    assert again.version == promotion.version and again.gate_split == "val"
    assert (
        again.reason == "already the champion; scored on the val split: the data has no test split"
    )

    # Which data every run used, as MLflow's Dataset and Source columns show it.
    parent = client.get_run(result.parent_run_id)
    assert "digit_3 30, digit_8 30" in parent.data.tags["val_warning"]
    trial_run = client.get_run(result.study.best_trial.user_attrs["mlflow_run_id"])
    data = load_data(compose_config(overrides))
    every_run = client.search_runs([parent.info.experiment_id])
    assert len(every_run) == 5  # the study, its trial and the trial's three stages
    assert all(run.data.tags["mlflow.source.name"].startswith("python -m ") for run in every_run)
    for run in (parent, trial_run):
        (dataset_input,) = run.inputs.dataset_inputs
        dataset = dataset_input.dataset
        assert dataset.name == "photos" and dataset.digest == fingerprint(data.splits)
        assert str(root) in dataset.source
        assert '"val": {"digit_3": 30, "digit_8": 30}' in dataset.profile
