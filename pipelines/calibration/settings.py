"""`registry.calibrate` and `registry.threshold`, checked before any work."""

from dataclasses import dataclass

from omegaconf import DictConfig

from pipelines.calibration.threshold import ARGMAX, ThresholdRule, parse_rule
from pipelines.errors import ConfigError


@dataclass(frozen=True)
class TrustSettings:
    """Whether candidates are temperature-scaled, and how their two-class decision is cut."""

    calibrate: bool = False
    threshold: ThresholdRule = ARGMAX


def trust_settings(registry: DictConfig) -> TrustSettings:
    """The registry's calibration and threshold keys: one line naming a bad one."""
    calibrate = registry.get("calibrate", False)
    if not isinstance(calibrate, bool):
        raise ConfigError(f"registry.calibrate must be true or false, got {calibrate!r}")
    return TrustSettings(calibrate, parse_rule(registry.get("threshold", "argmax")))
