"""What a person opens in MLflow: each full stage's val report, and the study's own report."""

import csv
import io

import keras
import numpy as np
import pytest
from mlflow import MlflowClient
from PIL import Image

from pipelines.models import build_model
from pipelines.plan import load_data, plan_from_config
from pipelines.reports import build_stage_report
from pipelines.reports.stage_report import grid_indices

STAGE_FIGURES = {
    "training_curves",
    "confusion_matrix",
    "roc_curve",
    "precision_recall",
    "val_predictions",
}
STUDY_FIGURES = {"optimization_history", "param_importances", "parallel_coordinate", "slice"}


def _client(mlruns) -> MlflowClient:
    uri = f"sqlite:///{mlruns / 'mlflow.db'}"
    return MlflowClient(uri, registry_uri=uri)


def _text(client, run_id, path, tmp_path) -> str:
    return open(client.download_artifacts(run_id, path, str(tmp_path))).read()


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _stage_runs(client, study, stage):
    runs = []
    for trial in study.get_trials():
        runs += client.search_runs(
            [client.get_run(trial.user_attrs["mlflow_run_id"]).info.experiment_id],
            filter_string=(
                f"tags.mlflow.parentRunId = '{trial.user_attrs['mlflow_run_id']}' "
                f"and tags.stage = '{stage}'"
            ),
        )
    return runs


@pytest.mark.slow
def test_every_full_stage_logs_its_val_report(finished_study, tmp_path):
    client = _client(finished_study.mlruns)
    full_runs = _stage_runs(client, finished_study.result.study, "full")
    assert len(full_runs) == 2
    for run in full_runs:
        run_id = run.info.run_id
        assert "report_error" not in run.data.tags
        listed = {item.path for item in client.list_artifacts(run_id, "report")}
        assert {f"report/{name}.png" for name in STAGE_FIGURES} <= listed
        for name in STAGE_FIGURES:
            path = client.download_artifacts(run_id, f"report/{name}.png", str(tmp_path))
            with Image.open(path) as image:
                assert image.format == "PNG" and min(image.size) > 200

        matrix_rows = _rows(_text(client, run_id, "report/confusion_matrix.csv", tmp_path))
        assert matrix_rows[0] == ["true \\ predicted", "digit_3", "digit_8"]
        matrix = np.array([[int(count) for count in row[1:]] for row in matrix_rows[1:]])
        assert matrix.sum() == 60  # the val split: 30 images per class
        assert matrix.sum(axis=1).tolist() == [30, 30]
        # The report scores the restored best epoch: its diagonal is that epoch's val accuracy.
        best_epoch = int(run.data.metrics["best_epoch"])
        history = client.get_metric_history(run_id, "val_accuracy")
        best_accuracy = next(metric.value for metric in history if metric.step == best_epoch)
        assert np.trace(matrix) == round(best_accuracy * 60)

        table = {
            row[0]: row[1:]
            for row in _rows(_text(client, run_id, "report/classification_report.csv", tmp_path))
        }
        assert list(table) == [
            "class", "digit_3", "digit_8", "macro avg", "weighted avg", "accuracy"
        ]  # fmt: skip
        assert table["digit_3"][1] == f"{matrix[0, 0] / 30:.4f}"  # recall of digit_3
        assert float(table["macro avg"][2]) == pytest.approx(
            run.data.metrics["val_macro_f1"], abs=1e-4
        )
        assert {"val_weighted_precision", "val_weighted_recall", "val_weighted_f1"} <= set(
            run.data.metrics
        )
        assert run.data.metrics["report_seconds"] < 30


@pytest.mark.slow
def test_the_study_run_has_its_plots_and_a_row_per_trial(finished_study, tmp_path):
    client = _client(finished_study.mlruns)
    study = finished_study.result.study
    parent_id = finished_study.result.parent_run_id
    listed = {item.path for item in client.list_artifacts(parent_id, "study")}
    assert listed == {f"study/{name}.png" for name in STUDY_FIGURES}
    rows = _rows(_text(client, parent_id, "trials.csv", tmp_path))
    header, trials = rows[0], rows[1:]
    assert header[:5] == ["number", "state", "reason", "val_auc", "mlflow_run_id"]
    assert {"learning_rate", "optimizer", "dropout_rate"} <= set(header[5:])
    assert [row[0] for row in trials] == ["0", "1"]
    # What the pruner's steps counted (search.pruner.resource, shipped as epochs).
    assert [row[header.index("pruner_resource")] for row in trials] == ["epochs", "epochs"]

    parent = client.get_run(parent_id)
    best = study.best_trial
    assert parent.data.tags["best_trial_number"] == str(best.number)
    assert parent.data.tags["best_run_id"] == best.user_attrs["mlflow_run_id"]
    for trial, row in zip(study.get_trials(), trials, strict=True):
        run_id = trial.user_attrs["mlflow_run_id"]
        # Both ways: the Optuna trial names its run, the run names its trial.
        assert client.get_run(run_id).data.tags["trial_number"] == str(trial.number)
        assert row[1:5] == [trial.state.name, "", f"{trial.value:.6f}", run_id]
        assert float(row[header.index("learning_rate")]) == trial.params["learning_rate"]


def test_multiclass_report_has_a_curve_per_class_and_a_full_matrix(
    multiclass_digits, tmp_path, make_config
):
    cfg, _ = make_config(multiclass_digits, tmp_path / "mlruns")
    plan, data = plan_from_config(cfg), load_data(cfg)
    keras.utils.set_random_seed(0)
    model = build_model(  # untrained: the report's shape does not depend on how good it is
        name=plan.model_name,
        input_shape=data.input_shape,
        num_classes=data.num_classes,
        preprocessing=plan.preprocessing,
        **plan.model_settings,
    )
    series = {"loss": [(0, 1.0), (1, 0.8)], "val_auc": [(0, 0.6), (1, 0.7)], "lr": [(0, 1e-3)]}
    report = build_stage_report(model=model, data=data, epoch_series=series)

    matrix_rows = _rows(report.tables["report/confusion_matrix.csv"])
    assert matrix_rows[0][1:] == ["digit_0", "digit_1", "digit_2"]
    assert sum(int(count) for row in matrix_rows[1:] for count in row[1:]) == 90
    roc_axes = report.figures["report/roc_curve.png"].axes[0]
    assert [line.get_label() for line in roc_axes.lines] == [
        "chance", "digit_0", "digit_1", "digit_2"
    ]  # fmt: skip
    assert "macro" in roc_axes.get_title()
    (grid_axes,) = report.figures["report/val_predictions.png"].axes
    assert len(grid_axes.images) == 16
    assert 0 <= report.metrics["val_macro_f1"] <= 1


def test_the_grid_shows_the_most_confident_mistakes_first():
    labels = np.array([0, 0, 1, 1, 1, 0])
    predicted = np.array([1, 0, 0, 1, 0, 0])
    confidences = np.array([0.6, 0.9, 0.95, 0.8, 0.7, 0.55])
    shown = grid_indices(labels, predicted, confidences, size=4, seed=0)
    assert shown[:2].tolist() == [2, 4]  # wrong, by confidence; at most half the grid
    assert set(shown[2:]) <= {1, 3, 5} and len(shown) == 4
    only_wrong = grid_indices(labels, 1 - labels, confidences, size=4, seed=0)
    assert only_wrong.tolist() == [2, 1, 3, 4]  # nothing right: the grid fills with mistakes
