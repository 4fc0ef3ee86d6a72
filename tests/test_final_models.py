"""The final model: the best trial's refit on train+val, an ensemble, the gate among them."""

import csv
import re
import time
from dataclasses import dataclass, replace

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from champion.candidates import promote_candidates, register_candidate
from champion.ensembles import log_ensemble
from champion.final_models import (
    build_refit,
    final_model_settings,
    fits_budget,
    overrun_allowance,
    trial_loop_seconds,
)
from champion.predict import main as predict_main
from champion.promotion import promote
from pipelines.config import compose_config
from pipelines.data.datasets import build_batches
from pipelines.ensemble import greedy_selection
from pipelines.errors import ConfigError
from pipelines.evaluate import class_probabilities
from pipelines.tracking.keras_logging import load_keras_model
from sweep.promote import promote_from_config
from sweep.run import run_sweep, study_outcome, trial_record
from sweep.session import open_session
from sweep.summary import format_summary
from tests.conftest import small_overrides


@dataclass(frozen=True)
class RefitStudy:
    result: object
    overrides: list[str]
    client: MlflowClient


@pytest.fixture(scope="module")
def refit_study(binary_digits, tmp_path_factory) -> RefitStudy:
    """A one-trial study promoted with registry.refit=train_val."""
    mlruns = tmp_path_factory.mktemp("refit_study") / "mlruns"
    overrides = small_overrides(
        binary_digits,
        mlruns,
        **{
            "search.n_trials": 1,
            "search.study_name": "refit_study",
            "registry.refit": "train_val",
            "model": "small_cnn",
            "stages.full.max_epochs": 3,
        },
    )
    result = run_sweep(compose_config(overrides), overrides)
    uri = f"sqlite:///{mlruns / 'mlflow.db'}"
    return RefitStudy(result, overrides, MlflowClient(uri, registry_uri=uri))


@pytest.mark.slow
def test_refit_trains_on_train_val_for_the_best_epochs_under_the_study_run(refit_study):
    client, result = refit_study.client, refit_study.result
    best = result.study.best_trial
    (refit,) = client.search_runs(
        [client.get_run(result.parent_run_id).info.experiment_id],
        filter_string="attributes.run_name = 'refit'",
    )
    assert refit.data.tags["mlflow.parentRunId"] == result.parent_run_id
    assert refit.info.status == "FINISHED"
    epochs = best.user_attrs["best_epoch"] + 1
    assert refit.data.params["epochs"] == str(epochs)
    assert refit.data.params["train_images"] == str(2 * (100 + 30))  # train and val, 2 classes
    history = client.get_metric_history(refit.info.run_id, "loss")
    assert sorted(metric.step for metric in history) == list(range(epochs))
    artifacts = {item.path for item in client.list_artifacts(refit.info.run_id, "report")}
    assert {"report/training_curves.png", "report/confusion_matrix.png"} <= artifacts
    assert 0 <= refit.data.metrics["test_accuracy"] <= 1


@pytest.mark.slow
def test_candidates_are_registered_and_the_alias_moves_only_on_improvement(refit_study):
    client, final = refit_study.client, refit_study.result.final
    kinds = ["single", "refit", "single+refit"]
    assert [candidate.kind for candidate in final.candidates] == kinds
    versions = {
        version.tags["candidate"]: version
        for version in client.search_model_versions("name='test_classifier'")
    }
    assert set(versions) == set(kinds)
    scores = {kind: float(version.tags["test_auc"]) for kind, version in versions.items()}
    champion = client.get_model_version_by_alias("test_classifier", "champion")
    # The best candidate (the first built on a tie) took the alias.
    winner = max(kinds, key=lambda kind: scores[kind])
    assert champion.version == versions[winner].version
    # The summary names what took the alias, which need not be the best trial's own model.
    summary = format_summary(refit_study.result)
    assert f"  registry    test_classifier v{champion.version} ({winner})\n" in summary
    best = refit_study.result.study.best_trial.number
    assert f"  single+refit trial {best} and its " in summary

    # Promoting again with an unreachable margin: a new refit version, the champion stays.
    stricter = ["registry.min_delta=0.5", "registry.ensemble=3"]
    again = promote_from_config(compose_config([*refit_study.overrides, *stricter]))
    assert again.notes == ["ensemble skipped: 1 usable complete trial(s), need 2"]
    new_refit = next(candidate for candidate in again.candidates if candidate.kind == "refit")
    assert new_refit.version not in {version.version for version in versions.values()}
    after = client.get_model_version_by_alias("test_classifier", "champion")
    assert after.version == champion.version
    assert client.get_model_version("test_classifier", new_refit.version).tags["candidate"] == (
        "refit"
    )


@pytest.mark.slow
def test_the_refit_average_is_the_mean_of_the_best_trial_and_its_refit(refit_study):
    client, result = refit_study.client, refit_study.result
    registered = client.search_model_versions("name='test_classifier'")
    # Promotion may have run more than once on this study: the latest average, and its refit.
    average = max(
        (version for version in registered if version.tags["candidate"] == "single+refit"),
        key=lambda version: int(version.version),
    )
    refit_run = average.tags["refit_run_id"]
    versions = {
        "single+refit": average,
        "refit": next(version for version in registered if version.run_id == refit_run),
        "single": next(version for version in registered if version.tags["candidate"] == "single"),
    }
    best = result.study.best_trial.number
    assert average.tags["trial_number"] == str(best)
    assert average.tags["refit_epochs"] == versions["refit"].tags["refit_epochs"]
    run = client.get_run(average.run_id)
    assert run.info.run_name == "single+refit"
    assert run.data.tags["mlflow.parentRunId"] == result.parent_run_id
    session = open_session(compose_config(refit_study.overrides), [], create=False)
    session.lock.close()
    data = session.context.base_data
    images = next(iter(build_batches(data, data.splits["test"], batch_size=60)))[0].numpy()

    def predicted(kind: str) -> np.ndarray:
        model = load_keras_model(f"models:/test_classifier/{versions[kind].version}")
        return model.predict(images, verbose=0)

    expected = (predicted("single") + predicted("refit")) / 2
    np.testing.assert_allclose(predicted("single+refit"), expected, atol=1e-6)

    # Off, the candidates are the best trial and its refit alone.
    plain = promote_from_config(
        compose_config([*refit_study.overrides, "registry.average_refit=false"])
    )
    assert [candidate.kind for candidate in plain.candidates] == ["single", "refit"]


@pytest.mark.slow
def test_refit_is_skipped_when_the_budget_cannot_hold_it(refit_study):
    session = open_session(compose_config(refit_study.overrides), [], create=False)
    session.lock.close()
    notes = []
    built = build_refit(
        trial=trial_record(session.study.best_trial),
        data=session.context.base_data,
        tracker=session.tracker,
        parent_run_id=session.parent_run_id,
        seconds_left=0.01,
        notes=notes,
    )
    assert built is None
    assert len(notes) == 1 and notes[0].startswith("refit skipped: about ")
    # Past the deadline by more than 5 % of the budget: skipped, and the note says so.
    arguments = {
        "trial": trial_record(session.study.best_trial),
        "data": session.context.base_data,
        "tracker": session.tracker,
        "parent_run_id": session.parent_run_id,
    }
    notes = []
    assert build_refit(**arguments, seconds_left=-10, budget_seconds=1, notes=notes) is None
    assert "min of search.timeout_minutes left and 0.0 min allowed past it (raise " in notes[0]
    # Short of the time left by less than 5 % of the budget (here an hour's 3 minutes): built.
    # The trial loop's last epoch ends up to one epoch late and can take the reserve's margin.
    notes = []
    built = build_refit(**arguments, seconds_left=0.01, budget_seconds=3600, notes=notes)
    assert built is not None and built.kind == "refit" and notes == []
    # A 30-minute budget with a quarter reserved: the trials get 22.5 minutes.
    assert trial_loop_seconds(30, 0.25) == 22.5 * 60
    assert session.reserve_fraction is None  # auto: sweep/loop_deadline.py
    # Nothing is held back for a refit that will not run: no promotion after the sweep.
    unpromoted = compose_config([*refit_study.overrides, "registry.promote_after_sweep=false"])
    no_refit = open_session(unpromoted, [], create=False)
    no_refit.lock.close()
    assert no_refit.reserve_fraction == 0.0

    # The ensemble trains nothing: past the deadline it is still built if it costs at most
    # 5 % of the budget (90 s of 30 minutes), never if it costs more.
    assert fits_budget(80, seconds_left=-10, budget_seconds=30 * 60)
    assert not fits_budget(100, seconds_left=-10, budget_seconds=30 * 60)
    assert fits_budget(100, seconds_left=20, budget_seconds=30 * 60)
    assert fits_budget(10_000, seconds_left=None, budget_seconds=None)

    # 10 s past the end of a 60 ms budget, promotion keeps to the best trial, saying why: the
    # refit and the ensemble are both beyond the 3 ms allowance. (A 30 s budget's 1.5 s was
    # not: this tiny study's refit can be estimated under it.)
    session.timeout_minutes = 0.001
    cfg = compose_config([*refit_study.overrides, "registry.ensemble=3"])
    outcome = study_outcome(session, session.study.best_trial)
    assert overrun_allowance(outcome.budget_seconds) == pytest.approx(0.003)
    final = promote_candidates(cfg, replace(outcome, deadline=time.monotonic() - 10))
    assert [candidate.kind for candidate in final.candidates] == ["single"]
    assert final.notes[0].startswith("refit skipped: about ")
    assert re.fullmatch(
        r"ensemble skipped: about \d+ s needed \(1 complete trial\(s\) to predict val\), "
        r"0 s of search.timeout_minutes left \(raise registry.refit_reserve\)",
        final.notes[1],
    ), final.notes[1]


@pytest.mark.slow
def test_a_budget_refit_trains_what_fits_and_says_so_when_that_is_short(refit_study):
    session = open_session(compose_config(refit_study.overrides), [], create=False)
    session.lock.close()
    # As if the trial had peaked at its epoch 50: its 51 epochs cannot fit a few seconds.
    record = replace(trial_record(session.study.best_trial), best_epoch=50)
    epoch = record.full_seconds / record.full_epochs * (260 / 200)  # on train+val
    common = {
        "trial": record,
        "data": session.context.base_data,
        "tracker": session.tracker,
        "parent_run_id": session.parent_run_id,
        "mode": "budget",
    }
    notes = []
    # One epoch is kept for the refit's scoring and logging: 1.5 epochs hold no training.
    assert build_refit(**common, seconds_left=1.5 * epoch, notes=notes) is None
    assert re.fullmatch(
        r"refit skipped: an epoch on 260 images takes about \d+ s; the \d+ s of "
        r"search.timeout_minutes left hold none besides the refit's scoring "
        r"\(raise registry.refit_reserve\)",
        notes[0],
    ), notes
    built = build_refit(**common, seconds_left=3 * epoch, notes=notes)
    trained = int(built.tags["refit_epochs"])
    assert 1 <= trained < 51 and built.tags["refit_mode"] == "budget"
    assert notes[1] == (
        f"refit: {trained} of trial {record.number}'s 51 epochs fit by the deadline; it "
        "trained those (registry.refit_reserve: a larger fraction holds more)"
    )
    assert built.description.endswith(f"{trained} epochs on train+val to the deadline")


@pytest.mark.slow
def test_an_ensemble_is_one_model_that_averages_its_members_and_predict_serves_it(
    refit_study, tmp_path, capsys
):
    cfg = compose_config(refit_study.overrides)
    session = open_session(cfg, [], create=False)
    session.lock.close()
    data, tracker = session.context.base_data, session.tracker
    best = session.study.best_trial
    refit_version = next(
        candidate.version
        for candidate in refit_study.result.final.candidates
        if candidate.kind == "refit"
    )
    members = [
        load_keras_model(best.user_attrs["model_uri"]),
        load_keras_model(f"models:/test_classifier/{refit_version}"),
    ]
    built = log_ensemble(
        [(best.number, members[0], 0.75), (99, members[1], 0.25)],
        data=data,
        tracker=tracker,
        parent_run_id=session.parent_run_id,
        config_yaml=OmegaConf.to_yaml(cfg, resolve=True),
        tags={},
        started=time.perf_counter(),
    )
    ensemble = mlflow.keras.load_model(built.model_uri)
    images = next(iter(build_batches(data, data.splits["test"], batch_size=60)))[0].numpy()
    expected = 0.75 * members[0].predict(images, verbose=0) + 0.25 * members[1].predict(
        images, verbose=0
    )
    np.testing.assert_allclose(ensemble.predict(images, verbose=0), expected, atol=1e-6)
    assert built.tags["ensemble_weights"] == "0.75,0.25"

    candidate = register_candidate(
        built, model_name="ensemble_classifier", tracker=tracker, data=data, tags={}
    )
    promotion = promote(
        tracker=tracker,
        model_name="ensemble_classifier",
        version=candidate.version,
        test_metrics=candidate.test_metrics,
        data=data,
        metric="auc",
        min_delta=0.0,
        force=False,
        champion_alias="champion",
        challenger_alias="challenger",
    )
    assert promotion.alias == "champion"
    output = tmp_path / "predictions.csv"
    folder = refit_study.overrides[0].split("=", 1)[1] + "/test"
    arguments = [folder, "--output", str(output), *refit_study.overrides]
    assert predict_main([*arguments, "registry.model_name=ensemble_classifier"]) == 0
    assert "model: ensemble_classifier v1 (16x16 grayscale)" in capsys.readouterr().out
    with open(output, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 60 and list(rows[0])[2:] == ["p_digit_3", "p_digit_8"]


def _two_columns(*scores):
    return class_probabilities(np.array(scores, dtype="float64").reshape(-1, 1))


def test_greedy_selection_mixes_members_that_complement_each_other():
    labels = np.array([0, 1, 1, 0])
    # Each alone ranks one pair wrong (AUC 0.75); their average ranks all right (1.0).
    first = _two_columns(0.3, 0.9, 0.2, 0.1)
    second = _two_columns(0.6, 0.5, 0.9, 0.2)
    wrong = _two_columns(0.9, 0.1, 0.1, 0.9)
    weights = greedy_selection([first, second, wrong], labels, size=4)
    assert set(weights) == {0, 1}
    assert sum(weights.values()) == pytest.approx(1.0)


def test_greedy_selection_picks_the_same_member_again_when_nothing_else_helps():
    labels = np.array([0, 1])
    members = [_two_columns(0.4, 0.6), _two_columns(0.1, 0.9), _two_columns(0.9, 0.1)]
    assert greedy_selection(members, labels, size=3, metric="val_loss", mode="min") == {1: 1.0}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("ensemble", -1, "registry.ensemble must be 0 (no ensemble) or a number of greedy steps"),
        ("ensemble", True, "registry.ensemble must be 0"),
        ("ensemble", "3", "registry.ensemble must be 0"),
        ("refit", "full", "registry.refit must be one of none, train_val, budget, got 'full'"),
        ("refit", "stretch", "registry.refit must be one of none, train_val, budget, got 'str"),
        ("average_refit", "yes", "registry.average_refit must be true or false, got 'yes'"),
        ("average_refit", 1, "registry.average_refit must be true or false, got 1"),
        ("refit_reserve", 1.5, "registry.refit_reserve must be auto or a fraction of"),
        ("refit_reserve", True, "registry.refit_reserve must be auto or a fraction of"),
        (
            "refit_reserve",
            "automatic",
            "registry.refit_reserve must be auto or a fraction of search.timeout_minutes in "
            "[0, 1), got 'automatic'",
        ),
    ],
)
def test_bad_registry_values_are_one_line(key, value, message):
    registry = compose_config().registry
    registry[key] = value
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        final_model_settings(registry)
    assert "\n" not in str(error.value)


def test_time_is_held_back_only_for_a_refit_that_will_run():
    # registry.refit_reserve is the trial loop's gift to the refit; without a refit the
    # trials keep all of search.timeout_minutes.
    refit = ["registry.refit=train_val", "registry.refit_reserve=0.4"]
    with_refit = final_model_settings(compose_config(refit).registry)
    assert trial_loop_seconds(10, with_refit.reserve_fraction) == pytest.approx(6 * 60)
    without = final_model_settings(compose_config([*refit, "registry.refit=none"]).registry)
    assert trial_loop_seconds(10, without.reserve_fraction) == 10 * 60
    assert trial_loop_seconds(None, with_refit.reserve_fraction) is None
