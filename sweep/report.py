"""The study's report on its MLflow parent run: every trial as CSV, and Optuna's plots."""

import csv
import io
import warnings

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import optuna
from matplotlib.figure import Figure
from optuna.visualization import matplotlib as optuna_plots

from pipelines.tracking import Tracker
from pipelines.tracking.reports import log_report_files, record_report_failure

TrialState = optuna.trial.TrialState
# Artifact path → (Optuna's plot, completed trials it needs, whether it plots parameters).
STUDY_PLOTS = {
    "study/optimization_history.png": (optuna_plots.plot_optimization_history, 1, False),
    "study/param_importances.png": (optuna_plots.plot_param_importances, 2, True),
    "study/parallel_coordinate.png": (optuna_plots.plot_parallel_coordinate, 1, True),
    "study/slice.png": (optuna_plots.plot_slice, 1, True),
}


def trials_table(study: optuna.Study) -> str:
    """All trials as CSV: number, state, reason, the study's metric (its name heads the
    column), run id, what its pruner steps counted (search.pruner.resource), then one column
    per param."""
    trials = study.get_trials(deepcopy=False)
    param_names = sorted({name for trial in trials for name in trial.params})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    metric = study.user_attrs.get("metric", "value")
    writer.writerow(
        ["number", "state", "reason", metric, "mlflow_run_id", "pruner_resource", *param_names]
    )
    for trial in trials:
        writer.writerow(
            [
                trial.number,
                trial.state.name,
                trial.user_attrs.get("reason", ""),
                "" if trial.value is None else f"{trial.value:.6f}",
                trial.user_attrs.get("mlflow_run_id", ""),
                trial.user_attrs.get("pruner_resource", ""),
                *(trial.params.get(name, "") for name in param_names),
            ]
        )
    return buffer.getvalue()


def study_figures(study: optuna.Study) -> dict[str, Figure]:
    """Optuna's plots that the study has enough completed trials (and searched params) for."""
    # Optuna draws with pyplot: off-screen, whatever the display (set here, not on import).
    matplotlib.use("Agg")
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    searched = {name for trial in complete for name in trial.params}
    figures = {}
    for path, (plot, needed, of_parameters) in STUDY_PLOTS.items():
        if len(complete) < needed or (of_parameters and not searched):
            continue
        # Optuna warns that these are experimental, and about axes with a single value.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            axes = plot(study)
        figure = np.ravel(axes)[0].figure
        plt.close(figure)  # out of pyplot's registry; the Figure itself still saves
        if plot is optuna_plots.plot_parallel_coordinate:
            figure.set_size_inches(max(6.4, 1.5 * (len(searched) + 1)), 5)
        figures[path] = figure
    return figures


def log_study_report(tracker: Tracker, run_id: str, study: optuna.Study) -> None:
    """trials.csv, then the plots under `study/`; a plot that fails is recorded, not raised."""
    tracker.log_text(run_id, trials_table(study), "trials.csv")
    try:
        log_report_files(
            tracker, run_id, figures=study_figures(study), tables={}, trim_figures=True
        )
    except Exception as error:
        record_report_failure(tracker, run_id, error)
