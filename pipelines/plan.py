"""The one place that reads a composed config: typed settings and loaded data for a run."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pipelines.config import COLOR_MODES, resolve_path, validate_config
from pipelines.data.datasets import ImageFolderData
from pipelines.data.folders import scan_split_folders
from pipelines.errors import ConfigError
from pipelines.models import MODEL_BUILDERS
from pipelines.models.preprocessing import PREPROCESSING_NAMES
from pipelines.tracking import Tracker, connect_tracking


@dataclass(frozen=True)
class TrainingPlan:
    """Everything a trial's stages need, as plain values: no config object below this point."""

    seed: int
    model_name: str
    preprocessing: str
    model_settings: dict[str, Any]
    optimizer_name: str
    optimizer_settings: dict[str, Any]
    schedule_name: str
    schedule_settings: dict[str, Any]
    augment_settings: dict[str, Any]
    ablation_images_per_class: int
    ablation_epochs: int
    overfit_images_per_class: int
    overfit_max_epochs: int
    overfit_target_accuracy: float
    overfit_batch_size: int
    full_max_epochs: int
    full_batch_size: int
    full_patience: int
    full_verbose: bool
    checkpoint_dir: Path


def _without_name(section: DictConfig) -> dict[str, Any]:
    settings = OmegaConf.to_container(section, resolve=True)
    settings.pop("name", None)
    return settings


def plan_from_config(cfg: DictConfig) -> TrainingPlan:
    """Validate the config and turn it into a TrainingPlan."""
    validate_config(cfg, model_names=MODEL_BUILDERS, preprocessing_names=PREPROCESSING_NAMES)
    augment_settings = _without_name(cfg.augment)
    optimizer_settings = _without_name(cfg.optimizer)
    return TrainingPlan(
        seed=int(cfg.seed),
        model_name=cfg.model.name,
        preprocessing=cfg.data.preprocessing,
        model_settings=_without_name(cfg.model),
        optimizer_name=cfg.optimizer.name,
        optimizer_settings=optimizer_settings,
        schedule_name=cfg.schedule.name,
        schedule_settings=_without_name(cfg.schedule),
        augment_settings=augment_settings,
        ablation_images_per_class=cfg.stages.ablation.images_per_class,
        ablation_epochs=cfg.stages.ablation.epochs,
        overfit_images_per_class=cfg.stages.overfit.images_per_class,
        overfit_max_epochs=cfg.stages.overfit.max_epochs,
        overfit_target_accuracy=float(cfg.stages.overfit.target_accuracy),
        overfit_batch_size=cfg.stages.overfit.batch_size or cfg.stages.full.batch_size,
        full_max_epochs=cfg.stages.full.max_epochs,
        full_batch_size=cfg.stages.full.batch_size,
        full_patience=cfg.stages.full.early_stopping_patience,
        full_verbose=bool(cfg.stages.full.verbose),
        checkpoint_dir=resolve_path(cfg.tracking.mlruns_dir) / "checkpoints",
    )


def load_data(cfg: DictConfig) -> ImageFolderData:
    """Scan the data folders named by `data.*_dir` (test only if it is set)."""
    split_dirs = {}
    for split in ("train", "val", "test"):
        folder = cfg.data.get(f"{split}_dir")
        if folder:
            split_dirs[f"data.{split}_dir"] = resolve_path(folder)
        elif split != "test":
            raise ConfigError(
                f"data.{split}_dir is not set; it must name a folder of class folders"
            )
    class_names, splits = scan_split_folders(split_dirs)
    return ImageFolderData(
        class_names=class_names,
        splits={key[len("data.") : -len("_dir")]: split for key, split in splits.items()},
        image_size=tuple(cfg.data.image_size),
        channels=COLOR_MODES[cfg.data.color_mode],
        cache_budget_mb=float(cfg.data.cache_budget_mb),
        cache_dir=resolve_path(cfg.tracking.mlruns_dir) / "cache",
    )


def tracking_from_config(cfg: DictConfig) -> Tracker:
    """The MLflow experiment of this config (named after the study unless set)."""
    return connect_tracking(
        mlruns_dir=resolve_path(cfg.tracking.mlruns_dir),
        tracking_uri=cfg.tracking.tracking_uri,
        experiment_name=cfg.tracking.experiment_name or cfg.search.study_name,
        retry_seconds=float(cfg.tracking.retry_seconds),
    )
