"""`make data-report` (python -m pipelines.quality [overrides]): the report on its own run."""

import sys

from pipelines.config import compose_config, data_name, resolve_path
from pipelines.console import run_command, start_tensorflow
from pipelines.quality.settings import quality_settings


def data_report(overrides: list[str]) -> None:
    """Compose the config, check the data, print the summary, log a `data-report` run."""
    cfg = compose_config(overrides)
    settings = quality_settings(cfg)  # a bad value: one line before TensorFlow starts
    start_tensorflow(**cfg.compute)
    # Imported after: they import TensorFlow, which start_tensorflow keeps quiet.
    from pipelines.plan import load_data, tracking_from_config
    from pipelines.quality.run import data_quality_report
    from pipelines.quality.summary import console_lines
    from pipelines.tracking import RunStatus
    from pipelines.tracking.quality import log_quality_report

    data = load_data(cfg)
    report, folder, cached = data_quality_report(
        data,
        settings,
        cache_dir=resolve_path(cfg.tracking.mlruns_dir) / "cache",
        title=f"Data quality: {data_name(cfg.data.get('root'))}",
    )
    tracker = tracking_from_config(cfg)
    run_id = tracker.start_run("data-report", tags={"role": "data-report"})
    log_quality_report(tracker, run_id, report=report, folder=folder)
    tracker.end_run(run_id, RunStatus.FINISHED)
    for line in console_lines(report, cached=cached, report_path=str(folder / "report.html")):
        print(line, flush=True)
    print(f"data quality: MLflow run {run_id} (artifacts data_quality/)", flush=True)


if __name__ == "__main__":
    sys.exit(run_command(lambda: data_report(sys.argv[1:])))
