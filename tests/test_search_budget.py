"""What the study optimizes and how it spends its budget: search.metric, the overfit gate,
the pruner's last epoch, warm start and the sampler/pruner settings."""

import csv
import importlib.util
import io

import keras
import optuna
import pytest
from omegaconf import OmegaConf

from pipelines.config import compose_config
from pipelines.errors import ConfigError
from pipelines.plan import load_data, plan_from_config, tracking_from_config
from pipelines.stages import StageStopped, StageTimes, run_overfit
from sweep.report import trials_table
from sweep.run import run_sweep
from sweep.space import parse_space
from sweep.study import build_pruner, build_sampler
from sweep.summary import format_summary
from sweep.warm_start import fit_to_space
from tests.conftest import small_overrides
from tests.test_sweep import _client

TrialState = optuna.trial.TrialState


def _overfit(data_root, mlruns, **extra):
    """Run the overfit stage alone, seeded as a trial is; returns its StageStopped reason, or
    None when it passed."""
    cfg = compose_config(small_overrides(data_root, mlruns, **extra))
    keras.backend.clear_session()
    keras.utils.set_random_seed(cfg.seed)
    tracker = tracking_from_config(cfg)
    parent = tracker.start_run("gate")
    try:
        run_overfit(
            plan=plan_from_config(cfg),
            data=load_data(cfg),
            tracker=tracker,
            parent_run_id=parent,
            stage_times=StageTimes(),
        )
    except StageStopped as stopped:
        return stopped.reason
    return None


@pytest.mark.slow
def test_overfit_gate_passes_a_slow_learner_and_stops_a_diverging_one(binary_digits, tmp_path):
    shipped = compose_config([]).stages.overfit
    defaults = {f"stages.overfit.{key}": shipped[key] for key in ("accuracy_share", "loss_drop")}
    # Plain SGD at a small rate: 0.5 -> 0.9 accuracy in 25 epochs, loss 0.70 -> 0.68.
    # At its rate as given (batch scaling off): the gate is what is tested here.
    slow = {
        "optimizer": "sgd",
        "optimizer.learning_rate": 0.002,
        "optimizer.momentum": 0.0,
        "optimizer.batch_scaling": "none",
    }
    assert _overfit(binary_digits, tmp_path / "mlruns", **slow, **defaults) is None
    # The earlier fixed 95 % bar threw the same slow learner away.
    old_bar = {"stages.overfit.accuracy_share": 0.9, "stages.overfit.loss_drop": "null"}
    stopped = _overfit(binary_digits, tmp_path / "mlruns", **slow, **old_bar)
    assert stopped.startswith("overfit: accuracy 0.") and "(needed accuracy 0.95)" in stopped

    diverging = {"optimizer": "sgd", "optimizer.learning_rate": 5.0}
    reason = _overfit(binary_digits, tmp_path / "mlruns", **diverging, **defaults)
    assert reason.startswith("overfit: accuracy 0.50 (chance 0.50) and loss ")
    assert "after 25 epochs on 40 images" in reason and reason.endswith(": not learning")


def test_the_overfit_gate_needs_a_criterion(binary_digits, tmp_path):
    off = {"stages.overfit.accuracy_share": "null", "stages.overfit.loss_drop": "null"}
    cfg = compose_config(small_overrides(binary_digits, tmp_path, **off))
    with pytest.raises(ConfigError, match="both null: set one"):
        plan_from_config(cfg)


def test_a_bad_search_metric_is_one_line(binary_digits, tmp_path):
    cfg = compose_config(small_overrides(binary_digits, tmp_path, **{"search.metric": "f1"}))
    with pytest.raises(ConfigError) as error:
        plan_from_config(cfg)
    assert str(error.value) == (
        "search.metric 'f1' is unknown; choose one of: auto, val_auc, val_accuracy, val_loss"
    )


@pytest.mark.slow
def test_val_loss_drives_checkpoint_pruner_value_csv_and_gate(binary_digits, tmp_path):
    mlruns = tmp_path / "mlruns"
    overrides = small_overrides(
        binary_digits,
        mlruns,
        **{"search.metric": "val_loss", "search.n_trials": 1, "stages.full.max_epochs": 3},
    )
    result = run_sweep(compose_config(overrides), overrides)
    (trial,) = result.study.get_trials()
    assert result.study.direction == optuna.study.StudyDirection.MINIMIZE
    client = _client(mlruns)
    (full,) = client.search_runs(
        [client.get_run(result.parent_run_id).info.experiment_id],
        filter_string=(
            f"tags.mlflow.parentRunId = '{trial.user_attrs['mlflow_run_id']}' "
            "and tags.stage = 'full'"
        ),
    )
    losses = [m.value for m in client.get_metric_history(full.info.run_id, "val_loss")]
    # The checkpoint keeps the lowest val_loss; the pruner saw val_loss every epoch.
    assert trial.value == pytest.approx(min(losses))
    assert trial.user_attrs["best_epoch"] == losses.index(min(losses))
    assert list(trial.intermediate_values.values()) == pytest.approx(losses)
    assert full.data.metrics["best_val_loss"] == pytest.approx(min(losses))
    assert 0.5 <= full.data.metrics["best_val_auc"] <= 1.0  # still the AUC, of that epoch
    header = next(csv.reader(io.StringIO(trials_table(result.study))))
    assert header[:4] == ["number", "state", "reason", "val_loss"]
    summary = format_summary(result)
    assert f"val_loss    {trial.value:.4f}" in summary
    assert f"budget: {trial.user_attrs['full_epochs']} full-set epochs; " in summary
    # Two classes: the registry gate compares test AUC (registry.metric: null follows).
    assert result.promotion.metric == "auc"

    # The same study cannot go on with another metric: its values would not compare.
    again = small_overrides(binary_digits, mlruns, **{"search.n_trials": 2})
    with pytest.raises(ConfigError, match="study 'test_study' was created to minimize"):
        run_sweep(compose_config(again), again)


@pytest.mark.slow
def test_the_last_epoch_is_never_pruned(binary_digits, tmp_path):
    # A threshold no AUC reaches: the pruner would stop every trial at every epoch.
    always = {"search.pruner.name": "threshold", "+search.pruner.threshold.lower": 2.0}
    results = {}
    for epochs in (1, 2):
        overrides = small_overrides(
            binary_digits,
            tmp_path / f"mlruns{epochs}",
            **{"search.n_trials": 1, "stages.full.max_epochs": epochs, **always},
        )
        (results[epochs],) = run_sweep(compose_config(overrides), overrides).study.get_trials()
    assert results[2].state == TrialState.PRUNED
    assert results[2].user_attrs["reason"].startswith("full: pruned at epoch 1 (val_auc ")
    assert results[1].state == TrialState.COMPLETE  # its only epoch is its last


@pytest.mark.slow
def test_warm_start_queues_the_best_and_survives_a_changed_space(binary_digits, tmp_path, capsys):
    mlruns = tmp_path / "mlruns"
    first = small_overrides(
        binary_digits, mlruns, **{"search.n_trials": 2, "search.study_name": "first"}
    )
    earlier = run_sweep(compose_config(first), first).study
    best = earlier.best_trial.params
    # The new space no longer searches dropout and offers other filter counts.
    changed = {
        "search.study_name": "second",
        "search.n_trials": 1,
        "search.warm_start": "first",
        "search.warm_start_top_k": 1,
        "~search.space.dropout_rate": None,
        "search.space.base_filters.choices": "[8]",
    }
    second = [
        entry.removesuffix("=None") for entry in small_overrides(binary_digits, mlruns, **changed)
    ]
    capsys.readouterr()
    study = run_sweep(compose_config(second), second).study
    printed = capsys.readouterr().out
    (trial,) = study.get_trials()
    assert trial.user_attrs["enqueued_by"] == "warm start from 'first'"
    kept = {
        name: value for name, value in best.items() if name not in {"dropout_rate", "base_filters"}
    }
    assert kept.items() <= trial.params.items()
    assert trial.params["base_filters"] == 8
    assert f"base_filters={best['base_filters']}" in printed
    assert f"dropout_rate={best['dropout_rate']}" in printed

    # Resuming does not queue them again.
    resumed = [entry.replace("search.n_trials=1", "search.n_trials=2") for entry in second]
    study = run_sweep(compose_config(resumed), resumed).study
    assert "enqueued_by" not in study.get_trials()[1].user_attrs


def test_an_unknown_warm_start_study_is_one_line(binary_digits, tmp_path):
    overrides = small_overrides(binary_digits, tmp_path, **{"search.warm_start": "nowhere"})
    with pytest.raises(ConfigError, match=r"^search.warm_start 'nowhere' is not a study in "):
        run_sweep(compose_config(overrides), overrides)


def test_every_sampler_and_pruner_argument_comes_from_the_yaml():
    cfg = compose_config(["stages.full.max_epochs=7"])
    assert cfg.search.pruner.name == "hyperband"
    assert cfg.search.pruner.hyperband.max_resource == 7  # epochs are the resource
    for name in ("hyperband", "successive_halving", "median", "percentile", "none"):
        build_pruner({**cfg.search.pruner, "name": name})
    for name in ("tpe", "random"):
        build_sampler({**cfg.search.sampler, "name": name}, seed=0)
    with pytest.raises(ConfigError, match=r"^search.pruner.median: .*'warmup'"):
        build_pruner({"name": "median", "median": {"warmup": 2}})
    with pytest.raises(ConfigError, match=r"^search.sampler.tpe: .*group"):
        build_sampler({"name": "tpe", "tpe": {"group": True, "multivariate": False}}, seed=0)
    with pytest.raises(ConfigError, match="choose one of: hyperband, successive_halving"):
        build_pruner({"name": "asha"})
    with pytest.raises(ConfigError, match=r"^search.pruner.hyperband: .*reduction_factor >= 2"):
        build_pruner({"name": "hyperband", "hyperband": {"reduction_factor": 1}})


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed")
def test_the_gp_sampler_without_torch_says_what_to_install():
    with pytest.raises(ConfigError, match="pip install torch"):
        build_sampler({"name": "gp", "gp": {}}, seed=0)


@pytest.mark.parametrize("option", ["default", "fashion10"])
def test_the_shipped_first_trial_fits_its_space(option):
    cfg = compose_config([f"search={option}"])
    configurations = OmegaConf.to_container(cfg.search.enqueue)
    kept, dropped = fit_to_space(configurations, parse_space(cfg.search.space))
    assert dropped == [] and kept == configurations
    assert kept[0]["learning_rate"] == 1e-3
