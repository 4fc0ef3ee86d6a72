"""A new study's first trials: an earlier study's best configurations and `search.enqueue`,
timed here and sized to the budget before they are queued."""

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import optuna

from pipelines.errors import ConfigError
from pipelines.urls import mask_password
from sweep.objective import TrialContext
from sweep.sizing import (
    EPOCH_CAP_ATTR,
    REFERENCE_ATTR,
    SIZING_ATTR,
    SizingSettings,
    capped_line,
    epoch_caps,
    measure_configurations,
    plan_line,
    sizing_record,
)
from sweep.space import Dimension

TrialState = optuna.trial.TrialState


def best_params(*, study_name: str, storage: str, top_k: int) -> list[dict[str, Any]]:
    """The parameters of an earlier study's `top_k` complete trials, best first (by its own
    values and direction)."""
    try:
        earlier = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        known = ", ".join(optuna.get_all_study_names(storage)) or "none"
        raise ConfigError(
            f"search.warm_start '{study_name}' is not a study in '{mask_password(storage)}' "
            f"(studies there: {known}); check the name or set search.warm_start_storage"
        ) from None
    complete = earlier.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    maximize = earlier.direction == optuna.study.StudyDirection.MAXIMIZE
    ranked = sorted(complete, key=lambda trial: trial.value, reverse=maximize)
    return [dict(trial.params) for trial in ranked[:top_k]]


def fit_to_space(
    configurations: Iterable[dict[str, Any]], dimensions: list[Dimension]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Each configuration without the parameters this space cannot take; and those dropped
    (as `name=value`), so a changed space costs a note, not a crash."""
    by_name = {dimension.name: dimension for dimension in dimensions}
    kept, dropped = [], []
    for configuration in configurations:
        fitting = {}
        for name, value in dict(configuration).items():
            if name in by_name and by_name[name].contains(value):
                fitting[name] = value
            elif f"{name}={value}" not in dropped:
                dropped.append(f"{name}={value}")
        if fitting:
            kept.append(fitting)
    return kept, dropped


@dataclass(frozen=True)
class FirstTrial:
    """A configuration to queue, and where it came from (the trial's `enqueued_by`)."""

    parameters: dict[str, Any]
    source: str


def first_trials(
    *,
    dimensions: list[Dimension],
    explicit: list[dict[str, Any]],
    warm_start: str | None,
    warm_start_storage: str,
    top_k: int,
    limit: int,
) -> tuple[list[FirstTrial], list[str]]:
    """The warm-start study's best, then the explicit sets, `limit` (the study's trial count)
    at most, each configuration once; and lines to print."""
    sources = []
    if warm_start:
        found = best_params(study_name=warm_start, storage=warm_start_storage, top_k=top_k)
        sources += [(f"warm start from '{warm_start}'", found)]
    sources += [("search.enqueue", explicit)]
    chosen, lines = [], []
    for source, configurations in sources:
        kept, dropped = fit_to_space(configurations, dimensions)
        known = [trial.parameters for trial in chosen]
        kept = [parameters for parameters in kept if parameters not in known]
        kept = kept[: max(limit - len(chosen), 0)]
        chosen += [FirstTrial(parameters, source) for parameters in kept]
        if kept or dropped or source != "search.enqueue":
            note = f"; dropped (not in this space): {', '.join(dropped)}" if dropped else ""
            lines.append(f"{source}: {len(kept)} first trial(s) queued{note}")
    return chosen, lines


def enqueue_first_trials(
    study: optuna.Study, first: list[FirstTrial], epoch_caps: dict[int, int]
) -> None:
    """Queue the first trials in order, each with its full-stage epoch cap if it has one."""
    for index, trial in enumerate(first):
        attributes = {"enqueued_by": trial.source}
        if index in epoch_caps:
            attributes[EPOCH_CAP_ATTR] = epoch_caps[index]
        study.enqueue_trial(trial.parameters, user_attrs=attributes, skip_if_exists=True)


def queue_sized(
    study: optuna.Study,
    first: list[FirstTrial],
    context: TrialContext,
    *,
    loop_seconds: float | None,
    sizing: SizingSettings,
    n_trials: int,
) -> list[str]:
    """Time the first trials here (none: the base config), cap those the budget cannot hold
    (sweep/sizing.py), queue them; record it all on the study. Returns lines to print."""
    started = time.perf_counter()
    measured, notes = measure_configurations(
        [trial.parameters for trial in first] or [{}],
        base_overrides=context.base_overrides,
        dimensions=context.dimensions,
        fixed_values=context.fixed_values,
        data_for=context.data_for,
    )
    caps = {}
    if sizing.enabled:
        caps = epoch_caps(
            measured,
            queued_count=len(first),
            loop_seconds=loop_seconds,
            queued_share=sizing.queued_share,
            n_trials=n_trials,
        )
    enqueue_first_trials(study, first, caps)
    record = sizing_record(
        measured,
        caps,
        queued_count=len(first),
        loop_seconds=loop_seconds,
        n_trials=n_trials,
        measured_in_seconds=time.perf_counter() - started,
    )
    study.set_user_attr(SIZING_ATTR, record)
    lines = []
    if 0 in measured:
        study.set_user_attr(REFERENCE_ATTR, measured[0].cost.epoch_seconds)
        lines.append(plan_line(record))
    return [
        *lines,
        *notes,
        *(capped_line(index, measured[index], cap, loop_seconds) for index, cap in caps.items()),
    ]
