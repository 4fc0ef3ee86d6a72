"""Calibration and the decision threshold: ECE, temperature scaling, the threshold rules."""

import keras
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pipelines.calibration.ece import expected_calibration_error, reliability_bins
from pipelines.calibration.temperature import TemperatureScaling, calibrate_model
from pipelines.calibration.threshold import (
    choose_threshold,
    operating_point,
    parse_rule,
    predicted_classes,
)
from pipelines.config import compose_config
from pipelines.ensemble import build_ensemble_model
from pipelines.errors import ConfigError
from pipelines.evaluate import class_probabilities
from sweep.run import run_sweep
from tests.conftest import small_overrides
from tests.registered import register_champion, untrained_model

FEATURES = 6


def _overconfident(classes: int, seed: int = 0):
    """A linear model whose logits are 5× the ones that generated its labels, and its data."""
    rng = np.random.default_rng(seed)
    true_weights = rng.normal(size=(FEATURES, 1 if classes == 2 else classes))
    features = rng.normal(size=(3000, FEATURES)).astype("float32")
    logits = features @ true_weights
    if classes == 2:
        labels = (rng.uniform(size=len(features)) < 1 / (1 + np.exp(-logits[:, 0]))).astype(int)
    else:
        chances = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        labels = np.array([rng.choice(classes, p=row) for row in chances])
    inputs = keras.Input(shape=(FEATURES,), name="image")
    activation = "sigmoid" if classes == 2 else "softmax"
    outputs = keras.layers.Dense(true_weights.shape[1], activation=activation, name="output")(
        inputs
    )
    model = keras.Model(inputs, outputs, name=f"linear_{seed}")
    model.get_layer("output").set_weights([5 * true_weights, np.zeros(true_weights.shape[1])])
    return model, features, labels


def _probabilities(model, features):
    return class_probabilities(np.asarray(model.predict(features, verbose=0)))


def test_equal_mass_bins_hold_equal_counts_and_ece_is_their_weighted_gap():
    labels = np.array([0, 0, 1, 1, 1, 0, 1, 1])
    confidence_of_one = np.array([0.1, 0.2, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95])
    probabilities = np.column_stack([1 - confidence_of_one, confidence_of_one])
    bins = reliability_bins(labels, probabilities, bins=4)
    assert bins.count.tolist() == [2, 2, 2, 2]
    # Top-label: 0.1 → confidence 0.9 in class 0 (right); 0.85 → 0.85 in class 1 (wrong).
    expected_gaps = np.abs(bins.accuracy - bins.confidence)
    assert bins.ece == pytest.approx(expected_gaps.mean())
    perfectly_sure_and_right = np.eye(2)[labels]
    assert expected_calibration_error(labels, perfectly_sure_and_right) == 0


@pytest.mark.parametrize("classes", [2, 4])
def test_temperature_lowers_val_ece_and_keeps_the_ranking(classes, tmp_path):
    model, features, labels = _overconfident(classes)
    val, test = slice(0, 1500), slice(1500, None)
    before_val = _probabilities(model, features[val])
    calibrated, temperature, ece_before, ece_after = calibrate_model(
        model, before_val, labels[val]
    )
    assert temperature > 2  # it was made 5x over-confident: the fit softens it
    assert ece_after < ece_before / 2
    after_val = _probabilities(calibrated, features[val])
    assert expected_calibration_error(labels[val], after_val) == pytest.approx(ece_after, abs=1e-3)
    # Held-out images gain as well, and no ranking or decision moves.
    before_test = _probabilities(model, features[test])
    path = tmp_path / "calibrated.keras"
    calibrated.save(path)
    after_test = _probabilities(keras.models.load_model(path), features[test])
    assert expected_calibration_error(labels[test], after_test) < expected_calibration_error(
        labels[test], before_test
    )
    # Each image's classes keep their order (so its decision), and for two classes the images
    # keep theirs (so the AUC).
    np.testing.assert_array_equal(
        np.argsort(after_test, axis=1, kind="stable"),
        np.argsort(before_test, axis=1, kind="stable"),
    )
    if classes == 2:
        assert roc_auc_score(labels[test], after_test[:, 1]) == pytest.approx(
            roc_auc_score(labels[test], before_test[:, 1]), abs=1e-6
        )
    # The single model keeps built-in layers only: nothing to register to load it.
    assert not any(isinstance(layer, TemperatureScaling) for layer in calibrated.layers)


def test_an_ensemble_is_calibrated_by_a_layer_that_plain_keras_loads(tmp_path):
    members = [_overconfident(2, seed=seed)[0] for seed in (0, 0)]
    _, features, labels = _overconfident(2)
    ensemble = build_ensemble_model(
        members, [0.5, 0.5], input_shape=(FEATURES,), member_names=["trial_0", "trial_1"]
    )
    before = _probabilities(ensemble, features)
    calibrated, temperature, ece_before, ece_after = calibrate_model(ensemble, before, labels)
    assert isinstance(calibrated.layers[-1], TemperatureScaling)
    calibrated.save(tmp_path / "ensemble.keras")
    loaded = keras.models.load_model(tmp_path / "ensemble.keras")
    after = _probabilities(loaded, features)
    assert ece_after < ece_before / 2
    assert expected_calibration_error(labels, after) == pytest.approx(ece_after, abs=1e-3)
    assert roc_auc_score(labels, after[:, 1]) == pytest.approx(roc_auc_score(labels, before[:, 1]))


# A known ROC: six negatives and five positives.
NEGATIVES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
POSITIVES = [0.35, 0.55, 0.7, 0.8, 0.9]
KNOWN_LABELS = np.array([0] * len(NEGATIVES) + [1] * len(POSITIVES))
KNOWN_SCORES = np.array(NEGATIVES + POSITIVES)


@pytest.mark.parametrize(
    ("rule", "threshold", "recall", "specificity"),
    [
        ("argmax", 0.5, 0.8, 4 / 6),
        # Youden's J: 0.8 + 5/6 - 1 at 0.55 beats 0.6 + 1 - 1 at 0.7 and 1 + 0.5 - 1 at 0.35.
        ("youden", 0.55, 0.8, 5 / 6),
        # The highest threshold that keeps 4 of 5 positives: the best specificity at recall 0.8.
        ("recall:0.8", 0.55, 0.8, 5 / 6),
        ("recall:1", 0.35, 1.0, 0.5),
        # The lowest threshold that clears 3 of 6 negatives: the best recall at specificity 0.5.
        ("specificity:0.5", 0.35, 1.0, 0.5),
        ("specificity:1", 0.7, 0.6, 1.0),
    ],
)
def test_each_rule_picks_the_operating_point_it_names(rule, threshold, recall, specificity):
    chosen = choose_threshold(parse_rule(rule), KNOWN_LABELS, KNOWN_SCORES)
    assert chosen == pytest.approx(threshold)
    point = operating_point(KNOWN_LABELS, KNOWN_SCORES, chosen)
    assert (point.recall, point.specificity) == pytest.approx((recall, specificity))


def test_predicted_classes_follow_the_threshold_for_two_classes_only():
    probabilities = np.array([[0.7, 0.3], [0.4, 0.6], [0.9, 0.1]])
    assert predicted_classes(probabilities, None).tolist() == [0, 1, 0]
    assert predicted_classes(probabilities, 0.25).tolist() == [1, 1, 0]
    three = np.array([[0.2, 0.5, 0.3]])
    assert predicted_classes(three, 0.9).tolist() == [1]


def test_with_more_classes_a_rule_leaves_the_decision_to_argmax_and_says_so():
    from pipelines.reports.trust_figures import operating_point_line
    from pipelines.reports.trust_report import decide

    probabilities = np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
    decision = decide(parse_rule("recall:0.9"), {"val": (np.array([1, 0]), probabilities)})
    assert decision.threshold is None and decision.tags() == {"decision_rule": "recall:0.9"}
    assert operating_point_line(["a", "b", "c"], "recall:0.9") == (
        "registry.threshold recall:0.9 applies to two classes; these 3 classes are decided by "
        "argmax"
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("registry.threshold=recall:1.5", "registry.threshold 'recall:1.5': the target must be"),
        ("registry.threshold=f1", "registry.threshold 'f1' is unknown; choose one of: argmax"),
        ("registry.threshold=specificity:high", "the target must be in .0, 1.; choose one"),
        ("registry.calibrate=maybe", "registry.calibrate must be true or false, got 'maybe'"),
    ],
)
def test_bad_values_stop_the_sweep_before_any_work(binary_digits, tmp_path, override, message):
    overrides = small_overrides(binary_digits, tmp_path / "mlruns") + [override]
    with pytest.raises(ConfigError, match=message) as raised:
        run_sweep(compose_config(overrides), overrides)
    # One line, which the command line prints as `imgsweep: error: ...` (test_config_errors).
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()


def _rows(path):
    import csv

    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def test_predict_applies_the_threshold_stored_on_the_version(
    binary_digits, tmp_path, make_config, capsys
):
    from champion.predict import main as predict_main
    from pipelines.evaluate import predict_split
    from pipelines.plan import load_data

    cfg, overrides = make_config(binary_digits, tmp_path / "mlruns")
    data = load_data(cfg)
    model = untrained_model(cfg, data)
    scores = predict_split(model, data, data.splits["test"])[:, 1]
    # A threshold that argmax would never use: a third of the images above it.
    threshold = float(np.quantile(scores, 2 / 3))
    register_champion(
        cfg, model, data,
        {"decision_rule": "specificity:0.66", "decision_threshold": f"{threshold:.6f}"},
    )  # fmt: skip
    output = tmp_path / "predictions.csv"
    assert predict_main([str(binary_digits / "test"), "--output", str(output), *overrides]) == 0
    rows = _rows(output)
    called = [row["predicted_class"] == "digit_8" for row in rows]
    expected = [float(row["p_digit_8"]) >= round(threshold, 6) for row in rows]
    assert called == expected
    assert called != [float(row["p_digit_8"]) > 0.5 for row in rows]  # not argmax
    printed = capsys.readouterr().out
    assert f"decision threshold {threshold:.4f} on p(digit_8)" in printed
    assert f"digit_8  {sum(called)}" in printed
    # The served model (what `make serve` and mlflow.pyfunc run) decides by the same threshold.
    import mlflow

    served = mlflow.pyfunc.load_model(f"models:/{cfg.registry.model_name}@champion")
    images = data.images(data.splits["test"])
    answers = served.predict([{"pixels": image.tolist()} for image in images])
    served_calls = [answer["predicted_class"] == "digit_8" for answer in answers]
    assert served_calls == [answer["p_digit_8"] >= threshold for answer in answers]
    assert served_calls != [answer["p_digit_8"] > 0.5 for answer in answers]


def test_the_full_stage_report_shows_calibration_and_the_operating_point(
    binary_digits, tmp_path, make_config
):
    from pipelines.plan import load_data
    from pipelines.reports import build_stage_report

    cfg, _ = make_config(binary_digits, tmp_path / "mlruns")
    data = load_data(cfg)
    model = untrained_model(cfg, data)
    report = build_stage_report(
        model=model, data=data, epoch_series={}, threshold_rule=parse_rule("recall:0.9")
    )
    assert {"report/reliability.png", "report/val_gradcam.png"} <= set(report.figures)
    assert {"val_ece", "test_ece", "decision_threshold", "gradcam_seconds"} <= set(report.metrics)
    assert report.metrics["test_recall_at_threshold"] >= 0.5
    legend = report.figures["report/roc_curve.png"].axes[0].get_legend()
    assert any("recall:0.9: threshold" in text.get_text() for text in legend.get_texts())
    assert report.metrics["gradcam_seconds"] < 5


@pytest.mark.slow
def test_a_sweep_registers_calibrated_candidates_with_their_threshold(binary_digits, tmp_path):
    import mlflow

    from pipelines.evaluate import predict_split
    from pipelines.plan import load_data
    from sweep.summary import budget_line

    overrides = small_overrides(
        binary_digits, tmp_path / "mlruns",
        **{"search.n_trials": 2, "registry.ensemble": 3, "registry.calibrate": "true",
           "registry.threshold": "youden"},
    )  # fmt: skip
    cfg = compose_config(overrides)
    result = run_sweep(cfg, overrides)
    client = mlflow.MlflowClient()
    versions = client.search_model_versions("name='test_classifier'")
    kinds = {version.tags["candidate"] for version in versions}
    assert "single" in kinds
    data = load_data(cfg)
    for version in versions:
        tags = version.tags
        assert float(tags["temperature"]) > 0 and tags["decision_rule"] == "youden"
        assert 0 <= float(tags["decision_threshold"]) <= 1
        # The registered model itself gives the calibrated probabilities its tags describe.
        model = mlflow.keras.load_model(f"models:/test_classifier/{version.version}")
        val = predict_split(model, data, data.splits["val"])
        assert expected_calibration_error(data.splits["val"].labels, val) == pytest.approx(
            float(tags["val_ece"]), abs=1e-4
        )
        candidate_run = client.get_run(version.run_id).data.tags["mlflow.parentRunId"]
        artifacts = {item.path for item in client.list_artifacts(candidate_run, "candidate")}
        assert {"candidate/reliability.png", "candidate/roc_curve.png"} <= artifacts
    assert "Grad-CAM" in budget_line(result.study)
    # `make promote` again: the same calibrated models, so no new versions.
    from sweep.promote import promote_from_config

    again = promote_from_config(compose_config(overrides))
    assert len(client.search_model_versions("name='test_classifier'")) == len(versions)
    assert again.promotion.version == result.promotion.version
