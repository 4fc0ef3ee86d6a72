"""The greedy ensemble of the study's complete trials, and the best trial averaged with its
refit, each logged as one Keras model.

`pipelines/ensemble.py` selects members and builds the model from plain values; this module
reads the trials' configs and models, checks the cost against the budget, and logs the result.
"""

import time

import keras

from champion.final_models import BuiltModel, FinalModelSettings, seconds_per_epoch, trial_config
from champion.outcome import TrialRecord
from pipelines.data.datasets import ImageFolderData, build_batches
from pipelines.ensemble import build_ensemble_model, greedy_selection
from pipelines.evaluate import predict_probabilities
from pipelines.plan import data_loading_key
from pipelines.provenance import log_run_inputs
from pipelines.tracking import RunStatus, Tracker
from pipelines.tracking.keras_logging import load_keras_model

# registry.average_refit's candidate: its `candidate` tag, run name and summary label.
AVERAGE_REFIT_KIND = "single+refit"


def ensemble_seconds(tracker: Tracker, trials: list[TrialRecord], data: ImageFolderData) -> float:
    """Building the ensemble: one prediction pass over val per complete trial, and loading.

    Predicting an image costs less than training on it, so each trial's full-stage seconds
    per epoch, scaled from train to val, bound its pass; loading a model takes about 2 s.
    """
    share = len(data.splits["val"]) / max(len(data.splits["train"]), 1)
    return sum(seconds_per_epoch(tracker, trial) * share + 2.0 for trial in trials)


def _members(tracker, trials, data, base_key, notes):
    """(trial, model) for every complete trial whose model takes the study's data as is."""
    members = []
    for trial in trials:
        cfg = trial_config(tracker, trial)
        model = load_keras_model(trial.model_uri)
        if data_loading_key(cfg) != base_key or tuple(model.input_shape[1:]) != data.input_shape:
            notes.append(
                f"ensemble: trial {trial.number} left out (its images are read differently: "
                f"input {tuple(model.input_shape[1:])})"
            )
            continue
        members.append((trial, model))
    return members


def build_ensemble(
    *,
    trials: list[TrialRecord],
    settings: FinalModelSettings,
    data: ImageFolderData,
    tracker: Tracker,
    parent_run_id: str,
    config_yaml: str,
    base_key: str,
    notes: list[str],
) -> BuiltModel | None:
    """Greedy selection (with replacement, `settings.ensemble` steps) over complete trials."""
    started = time.perf_counter()
    members = _members(tracker, trials, data, base_key, notes)
    if len(members) < 2:
        notes.append(f"ensemble skipped: {len(members)} usable complete trial(s), need 2")
        return None
    val = data.splits["val"]
    images = build_batches(data, val, batch_size=256)
    probabilities = [predict_probabilities(model, images) for _, model in members]
    weights = greedy_selection(
        probabilities, val.labels, size=settings.ensemble, metric=settings.metric,
        mode=settings.mode,
    )  # fmt: skip
    if len(weights) < 2:
        (kept,) = weights
        notes.append(
            f"ensemble skipped: greedy selection kept only trial {members[kept][0].number}"
        )
        return None
    chosen = [
        (members[index][0].number, members[index][1], weight) for index, weight in weights.items()
    ]
    tags = {"ensemble_size": str(settings.ensemble), "ensemble_metric": settings.metric}
    return log_ensemble(
        chosen, data=data, tracker=tracker, parent_run_id=parent_run_id,
        config_yaml=config_yaml, tags=tags, started=started,
    )  # fmt: skip


def log_ensemble(
    chosen: list[tuple[int, keras.Model, float]],
    *,
    data: ImageFolderData,
    tracker: Tracker,
    parent_run_id: str,
    config_yaml: str,
    tags: dict[str, str],
    started: float,
) -> BuiltModel:
    """(trial number, model, weight) members as one Keras model in a run named `ensemble`."""
    trial_numbers = ",".join(str(number) for number, _, _ in chosen)
    weight_text = ",".join(f"{weight:.4g}" for _, _, weight in chosen)
    return log_averaged_model(
        [(f"trial_{number}", member, weight) for number, member, weight in chosen],
        kind="ensemble",
        description=f"trials {trial_numbers} (weights {weight_text})",
        tags={**tags, "ensemble_trials": trial_numbers, "ensemble_weights": weight_text},
        data=data, tracker=tracker, parent_run_id=parent_run_id, config_yaml=config_yaml,
        started=started,
    )  # fmt: skip


def build_refit_average(
    single: BuiltModel,
    refit: BuiltModel,
    *,
    trial_number: int,
    data: ImageFolderData,
    tracker: Tracker,
    parent_run_id: str,
    config_yaml: str,
) -> BuiltModel:
    """The best trial's model and its refit averaged, equal weights (registry.average_refit).

    Two copies of one configuration trained on different images and seeds err apart, so their
    average ranks better than either (BENCHMARKS.md §17). Val cannot weigh them: the refit
    trained on it.
    """
    started = time.perf_counter()
    members = [
        (f"trial_{trial_number}", load_keras_model(single.model_uri), 0.5),
        (f"trial_{trial_number}_refit", load_keras_model(refit.model_uri), 0.5),
    ]
    epochs = refit.tags["refit_epochs"]
    tags = {"trial_number": str(trial_number), "refit_epochs": epochs}
    tags["refit_run_id"] = refit.run_id
    return log_averaged_model(
        members,
        kind=AVERAGE_REFIT_KIND,
        description=f"trial {trial_number} and its {epochs}-epoch refit, averaged",
        tags=tags,
        data=data, tracker=tracker, parent_run_id=parent_run_id, config_yaml=config_yaml,
        started=started,
    )  # fmt: skip


def log_averaged_model(
    members: list[tuple[str, keras.Model, float]],
    *,
    kind: str,
    description: str,
    tags: dict[str, str],
    data: ImageFolderData,
    tracker: Tracker,
    parent_run_id: str,
    config_yaml: str,
    started: float,
) -> BuiltModel:
    """(name, model, weight) members as one Keras model, in a run `kind` under the study's."""
    model = build_ensemble_model(
        [member for _, member, _ in members],
        [weight for _, _, weight in members],
        input_shape=data.input_shape,
        member_names=[name for name, _, _ in members],
    )
    run_id = tracker.start_run(kind, parent_run_id=parent_run_id, tags={"role": kind, **tags})
    try:
        log_run_inputs(tracker, run_id, config_yaml=config_yaml, data=data)
        sample_images = next(iter(build_batches(data, data.splits["val"], batch_size=4)))[0]
        model_uri = tracker.log_keras_model(run_id, model, sample_images.numpy())
        tracker.log_metrics(run_id, {"build_seconds": time.perf_counter() - started})
    except Exception as error:
        tracker.end_run(run_id, RunStatus.FAILED, f"{kind}: {error}".splitlines()[0])
        raise
    tracker.end_run(run_id, RunStatus.FINISHED)
    return BuiltModel(
        kind=kind,
        model_uri=model_uri,
        run_id=run_id,
        description=description,
        tags=tags,
        members=len(members),
    )
