"""Figures of how far to trust a model: reliability diagrams, the ROC's operating point."""

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from pipelines.calibration.ece import reliability_bins
from pipelines.calibration.threshold import OperatingPoint

OPERATING_POINT = "#c62828"


def reliability_figure(splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """One panel per split (name → labels, probabilities): accuracy against confidence.

    Equal-mass bins of the top-label confidence; the diagonal is perfect calibration, a
    point below it a bin more confident than it is right.
    """
    figure = Figure(figsize=(4.6 * len(splits), 4.6), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(splits)))
    for ax, (name, (labels, probabilities)) in zip(axes, splits.items(), strict=True):
        bins = reliability_bins(labels, probabilities)
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="calibrated")
        ax.bar(bins.confidence, bins.accuracy - bins.confidence, bottom=bins.confidence,
               width=0.02, color="#ef9a9a", label="gap")  # fmt: skip
        ax.plot(bins.confidence, bins.accuracy, "-o", markersize=4, label="accuracy per bin")
        low = min(0.5, float(bins.confidence.min()) if len(bins.confidence) else 0.0)
        ax.set_xlim(low - 0.02, 1.01)
        ax.set_ylim(min(low, float(bins.accuracy.min(initial=1.0))) - 0.02, 1.01)
        ax.set_title(f"{name}: ECE {bins.ece:.4f} ({len(bins.count)} equal-mass bins)")
        ax.set_xlabel("confidence (top-label probability)")
        ax.set_ylabel("accuracy")
        ax.legend(loc="upper left", fontsize="small")
    return figure


def mark_operating_point(
    figure: Figure, *, rule: str, val: OperatingPoint, test: OperatingPoint | None
) -> None:
    """The threshold's point on a two-class ROC figure (val), with its test recall/specificity."""
    ax = figure.axes[0]
    label = f"{rule}: threshold {val.threshold:.3f}"
    if test is not None:
        label += f"\ntest recall {test.recall:.3f}, specificity {test.specificity:.3f}"
    ax.plot([1 - val.specificity], [val.recall], "o", color=OPERATING_POINT, markersize=9,
            markeredgecolor="black", zorder=3,
            label=label)  # fmt: skip
    ax.legend(loc="lower right", fontsize="small")


def operating_point_line(class_names: Sequence[str], rule: str) -> str:
    """The one line for a rule that only two classes have."""
    return (
        f"registry.threshold {rule} applies to two classes; these {len(class_names)} classes "
        "are decided by argmax"
    )
