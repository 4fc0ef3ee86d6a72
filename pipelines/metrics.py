"""Which validation metric a study optimizes (`search.metric`), and in which direction."""

from dataclasses import dataclass

from pipelines.errors import ConfigError

SEARCH_METRICS = ("auto", "val_auc", "val_accuracy", "val_loss")
REGISTRY_METRICS = ("auc", "accuracy")


@dataclass(frozen=True)
class MetricChoice:
    """A Keras log name (`val_auc`) and whether more is better (mode "max") or less ("min")."""

    name: str
    mode: str

    @property
    def direction(self) -> str:
        """Optuna's word for the mode."""
        return "maximize" if self.mode == "max" else "minimize"


def resolve_metric(metric: str, num_classes: int) -> MetricChoice:
    """`search.metric` for a data set: auto is val_auc for two classes, val_accuracy for more."""
    if metric not in SEARCH_METRICS:
        raise ConfigError(
            f"search.metric {metric!r} is unknown; choose one of: {', '.join(SEARCH_METRICS)}"
        )
    if metric == "auto":
        metric = "val_auc" if num_classes <= 2 else "val_accuracy"
    return MetricChoice(metric, "min" if metric == "val_loss" else "max")


def registry_metric(registry_setting: str | None, search_metric: str, num_classes: int) -> str:
    """The test metric the registry gate compares: `registry.metric`, else the study's.

    val_loss has no test-split twin in the gate: AUC for two classes, accuracy for more.
    """
    if registry_setting is not None:
        return registry_setting
    name = resolve_metric(search_metric, num_classes).name
    if name == "val_loss":
        return "auc" if num_classes <= 2 else "accuracy"
    return name.removeprefix("val_")
