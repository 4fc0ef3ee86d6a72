"""A new study's first trials: an earlier study's best configurations and `search.enqueue`."""

from collections.abc import Iterable
from typing import Any

import optuna

from pipelines.errors import ConfigError
from pipelines.urls import mask_password
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


def enqueue_first_trials(
    study: optuna.Study,
    *,
    dimensions: list[Dimension],
    explicit: list[dict[str, Any]],
    warm_start: str | None,
    warm_start_storage: str,
    top_k: int,
    limit: int,
) -> list[str]:
    """Queue the warm-start study's best, then the explicit sets, `limit` (the study's trial
    count) at most; returns lines to print."""
    sources = []
    if warm_start:
        found = best_params(study_name=warm_start, storage=warm_start_storage, top_k=top_k)
        sources += [(f"warm start from '{warm_start}'", found)]
    sources += [("search.enqueue", explicit)]
    lines = []
    for source, configurations in sources:
        kept, dropped = fit_to_space(configurations, dimensions)
        kept = kept[: max(limit - len(study.get_trials(deepcopy=False)), 0)]
        for parameters in kept:
            study.enqueue_trial(
                parameters, user_attrs={"enqueued_by": source}, skip_if_exists=True
            )
        if kept or dropped or source != "search.enqueue":
            note = f"; dropped (not in this space): {', '.join(dropped)}" if dropped else ""
            lines.append(f"{source}: {len(kept)} first trial(s) queued{note}")
    return lines
