"""Check the composed config before any training starts."""

from collections.abc import Iterable
from pathlib import Path

from omegaconf import DictConfig

from pipelines import config_keys as check
from pipelines.calibration.settings import trust_settings

# Composition lives in pipelines.compose; imported from here across the code.
from pipelines.compose import CONF_DIR, compose_config, data_name  # noqa: F401
from pipelines.errors import ConfigError
from pipelines.metrics import REGISTRY_METRICS, SEARCH_METRICS

OPTIMIZER_NAMES = ("adam", "adamw", "sgd", "rmsprop")
# How the learning rate follows the batch size (pipelines.train.optimizers.scaled_learning_rate).
BATCH_SCALINGS = ("none", "linear", "sqrt")
SCHEDULE_NAMES = ("constant", "step", "exponential", "cosine")
COLOR_MODES = ("grayscale", "rgb", "rgba-to-rgb")
# Each augmentation strength is a fraction (rotation: of a full turn); these are its upper bounds.
AUGMENT_LIMITS = {
    "rotation": 0.5,
    "translation": 0.5,
    "shear": 1.0,
    "zoom": 0.9,
    "brightness": 1.0,
    "contrast": 1.0,
}
LABEL_MODES = ("auto", "binary", "categorical")
CLASS_WEIGHTS = ("none", "balanced")
# What the pruner's steps count (search.pruner.resource; sweep/pruning.py).
PRUNER_RESOURCES = ("epochs", "seconds")
# Pruners that compare a trial with others at the very same step: steps of training time
# rarely coincide between trials, so with seconds these would hardly ever prune.
SAME_STEP_PRUNERS = ("median", "percentile")


def resolve_path(path: str | Path) -> Path:
    """A config path made absolute against the directory the command runs in."""
    return Path(path).expanduser().resolve()


def _validate_model(cfg: DictConfig, choices: dict) -> None:
    name = check.read(cfg, "model.name")
    for key, options in choices.get(name, {}).items():
        check.choice(cfg, f"model.{key}", options)
    check.number(cfg, "model.dropout_rate", low=0, high=0.95)
    if name == "small_cnn":
        check.number(cfg, "model.conv_blocks", low=1, integer=True)
        check.number(cfg, "model.convs_per_block", low=1, integer=True)
        check.number(cfg, "model.base_filters", low=1, integer=True)
        check.number(cfg, "model.kernel_size", low=1, integer=True)
        check.flag(cfg, "model.batch_norm")
        check.number(cfg, "model.dense_units", low=0, integer=True)
    elif name == "resnet":
        check.number(cfg, "model.width_multiplier", low=0, high=4, low_open=True)
    elif name == "transfer":
        if check.read(cfg, "model.trainable_layers") is not None:
            check.number(cfg, "model.trainable_layers", low=0, integer=True)
        check.number(cfg, "model.dense_units", low=0, integer=True)
        check.size_pair(cfg, "model.resize_to", smallest=1, optional=True)
        weights = check.read(cfg, "model.weights")
        if weights is not None and not (isinstance(weights, str) and weights):
            raise ConfigError(
                f"model.weights must be imagenet, none or a weights file path, got {weights!r}"
            )
        head_epochs = check.number(cfg, "model.fine_tune.head_epochs", low=0, integer=True)
        check.number(cfg, "model.fine_tune.lr_divisor", low=1)
        max_epochs = check.read(cfg, "stages.full.max_epochs")
        if head_epochs and isinstance(max_epochs, int) and head_epochs >= max_epochs:
            raise ConfigError(
                f"model.fine_tune.head_epochs must be < stages.full.max_epochs ({max_epochs}) "
                f"so that the fine-tune phase runs, got {head_epochs}; 0 turns it off"
            )


def _validate_learning_check(cfg: DictConfig) -> None:
    """The overfit gate's criteria: each a fraction, or null (off), not both off."""
    share = check.read(cfg, "stages.overfit.accuracy_share")
    drop = check.read(cfg, "stages.overfit.loss_drop")
    if share is not None:
        check.number(cfg, "stages.overfit.accuracy_share", low=0, high=1)
    if drop is not None:
        check.number(cfg, "stages.overfit.loss_drop", low=0, high=1, low_open=True)
    if share is None and drop is None and check.read(cfg, "stages.overfit.enabled"):
        raise ConfigError(
            "stages.overfit.accuracy_share and stages.overfit.loss_drop are both null: set one, "
            "or turn the stage off with stages.overfit.enabled=false"
        )


def _validate_data(cfg: DictConfig, preprocessing_names: Iterable[str]) -> None:
    check.size_pair(cfg, "data.image_size", smallest=8)
    check.size_pair(cfg, "data.crop", smallest=1, optional=True)
    check.choice(cfg, "data.color_mode", COLOR_MODES)
    check.choice(cfg, "data.label_mode", LABEL_MODES)
    check.choice(cfg, "data.class_weight", CLASS_WEIGHTS)
    if check.read(cfg, "data.val_fraction") is not None:
        check.number(cfg, "data.val_fraction", low=0, high=0.9, low_open=True)
    check.number(cfg, "data.min_val_per_class", low=0, integer=True)
    if check.read(cfg, "data.max_images_per_class") is not None:
        check.number(cfg, "data.max_images_per_class", low=1, integer=True)
    check.number(cfg, "data.cache_budget_mb", low=0)
    check.choice(cfg, "data.preprocessing", tuple(preprocessing_names))


def _validate_training(cfg: DictConfig) -> None:
    """The optimizer, loss, compute, schedule and augmentation keys."""
    optimizer = check.choice(cfg, "optimizer.name", OPTIMIZER_NAMES)
    check.number(cfg, "optimizer.learning_rate", low=0, low_open=True)
    check.choice(cfg, "optimizer.batch_scaling", BATCH_SCALINGS)
    check.number(cfg, "optimizer.reference_batch_size", low=1, integer=True)
    check.number(cfg, "optimizer.weight_decay", low=0)
    if check.read(cfg, "optimizer.clipnorm") is not None:
        check.number(cfg, "optimizer.clipnorm", low=0, low_open=True)
    if optimizer == "sgd":
        check.number(cfg, "optimizer.momentum", low=0, high=1)
        check.flag(cfg, "optimizer.nesterov")
    check.number(cfg, "loss.label_smoothing", low=0, high=0.5)
    for flag in ("gpu_memory_growth", "mixed_precision", "deterministic", "verbose"):
        check.flag(cfg, f"compute.{flag}")
    schedule = check.choice(cfg, "schedule.name", SCHEDULE_NAMES)
    if schedule == "step":
        check.number(cfg, "schedule.factor", low=0, high=1, low_open=True)
        check.number(cfg, "schedule.every_epochs", low=1, integer=True)
    elif schedule == "exponential":
        check.number(cfg, "schedule.decay_rate", low=0, high=1, low_open=True)
    elif schedule == "cosine":
        check.number(cfg, "schedule.min_fraction", low=0, high=1)
    for flip in ("horizontal_flip", "vertical_flip"):
        check.flag(cfg, f"augment.{flip}")
    for key, high in AUGMENT_LIMITS.items():
        check.number(cfg, f"augment.{key}", low=0, high=high)


def _validate_stages(cfg: DictConfig) -> None:
    for stage in ("ablation", "overfit"):
        check.flag(cfg, f"stages.{stage}.enabled")
        check.number(cfg, f"stages.{stage}.images_per_class", low=1, integer=True)
    check.number(cfg, "stages.ablation.epochs", low=1, integer=True)
    check.number(cfg, "stages.overfit.max_epochs", low=1, integer=True)
    _validate_learning_check(cfg)
    if check.read(cfg, "stages.overfit.batch_size") is not None:
        check.number(cfg, "stages.overfit.batch_size", low=1, integer=True)
    check.number(cfg, "stages.full.max_epochs", low=1, integer=True)
    check.number(cfg, "stages.full.batch_size", low=1, integer=True)
    check.number(cfg, "stages.full.early_stopping_patience", low=1, integer=True)


def check_pruner_resource(name: str | None, resource: str) -> str:
    """`search.pruner.resource`, checked against the pruner `name` it goes with."""
    if resource not in PRUNER_RESOURCES:
        raise ConfigError(
            f"search.pruner.resource {resource!r} is unknown; choose one of: "
            f"{', '.join(PRUNER_RESOURCES)}"
        )
    if resource == "seconds" and name in SAME_STEP_PRUNERS:
        raise ConfigError(
            f"search.pruner.resource=seconds does not suit search.pruner.name={name}, which "
            "compares trials at the same step (steps of training time rarely are); set "
            "search.pruner.resource=epochs, or name=hyperband or successive_halving"
        )
    return resource


def _validate_search(cfg: DictConfig) -> None:
    """The study's own keys, checked here so that a bad one is named before the storage opens
    (Optuna's messages for them would read as a storage failure)."""
    check.number(cfg, "search.n_trials", low=1, integer=True)
    if check.read(cfg, "search.timeout_minutes") is not None:
        check.number(cfg, "search.timeout_minutes", low=0, low_open=True)
    check.choice(cfg, "search.metric", SEARCH_METRICS)
    check.number(cfg, "search.workers", low=1, integer=True)
    check.number(cfg, "search.max_consecutive_failures", low=1, integer=True)
    heartbeat = check.number(cfg, "search.heartbeat_interval", low=1, integer=True)
    grace = check.number(cfg, "search.grace_period", low=1, integer=True)
    if grace <= heartbeat:
        # Between two heartbeats a live worker's trial would already count as dead.
        raise ConfigError(
            f"search.grace_period must be > search.heartbeat_interval ({heartbeat}), got {grace}"
        )
    if check.read(cfg, "search.max_retry") is not None:
        check.number(cfg, "search.max_retry", low=0, integer=True)
    check_pruner_resource(
        check.read(cfg, "search.pruner.name"), check.read(cfg, "search.pruner.resource")
    )


def validate_config(
    cfg: DictConfig,
    *,
    model_names: Iterable[str],
    preprocessing_names: Iterable[str],
    model_choices: dict[str, dict[str, tuple]] | None = None,
) -> None:
    """Raise ConfigError naming the first bad key; paths are checked when the data loads."""
    _validate_data(cfg, preprocessing_names)
    check.choice(cfg, "model.name", tuple(model_names))
    _validate_model(cfg, model_choices or {})
    _validate_training(cfg)
    _validate_stages(cfg)
    _validate_search(cfg)
    if check.read(cfg, "registry.metric") is not None:
        check.choice(cfg, "registry.metric", REGISTRY_METRICS)
    check.number(cfg, "registry.min_delta", low=0)
    trust_settings(cfg.registry)
    check.number(cfg, "seed", low=0, integer=True)
