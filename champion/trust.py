"""Each final-model candidate made trustworthy before it is registered: temperature-scaled on
val (`registry.calibrate`), its decision threshold chosen on val (`registry.threshold`), and
its report (reliability, ECE, the ROC's operating point) under `candidate/` in its run.

A calibrated model is logged in a nested run `calibrated` under the candidate's run, which
becomes the version's run; its config and class names are found on the run above it.
"""

from dataclasses import replace

from omegaconf import DictConfig

from champion.final_models import BuiltModel
from pipelines.calibration.settings import TrustSettings, trust_settings
from pipelines.calibration.temperature import calibrate_model
from pipelines.data.datasets import ImageFolderData, build_batches
from pipelines.evaluate import predict_split
from pipelines.reports.candidate_report import build_candidate_report
from pipelines.reports.trust_figures import operating_point_line
from pipelines.tracking import RunStatus, Tracker
from pipelines.tracking.keras_logging import load_keras_model
from pipelines.tracking.reports import log_report_files


def trusted_candidates(
    built: list[BuiltModel],
    *,
    registry: DictConfig,
    data: ImageFolderData,
    tracker: Tracker,
    notes: list[str],
) -> list[BuiltModel]:
    """The candidates calibrated (if asked) and tagged with their decision and ECE."""
    settings = trust_settings(registry)
    if data.num_classes != 2 and settings.threshold.kind != "argmax":
        notes.append(operating_point_line(data.class_names, str(settings.threshold)))
    return [_trusted(model, settings=settings, data=data, tracker=tracker) for model in built]


def _calibration_tags(temperature: float, before: float) -> dict[str, str]:
    return {"temperature": f"{temperature:.6f}", "val_ece_uncalibrated": f"{before:.6f}"}


def _earlier_calibration(model: BuiltModel, tracker: Tracker):
    """The run `calibrated` an earlier promotion made of this very model, if any: promoting
    again then finds the same version instead of registering a new one."""
    runs = tracker.find_runs(
        f"tags.mlflow.parentRunId = '{model.run_id}' and tags.role = 'calibrated' "
        f"and tags.calibrated_from = '{model.model_uri}' and attributes.status = 'FINISHED'"
    )
    return runs[0] if runs else None


def _calibrated(
    model: BuiltModel, keras_model, *, data: ImageFolderData, tracker: Tracker
) -> tuple[object, str, str, dict[str, str]]:
    """(calibrated model, its URI, its run, tags): logged in a run `calibrated` under the
    candidate's run, which stays as it ended."""
    earlier = _earlier_calibration(model, tracker)
    if earlier is not None:
        metrics, model_uri = earlier.data.metrics, earlier.data.tags["model_uri"]
        tags = _calibration_tags(metrics["temperature"], metrics["val_ece_uncalibrated"])
        return load_keras_model(model_uri), model_uri, earlier.info.run_id, tags
    val = data.splits["val"]
    calibrated, temperature, before, _ = calibrate_model(
        keras_model, predict_split(keras_model, data, val), val.labels
    )
    run_id = tracker.start_run(
        "calibrated",
        parent_run_id=model.run_id,
        tags={"role": "calibrated", "calibrated_from": model.model_uri},
    )
    try:
        sample_images = next(iter(build_batches(data, val, batch_size=4)))[0].numpy()
        model_uri = tracker.log_keras_model(run_id, calibrated, sample_images)
        tracker.log_metrics(run_id, {"temperature": temperature, "val_ece_uncalibrated": before})
        tracker.set_tags(run_id, {"model_uri": model_uri})
    except Exception as error:
        tracker.end_run(run_id, RunStatus.FAILED, f"calibrated: {error}".splitlines()[0])
        raise
    tracker.end_run(run_id, RunStatus.FINISHED)
    return calibrated, model_uri, run_id, _calibration_tags(temperature, before)


def _trusted(
    model: BuiltModel, *, settings: TrustSettings, data: ImageFolderData, tracker: Tracker
) -> BuiltModel:
    keras_model = load_keras_model(model.model_uri)
    model_uri, run_id, tags = model.model_uri, model.run_id, {}
    if settings.calibrate:
        keras_model, model_uri, run_id, tags = _calibrated(
            model, keras_model, data=data, tracker=tracker
        )
    report, decision = build_candidate_report(
        model=keras_model, data=data, rule=settings.threshold
    )
    # Into the candidate's own run, beside what it logged; prefixed, so a refit's own report
    # metrics (val_ece, ...) keep their single value.
    log_report_files(tracker, model.run_id, figures=report.figures, tables=report.tables)
    tracker.log_metrics(
        model.run_id, {f"candidate_{name}": value for name, value in report.metrics.items()}
    )
    ece = {name: f"{value:.6f}" for name, value in report.metrics.items() if name.endswith("_ece")}
    tags |= {**ece, **decision.tags()}
    return replace(model, model_uri=model_uri, run_id=run_id, tags={**model.tags, **tags})
