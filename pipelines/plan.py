"""A composed config turned into what a run needs: a TrainingPlan, the loaded data, a tracker.

The training pipeline's keys (data, model, optimizer, schedule, augment, stages, tracking)
are read here. The entry functions above read the config too, for their own keys: sweep/'s
session, run and promote `search.*` and `registry.*`, champion/ `registry.*`; each trial
(sweep/objective.py) composes its config and hands it here. Functions below these take
plain values.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pipelines.calibration.settings import trust_settings
from pipelines.calibration.threshold import ARGMAX, ThresholdRule
from pipelines.config import resolve_path, validate_config
from pipelines.data.datasets import ImageFolderData
from pipelines.data.loading import load_image_folders
from pipelines.errors import ConfigError
from pipelines.models import MODEL_BUILDERS, MODEL_CHOICES, check_model_setup
from pipelines.models.preprocessing import PREPROCESSING_NAMES
from pipelines.tracking import Tracker, connect_tracking
from pipelines.train.optimizers import scaled_learning_rate


@dataclass(frozen=True)
class TrainingPlan:
    """Everything a trial's stages need, as plain values: no config object below this point."""

    seed: int
    model_name: str
    preprocessing: str
    class_weight: str
    model_settings: dict[str, Any]
    optimizer_name: str
    # Its learning_rate is the one at full_batch_size (optimizer.batch_scaling applied).
    optimizer_settings: dict[str, Any]
    label_smoothing: float
    # Transfer models' two-phase full stage; 0 head epochs: one phase.
    fine_tune_head_epochs: int
    fine_tune_lr_divisor: float
    schedule_name: str
    schedule_settings: dict[str, Any]
    augment_settings: dict[str, Any]
    ablation_enabled: bool
    ablation_images_per_class: int
    ablation_epochs: int
    overfit_enabled: bool
    overfit_images_per_class: int
    overfit_max_epochs: int
    # The learning check (pipelines.train.callbacks.LearningCheck); None: that criterion off.
    overfit_accuracy_share: float | None
    overfit_loss_drop: float | None
    overfit_batch_size: int
    full_max_epochs: int
    full_batch_size: int
    full_patience: int
    full_verbose: bool
    checkpoint_dir: Path
    # search.metric as configured ("auto" too): pipelines.metrics.resolve_metric picks the
    # metric once the class count is known.
    metric: str
    # registry.threshold: the operating point the full stage's ROC shows.
    threshold_rule: ThresholdRule = ARGMAX
    # The learning rate at overfit_batch_size (None: optimizer_settings' own).
    overfit_learning_rate: float | None = None


def _without_name(section: DictConfig) -> dict[str, Any]:
    settings = OmegaConf.to_container(section, resolve=True)
    settings.pop("name", None)
    return settings


def _scaled_optimizer_settings(cfg: DictConfig, batch_size: int) -> dict[str, Any]:
    """The optimizer settings, learning rate scaled to `batch_size` (optimizer.batch_scaling)."""
    settings = _without_name(cfg.optimizer)
    rule = settings.pop("batch_scaling", "none")
    reference = settings.pop("reference_batch_size", batch_size)
    settings["learning_rate"] = scaled_learning_rate(
        learning_rate=settings["learning_rate"],
        batch_size=batch_size,
        reference_batch_size=reference,
        rule=rule,
    )
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
    overfit_batch_size = cfg.stages.overfit.batch_size or cfg.stages.full.batch_size
    model_settings = _without_name(cfg.model)
    # Transfer models have a fine_tune section; any other model trains in one phase.
    fine_tune = model_settings.pop("fine_tune", None) or {"head_epochs": 0, "lr_divisor": 1.0}
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
        class_weight=cfg.data.class_weight,
        model_settings=model_settings,
        optimizer_name=cfg.optimizer.name,
        optimizer_settings=_scaled_optimizer_settings(cfg, cfg.stages.full.batch_size),
        label_smoothing=float(cfg.loss.label_smoothing),
        fine_tune_head_epochs=int(fine_tune["head_epochs"]),
        fine_tune_lr_divisor=float(fine_tune["lr_divisor"]),
        schedule_name=cfg.schedule.name,
        schedule_settings=_without_name(cfg.schedule),
        augment_settings=augment_settings,
        ablation_enabled=bool(cfg.stages.ablation.enabled),
        ablation_images_per_class=cfg.stages.ablation.images_per_class,
        ablation_epochs=cfg.stages.ablation.epochs,
        overfit_enabled=bool(cfg.stages.overfit.enabled),
        overfit_images_per_class=cfg.stages.overfit.images_per_class,
        overfit_max_epochs=cfg.stages.overfit.max_epochs,
        overfit_accuracy_share=_optional_float(cfg.stages.overfit.accuracy_share),
        overfit_loss_drop=_optional_float(cfg.stages.overfit.loss_drop),
        overfit_batch_size=overfit_batch_size,
        full_max_epochs=cfg.stages.full.max_epochs,
        full_batch_size=cfg.stages.full.batch_size,
        full_patience=cfg.stages.full.early_stopping_patience,
        full_verbose=bool(cfg.stages.full.verbose),
        checkpoint_dir=resolve_path(cfg.tracking.mlruns_dir) / "checkpoints",
        metric=cfg.search.metric,
        threshold_rule=trust_settings(cfg.registry).threshold,
        overfit_learning_rate=_scaled_optimizer_settings(cfg, overfit_batch_size)["learning_rate"],
    )


def _optional_float(value) -> float | None:
    return None if value is None else float(value)


def _optional_path(value) -> Path | None:
    return resolve_path(value) if value else None


def load_data(cfg: DictConfig) -> ImageFolderData:
    """Check and decode the folders that `data.*` names; prints the file check's summary."""
    if not cfg.data.train_dir:
        raise ConfigError("data.train_dir is not set; it must name a folder of class folders")
    crop = cfg.data.crop
    data = load_image_folders(
        train_dir=resolve_path(cfg.data.train_dir),
        val_dir=_optional_path(cfg.data.val_dir),
        test_dir=_optional_path(cfg.data.test_dir),
        val_fraction=cfg.data.val_fraction,
        image_size=tuple(cfg.data.image_size),
        crop=tuple(crop) if crop else None,
        color_mode=cfg.data.color_mode,
        label_mode=cfg.data.label_mode,
        max_images_per_class=cfg.data.max_images_per_class,
        min_val_per_class=cfg.data.min_val_per_class,
        seed=int(cfg.seed),
        cache_budget_mb=float(cfg.data.cache_budget_mb),
        cache_dir=resolve_path(cfg.tracking.mlruns_dir) / "cache",
    )
    print(f"data: {data.report.summary()}")
    if data.val_warning:
        print(f"imgsweep: warning: {data.val_warning}", flush=True)
    return data


# What the model or the fit reads, not the loader: a trial that changes only these shares the
# decoded images of the sweep.
NOT_LOADING_KEYS = ("preprocessing", "class_weight", "min_val_per_class")


def data_loading_key(cfg: DictConfig) -> str:
    """The `data.*` settings that change what load_data returns, as text to compare."""
    settings = OmegaConf.to_container(cfg.data, resolve=True)
    for key in NOT_LOADING_KEYS:
        settings.pop(key, None)
    settings["seed"] = cfg.seed  # the val split and the per-class caps are seeded
    return OmegaConf.to_yaml(settings)


def tracking_from_config(cfg: DictConfig) -> Tracker:
    """The MLflow experiment of this config (named after the study unless set)."""
    return connect_tracking(
        mlruns_dir=resolve_path(cfg.tracking.mlruns_dir),
        tracking_uri=cfg.tracking.tracking_uri,
        experiment_name=cfg.tracking.experiment_name or cfg.search.study_name,
        retry_seconds=float(cfg.tracking.retry_seconds),
    )
