"""The study's MLflow run: every trial's run is nested under it."""

import optuna

from pipelines.errors import ImgsweepError
from pipelines.tracking import Tracker
from pipelines.urls import mask_password


def _start_or_resume(
    tracker: Tracker, study: optuna.Study, *, storage: str, sampler: str, pruner: str
) -> str:
    """Reused when the study resumes (and its run still exists), created the first time."""
    run_id = study.user_attrs.get("mlflow_parent_run_id")
    if run_id and tracker.run_status(run_id):
        tracker.resume_run(run_id)
        return run_id
    run_id = tracker.start_run(
        f"study-{study.study_name}",
        tags={
            "study": study.study_name,
            "storage": mask_password(storage),
            "sampler": sampler,
            "pruner": pruner,
            "metric": study.user_attrs["metric"],
            "role": "study",
        },
    )
    study.set_user_attr("mlflow_parent_run_id", run_id)
    return run_id


def study_parent_run(
    tracker: Tracker,
    study: optuna.Study,
    *,
    storage: str,
    sampler: str,
    pruner: str,
    create: bool,
) -> str:
    """The study's run id: the sweep (`create`) starts or resumes it, a worker joins it."""
    if create:
        return _start_or_resume(tracker, study, storage=storage, sampler=sampler, pruner=pruner)
    run_id = study.user_attrs.get("mlflow_parent_run_id")
    if not run_id:
        raise ImgsweepError(
            f"study '{study.study_name}' has no MLflow parent run; start it with `make sweep`"
        )
    return run_id
