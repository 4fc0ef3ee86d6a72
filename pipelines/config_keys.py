"""One config key read and checked: each check raises one ConfigError naming the key."""

from collections.abc import Iterable
from numbers import Real

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipelines.errors import ConfigError


def read(cfg: DictConfig, key: str):
    """The key's value; a missing or unresolvable one is a ConfigError."""
    try:
        return OmegaConf.select(cfg, key, throw_on_missing=True)
    except OmegaConfBaseException as error:
        raise ConfigError(f"{key}: {error}".splitlines()[0]) from None


def number(cfg, key, *, low=None, high=None, low_open=False, integer=False):
    """A number (`integer`: a whole one) within the bounds given."""
    value = read(cfg, key)
    kind = "a whole number" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int if integer else Real):
        raise ConfigError(f"{key} must be {kind}, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ConfigError(f"{key} must be {bound}, got {value!r}")
    if high is not None and value > high:
        raise ConfigError(f"{key} must be <= {high}, got {value!r}")
    return value


def choice(cfg, key, choices):
    """One of `choices`."""
    value = read(cfg, key)
    if value not in choices:
        raise ConfigError(
            f"{key} {value!r} is unknown; choose one of: {', '.join(map(str, choices))}"
        )
    return value


def size_pair(cfg, key, *, smallest: int, optional: bool = False):
    """[height, width], each a whole number >= `smallest` (`optional`: or null)."""
    value = read(cfg, key)
    if optional and value is None:
        return
    if not (
        isinstance(value, Iterable)
        and not isinstance(value, str)
        and len(list(value)) == 2
        and all(
            isinstance(side, int) and not isinstance(side, bool) and side >= smallest
            for side in value
        )
    ):
        nothing = " or null" if optional else ""
        raise ConfigError(
            f"{key} must be [height, width], each >= {smallest}{nothing}, got {value!r}"
        )


def flag(cfg, key):
    """true or false."""
    value = read(cfg, key)
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    return value
