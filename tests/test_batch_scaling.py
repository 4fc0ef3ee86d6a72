"""The learning rate follows the batch size (optimizer.batch_scaling), and training runs at it."""

import mlflow
import pytest

from pipelines.config import compose_config
from pipelines.errors import ConfigError
from pipelines.plan import plan_from_config
from pipelines.single_run import train_once
from tests.conftest import small_overrides


def _plan(*, rule: str, batch_size: int, overfit_batch_size: int = 32):
    return plan_from_config(
        compose_config(
            [
                "optimizer.learning_rate=0.001",
                f"optimizer.batch_scaling={rule}",
                "optimizer.reference_batch_size=64",
                f"stages.full.batch_size={batch_size}",
                f"stages.overfit.batch_size={overfit_batch_size}",
            ]
        )
    )


@pytest.mark.parametrize(
    ("rule", "batch_size", "learning_rate"),
    [
        ("none", 256, 0.001),
        ("linear", 256, 0.004),
        ("linear", 32, 0.0005),
        ("sqrt", 256, 0.002),
        ("sqrt", 16, 0.0005),
        # At the reference batch every rule trains at the configured rate.
        ("linear", 64, 0.001),
        ("sqrt", 64, 0.001),
    ],
)
def test_learning_rate_follows_the_batch_size_by_the_rule(rule, batch_size, learning_rate):
    plan = _plan(rule=rule, batch_size=batch_size)
    assert plan.optimizer_settings["learning_rate"] == pytest.approx(learning_rate)
    # The overfit check trains at its own batch (32): its rate follows that batch.
    expected_overfit = {"none": 0.001, "linear": 0.0005, "sqrt": 0.001 * 0.5**0.5}[rule]
    assert plan.overfit_learning_rate == pytest.approx(expected_overfit)
    assert "batch_scaling" not in plan.optimizer_settings  # not a Keras optimizer argument


def test_the_shipped_rule_is_sqrt_from_batch_64_for_every_optimizer():
    for optimizer in ("adam", "adamw", "sgd", "rmsprop"):
        cfg = compose_config([f"optimizer={optimizer}", "stages.full.batch_size=256"])
        configured = cfg.optimizer.learning_rate
        plan = plan_from_config(cfg)
        assert plan.optimizer_settings["learning_rate"] == pytest.approx(2 * configured)


def test_full_stage_trains_and_logs_the_scaled_learning_rate(binary_digits, tmp_path):
    mlruns = tmp_path / "mlruns"
    overrides = small_overrides(
        binary_digits,
        mlruns,
        **{
            "optimizer.learning_rate": 0.002,
            "optimizer.batch_scaling": "linear",
            "optimizer.reference_batch_size": 16,
            "stages.full.batch_size": 64,
            "schedule": "constant",
            "stages.ablation.enabled": "false",
            "stages.overfit.enabled": "false",
        },
    )
    result = train_once(compose_config(overrides))
    assert result.reason is None, result.reason
    client = mlflow.MlflowClient(f"sqlite:///{mlruns / 'mlflow.db'}")
    experiment_id = client.get_run(result.run_id).info.experiment_id
    (full,) = client.search_runs(
        [experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.run_id}' and tags.stage = 'full'",
    )
    # Batch 64 is four reference batches: four times the configured rate, epoch by epoch.
    assert float(full.data.params["effective_learning_rate"]) == pytest.approx(0.008)
    logged = [metric.value for metric in client.get_metric_history(full.info.run_id, "lr")]
    assert logged == pytest.approx([0.008, 0.008])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "optimizer.batch_scaling=cubic",
            "optimizer.batch_scaling 'cubic' is unknown; choose one of: none, linear, sqrt",
        ),
        ("optimizer.reference_batch_size=0", "optimizer.reference_batch_size must be >= 1"),
        ("optimizer.reference_batch_size=6.5", "optimizer.reference_batch_size must be a whole"),
    ],
)
def test_bad_batch_scaling_values_name_their_key(override, message):
    with pytest.raises(ConfigError, match=message):
        plan_from_config(compose_config([override]))
