"""The champion gate: a worse challenger is refused, a better one or FORCE takes the alias."""

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

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
            "stages.overfit.enabled": "false",
            "stages.full.max_epochs": 1,
        },
    )
    weak_result = run_sweep(compose_config(weak), weak)
    refused = weak_result.promotion
    assert refused.alias == "challenger"
    assert refused.champion_version == "1"
    assert refused.score < refused.champion_score
    assert "does not beat champion v1" in refused.reason

    again = promote_from_config(compose_config(weak)).promotion
    assert again.version == refused.version  # no second version for the same model
    by_accuracy = promote_from_config(
        compose_config([*weak, "registry.metric=accuracy"])
    ).promotion
    assert by_accuracy.alias == "challenger"
    assert "test accuracy" in by_accuracy.reason and "does not beat" in by_accuracy.reason

    forced = promote_from_config(compose_config([*weak, "registry.force=true"])).promotion
    assert forced.alias == "champion"
    assert forced.reason.startswith("forced: ")

    # The first study's model is better than the forced champion: it takes the alias back.
    back = promote_from_config(compose_config(good)).promotion
    assert back.alias == "champion" and back.version == "1"
    assert back.score > back.champion_score
    # Promoting the champion's own model again scores nothing twice and moves nothing.
    assert promote_from_config(compose_config(good)).promotion.reason == "already the champion"


@pytest.mark.slow
def test_a_version_carries_what_it_was_scored_and_trained_on(finished_study):
    uri = f"sqlite:///{finished_study.mlruns / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    version = client.get_model_version_by_alias("test_classifier", "champion")
    best = finished_study.result.study.best_trial
    tags = version.tags
    assert tags["study"] == "test_study"
    assert tags["trial_number"] == str(best.number)
    assert version.run_id == best.user_attrs["mlflow_run_id"]
    assert 0.5 < float(tags["test_auc"]) <= 1 and 0 < float(tags["test_accuracy"]) <= 1
    assert float(tags["test_auc"]) == pytest.approx(
        finished_study.result.promotion.test_metrics["auc"], abs=1e-6
    )
    assert json.loads(tags["class_names"]) == ["digit_3", "digit_8"]
    assert tags["candidate"] == "single"
    assert len(tags["data_fingerprint"]) == 16
    assert tags["gate_metric"] == "auc" and tags["forced"] == "False"
    assert tags["promotion"] == "no champion yet"
    # The model card the MLflow UI shows: classes, scores, how to call the server.
    card = version.description
    assert "`digit_3`, `digit_8`" in card and f"AUC {float(tags['test_auc']):.4f}" in card
    assert "read as 16x16 grayscale" in card and "**Exports**:\nnone yet" in card
    assert "curl -s http://127.0.0.1:5002/invocations" in card
    registered = client.get_registered_model("test_classifier")
    assert f"**@champion: v{version.version}**" in registered.description
    artifact = Path(client.download_artifacts(version.run_id, "class_names.json"))
    assert json.loads(artifact.read_text()) == ["digit_3", "digit_8"]
