"""Compose the Hydra config: conf/'s resolvers, the overrides, one line for a bad one."""

import difflib
import re
from collections.abc import Iterable
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipelines.errors import ConfigError
from pipelines.urls import mask_password

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def data_name(root: str) -> str:
    """The data's name: its root folder's name (`data/chest_xray` -> `chest_xray`).

    The default study and registered-model names start with it, so a second data set gets
    its own study and registry entry without the user naming them.
    """
    if not root:
        return "data"
    name = Path(str(root)).expanduser().resolve().name or "data"
    return re.sub(r"\s+", "_", name)


# `${data_name:${data.root}}` in conf/: registered on import, before Hydra composes anything.
if not OmegaConf.has_resolver("data_name"):
    OmegaConf.register_new_resolver("data_name", data_name)


def _key_paths(node, prefix: str = "") -> list[str]:
    """Every dotted key of a config (lists are leaves), without resolving interpolations."""
    paths = []
    for key, value in node.items():
        path = f"{prefix}{key}"
        paths.append(path)
        if isinstance(value, dict):
            paths += _key_paths(value, f"{path}.")
    return paths


def _closest_key(unknown: str, overrides: list[str]) -> str | None:
    """The existing key (or config group) nearest to a mistyped one, by difflib's ratio."""
    others = [item for item in overrides if item.split("=", 1)[0].lstrip("+~") != unknown]
    for attempt in (others, []):
        try:
            cfg = _compose(attempt)
            break
        except (HydraException, OmegaConfBaseException):
            continue
    else:
        return None
    paths = _key_paths(OmegaConf.to_container(cfg, resolve=False))
    groups = [path.name for path in CONF_DIR.iterdir() if path.is_dir()]
    matches = difflib.get_close_matches(unknown, [*paths, *groups], n=1, cutoff=0.6)
    return matches[0] if matches else None


def _override_error(first_line: str, overrides: list[str]) -> ConfigError:
    """One line for a failed composition: the group's options, or the closest key to a typo."""
    missing = re.search(r"Could not find '(\w+)/([^']+)'", first_line)
    if missing and (CONF_DIR / missing[1]).is_dir():
        group, name = missing.groups()
        options = ", ".join(sorted(path.stem for path in (CONF_DIR / group).glob("*.yaml")))
        return ConfigError(
            f"{group}={name} is not a config in conf/{group}/; choose one of: {options}"
        )
    unknown = re.search(r"Could not override '([^']+)'", first_line)
    if unknown:
        closest = _closest_key(unknown[1], overrides)
        hint = (
            f"did you mean {closest}?"
            if closest
            else "`python -m sweep --cfg job` prints every key"
        )
        return ConfigError(f"{unknown[1]} is not a config key; {hint}")
    return ConfigError(f"cannot apply the overrides: {first_line}")


def _compose(overrides: list[str]) -> DictConfig:
    if GlobalHydra.instance().is_initialized():
        return compose(config_name="config", overrides=overrides)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def compose_config(overrides: Iterable[str] = ()) -> DictConfig:
    """The root config with Hydra overrides applied, inside or outside a running Hydra app."""
    overrides = list(overrides)
    try:
        return _compose(overrides)
    except (HydraException, OmegaConfBaseException) as error:
        first_line = mask_password(str(error).strip().splitlines()[0])
        raise _override_error(first_line, overrides) from None
