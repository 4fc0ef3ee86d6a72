"""A new study sized to its budget: what each queued trial costs here, and which to shorten.

Before its first trial a new study times each queued configuration (pipelines/epoch_cost.py;
with none queued, the base config). The first one's epoch is the study's
`reference_epoch_seconds` (the pruner's unit of time). With a budget, the queued trials
together get at most `search.queued_share` of the trial loop's time, shared max-min fairly (a
cheap trial takes what it needs, the others split the rest): a queued trial that needs more
than its share runs fewer full-stage epochs, so that the sampler's trials get the rest. The
study's user attributes keep it all: a resumed study or a joining worker reads them.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from pipelines.config import compose_config
from pipelines.data.datasets import ImageFolderData
from pipelines.epoch_cost import EpochCost, measure_epoch_cost
from pipelines.errors import ConfigError
from pipelines.plan import plan_from_config
from sweep.space import Dimension, queued_overrides

# A queued trial keeps at least one epoch, even where that takes more than its share: a model
# from a known-good configuration, early, is what queueing it is for.
MIN_EPOCHS = 1
# Study user attributes (read by sweep/session.py, sweep/summary.py and the pruner).
REFERENCE_ATTR = "reference_epoch_seconds"
SIZING_ATTR = "sizing"
# The trial user attribute that caps a queued trial's stages.full.max_epochs (sweep/objective).
EPOCH_CAP_ATTR = "epoch_cap"


@dataclass(frozen=True)
class SizingSettings:
    """`search.size_to_budget` and `search.queued_share`, checked."""

    enabled: bool = True
    queued_share: float = 0.5


def sizing_settings(search: DictConfig) -> SizingSettings:
    """The sizing keys of `search`: one line naming a bad one."""
    enabled = search.get("size_to_budget", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"search.size_to_budget must be true or false, got {enabled!r}")
    share = search.get("queued_share", 0.5)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
        raise ConfigError(
            "search.queued_share must be a number in (0, 1] (the share of the trial loop's "
            f"time the queued first trials may use together), got {share!r}"
        )
    return SizingSettings(enabled=enabled, queued_share=float(share))


@dataclass(frozen=True)
class MeasuredTrial:
    """A queued first trial (or, with none queued, the base config) and its cost here."""

    label: str  # e.g. "vgg_cnn, batch 32"
    cost: EpochCost
    max_epochs: int  # its stages.full.max_epochs

    @property
    def seconds(self) -> float:
        """The trial at its full length."""
        return self.cost.trial_seconds(self.max_epochs)


def configuration_label(overrides: list[str], cfg: DictConfig) -> str:
    """The model family as typed (`model=vgg_cnn`; the builder's name otherwise), the batch."""
    families = [value for key, _, value in (o.partition("=") for o in overrides) if key == "model"]
    return f"{families[-1] if families else cfg.model.name}, batch {cfg.stages.full.batch_size}"


def measure_configurations(
    parameter_sets: list[dict[str, Any]],
    *,
    base_overrides: list[str],
    dimensions: list[Dimension],
    fixed_values: dict[str, str],
    data_for: Callable[[DictConfig], ImageFolderData],
) -> tuple[dict[int, MeasuredTrial], list[str]]:
    """Each configuration as its trial will compose it, timed on its data, by its place in
    the queue; and a line for each that could not be measured (its trial runs as configured
    and records why it fails, if it does)."""
    measured, notes = {}, []
    for index, parameters in enumerate(parameter_sets):
        overrides = base_overrides + queued_overrides(parameters, dimensions, fixed_values)
        try:
            cfg = compose_config(overrides)
            plan = plan_from_config(cfg)
            cost = measure_epoch_cost(plan=plan, data=data_for(cfg))
        except Exception as error:  # the trial meets the same error and records it
            reason = f"{type(error).__name__}: {error}".splitlines()[0][:300]
            notes.append(f"queued trial {index}: not measured ({reason}); runs as configured")
            continue
        label = configuration_label(overrides, cfg)
        measured[index] = MeasuredTrial(label=label, cost=cost, max_epochs=plan.full_max_epochs)
    return measured, notes


def fair_shares(needs: list[float], total: float) -> list[float]:
    """Max-min fair shares of `total`: each gets what it needs, at most an equal split of
    what the cheaper ones leave."""
    shares = [0.0] * len(needs)
    left, remaining = total, len(needs)
    for index in sorted(range(len(needs)), key=needs.__getitem__):
        shares[index] = min(needs[index], left / remaining)
        left, remaining = left - shares[index], remaining - 1
    return shares


def epoch_caps(
    measured: dict[int, MeasuredTrial],
    *,
    queued_count: int,
    loop_seconds: float | None,
    queued_share: float,
    n_trials: int,
) -> dict[int, int]:
    """The full-stage epoch cap of each queued trial that needs one, by its place in the queue.

    Only with a budget, and only when the study runs trials beyond the queued ones.
    """
    if loop_seconds is None or n_trials <= queued_count or not measured:
        return {}
    needs = {index: trial.seconds for index, trial in measured.items()}
    shares = fair_shares(list(needs.values()), queued_share * loop_seconds)
    caps = {}
    for (index, trial), share in zip(measured.items(), shares, strict=True):
        if share >= trial.seconds:
            continue  # it fits whole; (share - overhead) / epoch could round to just under
        # The small allowance keeps a share of exactly n epochs from rounding down to n - 1.
        fitting = math.floor(
            (share - trial.cost.overhead_seconds) / trial.cost.epoch_seconds + 1e-9
        )
        cap = max(fitting, MIN_EPOCHS)
        if cap < trial.max_epochs:
            caps[index] = cap
    return caps


def capped_line(index: int, trial: MeasuredTrial, cap: int, loop_seconds: float) -> str:
    """The console's one line for a queued trial cut to fit."""
    return (
        f"queued trial {index} ({trial.label}): about {trial.seconds / 60:.1f} min of "
        f"{loop_seconds / 60:.1f}; capped at {cap} epoch{'s' if cap > 1 else ''} so sampled "
        "trials run"
    )


def sizing_record(
    measured: dict[int, MeasuredTrial],
    caps: dict[int, int],
    *,
    queued_count: int,
    loop_seconds: float | None,
    n_trials: int,
    measured_in_seconds: float,
) -> dict[str, Any]:
    """What the study keeps (user attribute `sizing`), as JSON values.

    `measured` are the queued trials, or (`queued_count` 0) the base config alone.
    """
    planned = [
        trial.cost.trial_seconds(caps.get(index, trial.max_epochs))
        for index, trial in measured.items()
        if queued_count
    ]
    room, left = None, 0.0
    if loop_seconds is not None and measured:
        # A sampled trial's cost is unknown before the sampler draws it: the cheapest measured
        # trial at full length stands for it, as the pruner stops many sooner (on the default
        # study, 6 of 8 sampled trials in BENCHMARKS.md §5c).
        typical = min(trial.seconds for trial in measured.values())
        left = max(loop_seconds - sum(planned), 0.0)
        room = min(int(left // typical), max(n_trials - queued_count, 0))
    return {
        "loop_seconds": loop_seconds,
        "n_trials": n_trials,
        "measured_in_seconds": round(measured_in_seconds, 1),
        "queued": queued_count,
        "queued_seconds": round(sum(planned), 1),
        "sampled_seconds": None if loop_seconds is None else round(left, 1),
        "sampled_room": room,
        "trials": [
            {
                "queue_index": index if queued_count else None,
                "label": trial.label,
                "epoch_seconds": round(trial.cost.epoch_seconds, 2),
                "trial_seconds": round(trial.seconds, 1),
                "max_epochs": trial.max_epochs,
                "cap": caps.get(index),
            }
            for index, trial in measured.items()
        ],
    }


def plan_line(record: dict[str, Any]) -> str:
    """The console's line on the measurement and what the budget holds."""
    costs = ", ".join(
        f"{trial['label']} {trial['epoch_seconds']:.1f} s" for trial in record["trials"]
    )
    line = (
        f"epoch cost here (measured in {record['measured_in_seconds']:.1f} s): {costs} per "
        "full-stage epoch"
    )
    if record["loop_seconds"] is None:
        return line
    queued = (
        f"{record['queued']} queued trial(s) of about {record['queued_seconds'] / 60:.1f} min, "
        "then "
        if record["queued"]
        else ""
    )
    return (
        f"{line}; the trial loop's {record['loop_seconds'] / 60:.1f} min hold {queued}"
        f"{record['sampled_seconds'] / 60:.1f} min of sampled trials{_room(record)}"
    )


def _room(record: dict[str, Any]) -> str:
    room = record["sampled_room"]
    return f" (about {room} the size of the cheapest first trial)" if room else ""
