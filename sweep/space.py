"""The search space from `search.space` (YAML) mapped onto Optuna's suggest calls."""

from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf

from pipelines.config import CONF_DIR
from pipelines.errors import ConfigError


@dataclass(frozen=True)
class Dimension:
    name: str
    override: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple | None = None
    when: dict[str, Any] | None = None

    def contains(self, value: Any) -> bool:
        """Whether `value` is one this dimension can take (a choice, or within low..high)."""
        if self.type == "categorical":
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, int if self.type == "int" else Real):
            return False
        return self.low <= value <= self.high


def _check_step(key: str, entry: dict, number: tuple[type, ...]) -> None:
    """`step`: a grid from low; Optuna draws a log-scaled value off any grid."""
    step = entry.get("step")
    if step is None:
        return
    if isinstance(step, bool) or not isinstance(step, number) or step <= 0:
        kind = "a whole number" if number == (int,) else "a number"
        raise ConfigError(f"{key}.step must be {kind} > 0, got {step!r}")
    if entry.get("log"):
        raise ConfigError(f"{key}: step and log: true do not go together; drop one")


def _check(key: str, entry: dict) -> Dimension:
    kind = entry.get("type")
    if not entry.get("override"):
        raise ConfigError(f"{key}.override must name the config key this dimension sets")
    if kind == "categorical":
        if not entry.get("choices"):
            raise ConfigError(f"{key}.choices must list at least one value")
    elif kind in ("float", "int"):
        low, high = entry.get("low"), entry.get("high")
        number = (int,) if kind == "int" else (int, float)
        if not (isinstance(low, number) and isinstance(high, number)) or low >= high:
            raise ConfigError(f"{key} needs numeric low < high, got low={low!r} high={high!r}")
        if entry.get("log") and low <= 0:
            raise ConfigError(f"{key}.low must be > 0 with log: true, got {low!r}")
        _check_step(key, entry, number)
    else:
        raise ConfigError(f"{key}.type {kind!r} is unknown; choose float, int or categorical")
    fields = set(Dimension.__dataclass_fields__) - {"name"}
    unknown = set(entry) - fields
    if unknown:
        raise ConfigError(f"{key} has unknown field(s) {sorted(unknown)}; known: {sorted(fields)}")
    settings = dict(entry)
    if settings.get("choices") is not None:
        settings["choices"] = tuple(settings["choices"])
    return Dimension(name=key.rsplit(".", 1)[-1], **settings)


def parse_space(space: DictConfig) -> list[Dimension]:
    """The dimensions of `search.space`, checked; `when` must name an earlier dimension."""
    entries = OmegaConf.to_container(space, resolve=True) or {}
    dimensions = []
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"search.space.{name} must be a mapping with type and range")
        dimension = _check(f"search.space.{name}", entry)
        for condition in dimension.when or {}:
            if condition not in {earlier.name for earlier in dimensions}:
                raise ConfigError(
                    f"search.space.{name}.when names {condition!r}, which is not a dimension "
                    "listed before it"
                )
        dimensions.append(dimension)
    return dimensions


def _family_settings(family: str) -> DictConfig:
    """conf/model/<family>.yaml: the keys a searched model family has."""
    path = CONF_DIR / "model" / f"{family}.yaml"
    if not path.is_file():
        raise ConfigError(f"search.space: model family {family!r} has no conf/model/{family}.yaml")
    return OmegaConf.create({"model": OmegaConf.load(path)})


def check_model_keys(dimensions: list[Dimension], cfg: DictConfig) -> None:
    """Every `model.*` key the space sets must exist in each model family it can apply to.

    Otherwise each trial would fail to compose (e.g. `model=resnet` with a space that searches
    small_cnn's base_filters). When the family itself is searched (a dimension overriding
    `model`), a key must exist in every family it may be drawn with: all of them, or the one
    its `when` names.
    """
    family = next((dimension for dimension in dimensions if dimension.override == "model"), None)
    configs = {cfg.model.name: cfg}
    if family is not None:
        configs.update({choice: _family_settings(choice) for choice in family.choices})
    for dimension in dimensions:
        key = dimension.override
        if not key.startswith("model."):
            continue
        when = dimension.when or {}
        if family is not None and family.name in when:
            targets = [when[family.name]]
        elif when:
            continue  # conditional on something else: which family it meets is unknown
        else:
            targets = list(configs)
        for target in targets:
            if OmegaConf.select(configs[target], key, default=_MISSING) is _MISSING:
                raise ConfigError(
                    f"search.space.{dimension.name} sets {key}, which model '{target}' does "
                    "not have; pick a space written for that model (conf/search/), drop the "
                    "dimension or make it conditional on the family (when:)"
                )


_MISSING = object()


def _typed_as_choice(dimension: Dimension, typed: str) -> Any:
    """The choice a command-line value names (`64` -> 64), or the text as typed."""
    return next((choice for choice in dimension.choices or () if str(choice) == typed), typed)


def _format(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _suggest(trial: optuna.Trial, dimension: Dimension) -> Any:
    """The trial's value for one dimension, drawn by the sampler (or queued for it)."""
    if dimension.type == "categorical":
        return trial.suggest_categorical(dimension.name, list(dimension.choices))
    if dimension.type == "int":
        return trial.suggest_int(
            dimension.name,
            dimension.low,
            dimension.high,
            step=int(dimension.step or 1),
            log=dimension.log,
        )
    return trial.suggest_float(
        dimension.name, dimension.low, dimension.high, step=dimension.step, log=dimension.log
    )


def chosen_overrides(
    dimensions: list[Dimension],
    fixed_values: dict[str, str],
    value_of: Callable[[Dimension], Any],
) -> list[str]:
    """Hydra overrides for the values `value_of` gives each dimension that applies (None: the
    key keeps the base config's value); keys the user fixed on the command line are not set.

    A fixed key still counts as its dimension's value for `when` conditions: with `model=vgg_cnn`
    typed, the dimensions for `when: {family: vgg_cnn}` apply.
    """
    chosen: dict[str, Any] = {}
    overrides = []
    for dimension in dimensions:
        if dimension.override in fixed_values:
            chosen[dimension.name] = _typed_as_choice(dimension, fixed_values[dimension.override])
            continue
        if dimension.when and any(
            chosen.get(key) != value for key, value in dimension.when.items()
        ):
            continue
        value = value_of(dimension)
        if value is None:
            continue
        chosen[dimension.name] = value
        overrides.append(f"{dimension.override}={_format(value)}")
    return overrides


def sample_overrides(
    trial: optuna.Trial, dimensions: list[Dimension], fixed_values: dict[str, str]
) -> list[str]:
    """Hydra overrides for one trial; keys the user fixed on the command line are not searched."""
    return chosen_overrides(dimensions, fixed_values, lambda dimension: _suggest(trial, dimension))


def queued_overrides(
    parameters: dict[str, Any], dimensions: list[Dimension], fixed_values: dict[str, str]
) -> list[str]:
    """Hydra overrides for a queued configuration, as its trial will run it: a dimension it
    leaves out (the sampler draws it then) keeps the base config's value here."""
    return chosen_overrides(
        dimensions, fixed_values, lambda dimension: parameters.get(dimension.name)
    )
