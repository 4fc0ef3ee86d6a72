"""The champion gate: a worse challenger is refused, a better one or FORCE takes the alias."""

import pytest

from pipelines.config import compose_config
from sweep.promote import promote_from_config
from sweep.run import run_sweep
from tests.conftest import small_overrides


@pytest.mark.slow
def test_gate_refuses_worse_accepts_forced_and_is_idempotent(binary_digits, tmp_path):
    mlruns = tmp_path / "mlruns"
    good = small_overrides(binary_digits, mlruns, **{"search.n_trials": 1})
    good_result = run_sweep(compose_config(good), good)
    assert good_result.promotion.alias == "champion"
    assert good_result.promotion.version == "1"

    # A model trained one epoch at a tiny learning rate, with the overfit gate switched off.
    weak = small_overrides(
        binary_digits,
        mlruns,
        **{
            "search.n_trials": 1,
            "search.study_name": "weak",
            "optimizer": "sgd",
            "optimizer.learning_rate": 1e-6,
            "stages.overfit.target_accuracy": 0.01,
            "stages.full.max_epochs": 1,
        },
    )
    weak_result = run_sweep(compose_config(weak), weak)
    refused = weak_result.promotion
    assert refused.alias == "challenger"
    assert refused.champion_version == "1"
    assert refused.test_auc < refused.champion_test_auc
    assert "does not beat champion v1" in refused.reason

    again = promote_from_config(compose_config(weak))
    assert again.version == refused.version  # no second version for the same model

    forced = promote_from_config(compose_config([*weak, "registry.force=true"]))
    assert forced.alias == "champion"
    assert forced.reason.startswith("forced: ")

    # The first study's model is better than the forced champion: it takes the alias back.
    back = promote_from_config(compose_config(good))
    assert back.alias == "champion" and back.version == "1"
    assert back.test_auc > back.champion_test_auc
