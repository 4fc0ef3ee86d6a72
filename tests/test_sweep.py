"""The study end to end on tiny real images: run tree, states and reasons, resume, multi-class."""

import mlflow
import numpy as np
import optuna
import pytest
from mlflow import MlflowClient

from sweep.run import run_sweep

EPOCH_METRICS = {"loss", "accuracy", "auc", "val_loss", "val_accuracy", "val_auc", "lr"}


def _client(mlruns):
    uri = f"sqlite:///{mlruns / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    return MlflowClient(uri, registry_uri=uri)


def _children(client, experiment_id, parent_run_id):
    return client.search_runs(
        [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'"
    )


@pytest.mark.slow
def test_three_trial_study_builds_the_run_tree(binary_digits, tmp_path, make_config):
    mlruns = tmp_path / "mlruns"
    cfg, overrides = make_config(binary_digits, mlruns)
    result = run_sweep(cfg, overrides)

    trials = result.study.get_trials()
    assert len(trials) == 3
    assert all(trial.state == optuna.trial.TrialState.COMPLETE for trial in trials)
    client = _client(mlruns)
    experiment = client.get_experiment_by_name("test_study")
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["study"] == "test_study"
    trial_runs = _children(client, experiment.experiment_id, result.parent_run_id)
    assert sorted(int(run.data.tags["trial_number"]) for run in trial_runs) == [0, 1, 2]
    for trial_run in trial_runs:
        assert trial_run.info.status == "FINISHED"
        assert trial_run.data.tags["optuna_state"] == "COMPLETE"
        assert "learning_rate" in trial_run.data.params
        artifacts = {item.path for item in client.list_artifacts(trial_run.info.run_id)}
        assert {"config.yaml", "class_names.json"} <= artifacts
        stages = {
            run.data.tags["stage"]: run
            for run in _children(client, experiment.experiment_id, trial_run.info.run_id)
        }
        assert set(stages) == {"ablation", "overfit", "full"}
        full = stages["full"]
        assert set(full.data.metrics) >= EPOCH_METRICS
        assert len(client.get_metric_history(full.info.run_id, "val_auc")) == 2
        assert full.data.tags["model_uri"].startswith("models:/")
    number = result.study.best_trial.number
    assert (mlruns / "checkpoints" / f"test_study-{number}.keras").stat().st_size > 0
    assert 0.5 < result.study.best_value <= 1.0


@pytest.mark.slow
def test_champion_loads_and_predicts_like_the_checkpoint(binary_digits, tmp_path, make_config):
    import keras

    mlruns = tmp_path / "mlruns"
    cfg, overrides = make_config(binary_digits, mlruns, **{"search.n_trials": 1})
    result = run_sweep(cfg, overrides)
    assert result.promotion.alias == "champion"
    _client(mlruns)
    champion = mlflow.keras.load_model("models:/test_classifier@champion")
    checkpoint = keras.models.load_model(mlruns / "checkpoints" / "test_study-0.keras")
    images = np.random.default_rng(0).uniform(0, 255, size=(5, 16, 16, 1)).astype("float32")
    np.testing.assert_allclose(champion.predict(images), checkpoint.predict(images), rtol=1e-5)


@pytest.mark.slow
def test_ablation_failure_is_recorded_and_the_study_goes_on(binary_digits, tmp_path, make_config):
    mlruns = tmp_path / "mlruns"
    # Five pooling blocks cannot fit a 16×16 image: the model fails to build.
    cfg, overrides = make_config(
        binary_digits, mlruns, **{"model.conv_blocks": 5, "search.n_trials": 2}
    )
    result = run_sweep(cfg, overrides)
    trials = result.study.get_trials()
    assert [trial.state for trial in trials] == [optuna.trial.TrialState.FAIL] * 2
    assert all(trial.user_attrs["reason"].startswith("ablation: ") for trial in trials)
    client = _client(mlruns)
    run = client.get_run(trials[0].user_attrs["mlflow_run_id"])
    assert run.info.status == "FAILED"
    assert run.data.tags["reason"].startswith("ablation: ")
    assert result.promotion is None


@pytest.mark.slow
def test_a_learning_rate_too_small_is_pruned_by_the_overfit_stage(
    binary_digits, tmp_path, make_config
):
    mlruns = tmp_path / "mlruns"
    cfg, overrides = make_config(
        binary_digits,
        mlruns,
        **{"optimizer": "sgd", "optimizer.learning_rate": 1e-7, "search.n_trials": 1},
    )
    result = run_sweep(cfg, overrides)
    (trial,) = result.study.get_trials()
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.user_attrs["reason"].startswith("overfit: accuracy 0.")
    assert "(chance 0.50)" in trial.user_attrs["reason"]
    assert "epochs on 40 images" in trial.user_attrs["reason"]
    assert trial.user_attrs["reason"].endswith(": not learning")
    assert "learning_rate" not in trial.params  # fixed on the command line, not searched
    run = _client(mlruns).get_run(trial.user_attrs["mlflow_run_id"])
    assert run.info.status == "KILLED"


@pytest.mark.slow
def test_resuming_runs_only_the_missing_trials(binary_digits, tmp_path, make_config):
    mlruns = tmp_path / "mlruns"
    cfg, overrides = make_config(binary_digits, mlruns, **{"search.n_trials": 1})
    first = run_sweep(cfg, overrides)
    cfg, overrides = make_config(binary_digits, mlruns, **{"search.n_trials": 2})
    second = run_sweep(cfg, overrides)
    assert first.trials_run == 1 and second.trials_run == 1
    assert len(second.study.get_trials()) == 2
    assert second.parent_run_id == first.parent_run_id
    third = run_sweep(cfg, overrides)
    assert third.trials_run == 0


@pytest.mark.slow
def test_multiclass_uses_softmax_and_macro_auc(multiclass_digits, tmp_path, make_config):
    mlruns = tmp_path / "mlruns"
    cfg, overrides = make_config(multiclass_digits, mlruns, **{"search.n_trials": 1})
    result = run_sweep(cfg, overrides)
    (trial,) = result.study.get_trials()
    assert trial.state == optuna.trial.TrialState.COMPLETE, trial.user_attrs.get("reason")
    # search.metric=auto: accuracy for more than two classes, in the study and the gate.
    assert result.study.user_attrs["metric"] == "val_accuracy"
    assert 1 / 3 < trial.value <= 1.0
    assert result.promotion.metric == "accuracy"
    assert 0.5 < result.promotion.test_metrics["auc"] <= 1.0
    model = mlflow.keras.load_model(trial.user_attrs["model_uri"])
    assert model.output_shape == (None, 3)
