"""Each final-model candidate made trustworthy before it is registered: temperature-scaled on
val (`registry.calibrate`), its decision threshold chosen on val (`registry.threshold`), and
its report (reliability, ECE, the ROC's operating point) in a nested run `candidate <kind>`.

The calibrated model is logged in that run, which becomes the version's run; its config and
class names are still found on the run above it.
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


def _trusted(
    model: BuiltModel, *, settings: TrustSettings, data: ImageFolderData, tracker: Tracker
) -> BuiltModel:
    run_id = tracker.start_run(
        f"candidate {model.kind}", parent_run_id=model.run_id, tags={"role": "candidate_report"}
    )
    try:
        keras_model = load_keras_model(model.model_uri)
        tags, model_uri = {}, model.model_uri
        if settings.calibrate:
            val = data.splits["val"]
            keras_model, temperature, before, after = calibrate_model(
                keras_model, predict_split(keras_model, data, val), val.labels
            )
            sample_images = next(iter(build_batches(data, val, batch_size=4)))[0].numpy()
            model_uri = tracker.log_keras_model(run_id, keras_model, sample_images)
            tags |= {
                "temperature": f"{temperature:.6f}",
                "val_ece_uncalibrated": f"{before:.6f}",
            }
        report, decision = build_candidate_report(
            model=keras_model, data=data, rule=settings.threshold
        )
        log_report_files(tracker, run_id, figures=report.figures, tables=report.tables)
        tracker.log_metrics(run_id, report.metrics)
        ece = {name: f"{value:.6f}" for name, value in report.metrics.items()
               if name.endswith("_ece")}  # fmt: skip
        tags |= {**ece, **decision.tags()}
        tracker.set_tags(run_id, tags)
    except Exception as error:
        tracker.end_run(run_id, RunStatus.FAILED, f"candidate: {error}".splitlines()[0])
        raise
    tracker.end_run(run_id, RunStatus.FINISHED)
    calibrated_run = run_id if settings.calibrate else model.run_id
    return replace(model, model_uri=model_uri, run_id=calibrated_run, tags={**model.tags, **tags})
