"""The one place that reads a composed config: typed settings and loaded data for a run."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pipelines.config import COLOR_MODES, resolve_path, validate_config
from pipelines.data.datasets import ImageFolderData
from pipelines.data.folders import scan_split_folders
from pipelines.errors import ConfigError
from pipelines.models import MODEL_BUILDERS, MODEL_CHOICES, check_model_setup
from pipelines.models.preprocessing import PREPROCESSING_NAMES


@dataclass(frozen=True)
class TrainingPlan:
    """Everything a trial's stages need, as plain values: no config object below this point."""

    seed: int
    model_name: str
    preprocessing: str
    model_settings: dict[str, Any]
    optimizer_name: str
    optimizer_settings: dict[str, Any]
    label_smoothing: float
    # Transfer models' two-phase full stage; 0 head epochs: one phase.
    fine_tune_head_epochs: int
    fine_tune_lr_divisor: float
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


def _searched_choices(cfg: DictConfig, key: str) -> tuple:
    """The values `search.space` may set `key` to (categorical dimensions only)."""
    space = OmegaConf.to_container(cfg.search.space, resolve=True) or {}
    return tuple(
        choice
        for dimension in space.values()
        if isinstance(dimension, dict) and dimension.get("override") == key
        for choice in dimension.get("choices") or ()
    )


def plan_from_config(cfg: DictConfig) -> TrainingPlan:
    """Validate the config and turn it into a TrainingPlan."""
    validate_config(
        cfg,
        model_names=MODEL_BUILDERS,
        preprocessing_names=PREPROCESSING_NAMES,
        model_choices=MODEL_CHOICES,
    )
    augment_settings = _without_name(cfg.augment)
    optimizer_settings = _without_name(cfg.optimizer)
    model_settings = _without_name(cfg.model)
    fine_tune = model_settings.pop("fine_tune", None) or {}
    if model_settings.get("weights") not in (None, "none", "imagenet"):
        model_settings["weights"] = str(resolve_path(model_settings["weights"]))
    check_model_setup(
        name=cfg.model.name,
        settings=model_settings,
        image_size=tuple(cfg.data.image_size),
        searched_backbones=_searched_choices(cfg, "model.backbone"),
    )
    return TrainingPlan(
        seed=int(cfg.seed),
        model_name=cfg.model.name,
        preprocessing=cfg.data.preprocessing,
        model_settings=model_settings,
        optimizer_name=cfg.optimizer.name,
        optimizer_settings=optimizer_settings,
        label_smoothing=float(cfg.loss.label_smoothing),
        fine_tune_head_epochs=int(fine_tune.get("head_epochs", 0)),
        fine_tune_lr_divisor=float(fine_tune.get("lr_divisor", 1.0)),
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
