"""Check the composed config before any training starts."""

from collections.abc import Iterable
from numbers import Real
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

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


def _value(cfg: DictConfig, key: str):
    try:
        return OmegaConf.select(cfg, key, throw_on_missing=True)
    except OmegaConfBaseException as error:
        raise ConfigError(f"{key}: {error}".splitlines()[0]) from None


def _number(cfg, key, *, low=None, high=None, low_open=False, integer=False):
    value = _value(cfg, key)
    kind = "a whole number" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int if integer else Real):
        raise ConfigError(f"{key} must be {kind}, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ConfigError(f"{key} must be {bound}, got {value!r}")
    if high is not None and value > high:
        raise ConfigError(f"{key} must be <= {high}, got {value!r}")
    return value


def _choice(cfg, key, choices):
    value = _value(cfg, key)
    if value not in choices:
        raise ConfigError(
            f"{key} {value!r} is unknown; choose one of: {', '.join(map(str, choices))}"
        )
    return value


def _size_pair(cfg, key, *, smallest: int, optional: bool = False):
    value = _value(cfg, key)
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


def _flag(cfg, key):
    value = _value(cfg, key)
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    return value


def _validate_model(cfg: DictConfig, choices: dict) -> None:
    name = _value(cfg, "model.name")
    for key, options in choices.get(name, {}).items():
        _choice(cfg, f"model.{key}", options)
    _number(cfg, "model.dropout_rate", low=0, high=0.95)
    if name == "small_cnn":
        _number(cfg, "model.conv_blocks", low=1, integer=True)
        _number(cfg, "model.convs_per_block", low=1, integer=True)
        _number(cfg, "model.base_filters", low=1, integer=True)
        _number(cfg, "model.kernel_size", low=1, integer=True)
        _flag(cfg, "model.batch_norm")
        _number(cfg, "model.dense_units", low=0, integer=True)
    elif name == "resnet":
        _number(cfg, "model.width_multiplier", low=0, high=4, low_open=True)
    elif name == "transfer":
        if _value(cfg, "model.trainable_layers") is not None:
            _number(cfg, "model.trainable_layers", low=0, integer=True)
        _number(cfg, "model.dense_units", low=0, integer=True)
        _size_pair(cfg, "model.resize_to", smallest=1, optional=True)
        weights = _value(cfg, "model.weights")
        if weights is not None and not (isinstance(weights, str) and weights):
            raise ConfigError(
                f"model.weights must be imagenet, none or a weights file path, got {weights!r}"
            )
        head_epochs = _number(cfg, "model.fine_tune.head_epochs", low=0, integer=True)
        _number(cfg, "model.fine_tune.lr_divisor", low=1)
        max_epochs = _value(cfg, "stages.full.max_epochs")
        if head_epochs and isinstance(max_epochs, int) and head_epochs >= max_epochs:
            raise ConfigError(
                f"model.fine_tune.head_epochs must be < stages.full.max_epochs ({max_epochs}) "
                f"so that the fine-tune phase runs, got {head_epochs}; 0 turns it off"
            )


def _validate_learning_check(cfg: DictConfig) -> None:
    """The overfit gate's criteria: each a fraction, or null (off), not both off."""
    share = _value(cfg, "stages.overfit.accuracy_share")
    drop = _value(cfg, "stages.overfit.loss_drop")
    if share is not None:
        _number(cfg, "stages.overfit.accuracy_share", low=0, high=1)
    if drop is not None:
        _number(cfg, "stages.overfit.loss_drop", low=0, high=1, low_open=True)
    if share is None and drop is None and _value(cfg, "stages.overfit.enabled"):
        raise ConfigError(
            "stages.overfit.accuracy_share and stages.overfit.loss_drop are both null: set one, "
            "or turn the stage off with stages.overfit.enabled=false"
        )


def _validate_data(cfg: DictConfig, preprocessing_names: Iterable[str]) -> None:
    _size_pair(cfg, "data.image_size", smallest=8)
    _size_pair(cfg, "data.crop", smallest=1, optional=True)
    _choice(cfg, "data.color_mode", COLOR_MODES)
    _choice(cfg, "data.label_mode", LABEL_MODES)
    _choice(cfg, "data.class_weight", CLASS_WEIGHTS)
    if _value(cfg, "data.val_fraction") is not None:
        _number(cfg, "data.val_fraction", low=0, high=0.9, low_open=True)
    _number(cfg, "data.min_val_per_class", low=0, integer=True)
    if _value(cfg, "data.max_images_per_class") is not None:
        _number(cfg, "data.max_images_per_class", low=1, integer=True)
    _number(cfg, "data.cache_budget_mb", low=0)
    _choice(cfg, "data.preprocessing", tuple(preprocessing_names))


def _validate_training(cfg: DictConfig) -> None:
    """The optimizer, loss, compute, schedule and augmentation keys."""
    optimizer = _choice(cfg, "optimizer.name", OPTIMIZER_NAMES)
    _number(cfg, "optimizer.learning_rate", low=0, low_open=True)
    _choice(cfg, "optimizer.batch_scaling", BATCH_SCALINGS)
    _number(cfg, "optimizer.reference_batch_size", low=1, integer=True)
    _number(cfg, "optimizer.weight_decay", low=0)
    if _value(cfg, "optimizer.clipnorm") is not None:
        _number(cfg, "optimizer.clipnorm", low=0, low_open=True)
    if optimizer == "sgd":
        _number(cfg, "optimizer.momentum", low=0, high=1)
        _flag(cfg, "optimizer.nesterov")
    _number(cfg, "loss.label_smoothing", low=0, high=0.5)
    for flag in ("gpu_memory_growth", "mixed_precision", "deterministic", "verbose"):
        _flag(cfg, f"compute.{flag}")
    schedule = _choice(cfg, "schedule.name", SCHEDULE_NAMES)
    if schedule == "step":
        _number(cfg, "schedule.factor", low=0, high=1, low_open=True)
        _number(cfg, "schedule.every_epochs", low=1, integer=True)
    elif schedule == "exponential":
        _number(cfg, "schedule.decay_rate", low=0, high=1, low_open=True)
    elif schedule == "cosine":
        _number(cfg, "schedule.min_fraction", low=0, high=1)
    for flip in ("horizontal_flip", "vertical_flip"):
        _flag(cfg, f"augment.{flip}")
    for key, high in AUGMENT_LIMITS.items():
        _number(cfg, f"augment.{key}", low=0, high=high)


def _validate_stages(cfg: DictConfig) -> None:
    for stage in ("ablation", "overfit"):
        _flag(cfg, f"stages.{stage}.enabled")
        _number(cfg, f"stages.{stage}.images_per_class", low=1, integer=True)
    _number(cfg, "stages.ablation.epochs", low=1, integer=True)
    _number(cfg, "stages.overfit.max_epochs", low=1, integer=True)
    _validate_learning_check(cfg)
    if _value(cfg, "stages.overfit.batch_size") is not None:
        _number(cfg, "stages.overfit.batch_size", low=1, integer=True)
    _number(cfg, "stages.full.max_epochs", low=1, integer=True)
    _number(cfg, "stages.full.batch_size", low=1, integer=True)
    _number(cfg, "stages.full.early_stopping_patience", low=1, integer=True)


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
    _number(cfg, "search.n_trials", low=1, integer=True)
    if _value(cfg, "search.timeout_minutes") is not None:
        _number(cfg, "search.timeout_minutes", low=0, low_open=True)
    _choice(cfg, "search.metric", SEARCH_METRICS)
    _number(cfg, "search.workers", low=1, integer=True)
    _number(cfg, "search.max_consecutive_failures", low=1, integer=True)
    heartbeat = _number(cfg, "search.heartbeat_interval", low=1, integer=True)
    grace = _number(cfg, "search.grace_period", low=1, integer=True)
    if grace <= heartbeat:
        # Between two heartbeats a live worker's trial would already count as dead.
        raise ConfigError(
            f"search.grace_period must be > search.heartbeat_interval ({heartbeat}), got {grace}"
        )
    if _value(cfg, "search.max_retry") is not None:
        _number(cfg, "search.max_retry", low=0, integer=True)
    check_pruner_resource(_value(cfg, "search.pruner.name"), _value(cfg, "search.pruner.resource"))


def validate_config(
    cfg: DictConfig,
    *,
    model_names: Iterable[str],
    preprocessing_names: Iterable[str],
    model_choices: dict[str, dict[str, tuple]] | None = None,
) -> None:
    """Raise ConfigError naming the first bad key; paths are checked when the data loads."""
    _validate_data(cfg, preprocessing_names)
    _choice(cfg, "model.name", tuple(model_names))
    _validate_model(cfg, model_choices or {})
    _validate_training(cfg)
    _validate_stages(cfg)
    _validate_search(cfg)
    if _value(cfg, "registry.metric") is not None:
        _choice(cfg, "registry.metric", REGISTRY_METRICS)
    _number(cfg, "registry.min_delta", low=0)
    trust_settings(cfg.registry)
    _number(cfg, "seed", low=0, integer=True)
