"""`data.quality.*`: which checks run, their thresholds, and what training leaves out."""

import hashlib
import json
from dataclasses import asdict, dataclass

from omegaconf import DictConfig, OmegaConf

from pipelines import config_keys as check
from pipelines.errors import ConfigError

CHECKS = ("duplicates", "labels", "images")


@dataclass(frozen=True)
class QualitySettings:
    enabled: bool
    checks: tuple[str, ...]
    hash_distance: int
    pixel_tolerance: float
    folds: int
    epochs: int
    label_max_images: int  # 0: every train image
    odd_image_sample: int
    drop_leaks: bool
    exclude_label_issues: bool
    seed: int

    def cache_key(self, data_fingerprint: str, image_setting: str) -> str:
        """The data's fingerprint and every setting that changes the findings."""
        settings = asdict(self)
        for key in ("enabled", "drop_leaks", "exclude_label_issues"):
            settings.pop(key)
        text = json.dumps([settings, image_setting], sort_keys=True)
        return f"{data_fingerprint}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def quality_settings(cfg: DictConfig) -> QualitySettings:
    """Read and check `data.quality.*`; one ConfigError naming the first bad key."""
    if OmegaConf.select(cfg, "data.quality") is None:
        raise ConfigError("data.quality is missing; add the quality section of conf/data/")
    checks = check.read(cfg, "data.quality.checks")
    if isinstance(checks, str) or not all(check in CHECKS for check in checks or ()):
        raise ConfigError(
            f"data.quality.checks must be a list of {', '.join(CHECKS)}, got {checks!r}"
        )
    settings = QualitySettings(
        enabled=check.flag(cfg, "data.quality.enabled"),
        checks=tuple(checks),
        hash_distance=check.number(
            cfg, "data.quality.hash_distance", low=0, high=16, integer=True
        ),
        pixel_tolerance=float(check.number(cfg, "data.quality.pixel_tolerance", low=0, high=255)),
        folds=check.number(cfg, "data.quality.folds", low=2, high=20, integer=True),
        epochs=check.number(cfg, "data.quality.epochs", low=1, integer=True),
        label_max_images=check.number(cfg, "data.quality.label_max_images", low=0, integer=True),
        odd_image_sample=check.number(cfg, "data.quality.odd_image_sample", low=0, integer=True),
        drop_leaks=check.flag(cfg, "data.quality.drop_leaks"),
        exclude_label_issues=check.flag(cfg, "data.quality.exclude_label_issues"),
        seed=int(cfg.seed),
    )
    if settings.drop_leaks and "duplicates" not in settings.checks:
        raise ConfigError("data.quality.drop_leaks=true needs 'duplicates' in data.quality.checks")
    if settings.exclude_label_issues and "labels" not in settings.checks:
        raise ConfigError(
            "data.quality.exclude_label_issues=true needs 'labels' in data.quality.checks"
        )
    return settings
