"""Matplotlib figures of one trained model: curves, confusion matrix, ROC, PR, a prediction grid.

Each function returns a `Figure` made without pyplot (no global state, no display needed);
the caller saves or logs it.
"""

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_curve

WRONG = "#c62828"
RIGHT = "#2e7d32"
# The prediction grid: columns, each image's width and its two-line title's height in
# inches, and the gap between images as a fraction of an image.
GRID_COLUMNS = 4
GRID_INCHES = 2.2
GRID_TITLE_INCHES = 0.42
GRID_GAP = 0.06
# (panel title, train series, val series)
CURVE_PANELS = (("loss", "loss", "val_loss"), ("accuracy", "accuracy", "val_accuracy"),
                ("ROC AUC", "auc", "val_auc"))  # fmt: skip


def training_curves(series: dict[str, list[tuple[int, float]]]) -> Figure:
    """Loss, accuracy and AUC (train vs val) and the learning rate, per epoch (1-based)."""
    figure = Figure(figsize=(13, 3.2), layout="constrained")
    axes = figure.subplots(1, 4)
    best_epoch = None
    if series.get("val_auc"):
        values = [value if math.isfinite(value) else -math.inf for _, value in series["val_auc"]]
        best_epoch = series["val_auc"][int(np.argmax(values))][0] + 1
    for ax, (title, train_key, val_key) in zip(axes, CURVE_PANELS, strict=False):
        for key, label, style in ((train_key, "train", "-o"), (val_key, "val", "-s")):
            points = series.get(key, [])
            if points:
                ax.plot([step + 1 for step, _ in points], [value for _, value in points], style,
                        label=label, markersize=3)  # fmt: skip
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    lr_ax = axes[3]
    points = series.get("lr", [])
    if points:
        lr_ax.plot([step + 1 for step, _ in points], [value for _, value in points], "-o",
                   color="tab:purple", markersize=3)  # fmt: skip
        if all(value > 0 for _, value in points):
            lr_ax.set_yscale("log")
    lr_ax.set_title("learning rate")
    lr_ax.set_xlabel("epoch")
    if best_epoch is not None:
        figure.suptitle(f"best epoch by val AUC: {best_epoch} (dashed)", fontsize="medium")
    return figure


def _matrix_panel(ax, matrix, class_names, *, title: str, number_format: str) -> None:
    ax.imshow(matrix, cmap="Blues", vmin=0)
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45 if len(class_names) > 3 else 0, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if len(class_names) <= 20:
        threshold = matrix.max() / 2 if matrix.size else 0
        for (row, column), value in np.ndenumerate(matrix):
            ax.text(column, row, format(value, number_format), ha="center", va="center",
                    color="white" if value > threshold else "black")  # fmt: skip


def confusion_matrix_figure(matrix: np.ndarray, class_names: Sequence[str]) -> Figure:
    """Counts and row-normalized (recall per true class) confusion matrices, side by side."""
    side = 3 + 0.45 * len(class_names)
    figure = Figure(figsize=(2 * side + 1, side), layout="constrained")
    counts_ax, normalized_ax = figure.subplots(1, 2)
    rows = matrix.sum(axis=1, keepdims=True)
    normalized = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    _matrix_panel(counts_ax, matrix, class_names, title="counts", number_format="d")
    _matrix_panel(normalized_ax, normalized, class_names, title="normalized by true class",
                  number_format=".2f")  # fmt: skip
    figure.suptitle(f"val confusion matrix ({int(matrix.sum())} images)")
    return figure


def _one_vs_rest(labels, probabilities, class_names):
    """(name, is-this-class labels, scores) per curve: the positive class only for two."""
    indices = [1] if len(class_names) == 2 else range(len(class_names))
    for index in indices:
        positives = labels == index
        if positives.any() and not positives.all():
            yield class_names[index], positives, probabilities[:, index]


def roc_figure(labels, probabilities, class_names: Sequence[str], *, auc: float) -> Figure:
    """ROC curve of the positive class, or one per class (one-vs-rest) for more classes."""
    figure = Figure(figsize=(5.5, 5), layout="constrained")
    ax = figure.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="chance")
    for name, positives, scores in _one_vs_rest(labels, probabilities, class_names):
        false_positive_rate, true_positive_rate, _ = roc_curve(positives, scores)
        ax.plot(false_positive_rate, true_positive_rate, label=name)
    kind = f"'{class_names[1]}' as positive" if len(class_names) == 2 else "one-vs-rest, macro"
    ax.set_title(f"val ROC ({kind}): AUC {auc:.4f}")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right", fontsize="small")
    return figure


def precision_recall_figure(labels, probabilities, class_names: Sequence[str]) -> Figure:
    """Precision–recall curve(s) with average precision; the dotted line is each prevalence."""
    figure = Figure(figsize=(5.5, 5), layout="constrained")
    ax = figure.subplots()
    for name, positives, scores in _one_vs_rest(labels, probabilities, class_names):
        precision, recall, _ = precision_recall_curve(positives, scores)
        average = average_precision_score(positives, scores)
        (line,) = ax.plot(recall, precision, label=f"{name} (AP {average:.3f})")
        ax.axhline(positives.mean(), color=line.get_color(), linestyle=":", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("val precision–recall")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.legend(loc="lower left", fontsize="small")
    return figure


def prediction_grid(
    images: np.ndarray,
    true_labels: Sequence[int],
    predicted_labels: Sequence[int],
    confidences: Sequence[float],
    class_names: Sequence[str],
    *,
    title: str,
) -> Figure:
    """Images titled with their true and predicted class and its probability; wrong in red.

    One axes holding every image, not one axes each: a 4×4 grid draws in a third of the time.
    """
    columns = min(GRID_COLUMNS, len(images)) or 1
    rows = math.ceil(len(images) / columns) or 1
    height, width = images.shape[1:3] if len(images) else (1, 1)
    # Data units: one image is 1 wide and 1 high; drawn GRID_INCHES wide, undistorted.
    image_inches = GRID_INCHES * height / width
    band = GRID_TITLE_INCHES / image_inches
    cell_height = band + 1 + GRID_GAP
    figure = Figure(
        figsize=(GRID_INCHES * columns * (1 + GRID_GAP), image_inches * rows * cell_height + 0.5),
        layout="constrained",
    )
    ax = figure.subplots()
    for position, (image, true, predicted, confidence) in enumerate(
        zip(images, true_labels, predicted_labels, confidences, strict=False)
    ):
        row, column = divmod(position, columns)
        left, top = column * (1 + GRID_GAP), row * cell_height + band
        pixels = np.clip(image, 0, 255).astype(np.uint8)
        gray = pixels.shape[-1] == 1
        ax.imshow(
            pixels[..., 0] if gray else pixels,
            cmap="gray" if gray else None,
            vmin=0,
            vmax=255,
            extent=(left, left + 1, top + 1, top),
            interpolation="nearest",
        )
        wrong = true != predicted
        ax.text(
            left + 0.5,
            top - 0.04,
            f"{'✗ ' if wrong else ''}true: {class_names[true]}\n"
            f"pred: {class_names[predicted]} ({confidence:.2f})",
            ha="center",
            va="bottom",
            color=WRONG if wrong else RIGHT,
            fontsize="small",
        )
        if wrong:
            ax.add_patch(Rectangle((left, top), 1, 1, fill=False, edgecolor=WRONG, linewidth=3))
    ax.set_xlim(-GRID_GAP / 2, columns * (1 + GRID_GAP) - GRID_GAP / 2)
    ax.set_ylim(rows * cell_height, 0)
    ax.set_aspect(height / width)
    ax.set_axis_off()
    figure.suptitle(title, fontsize="medium")
    return figure
