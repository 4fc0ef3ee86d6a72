"""From folders to ImageFolderData: layout, one checked decode of every file, splits."""

import time
from pathlib import Path

import numpy as np

from pipelines.data.checks import FileReport
from pipelines.data.datasets import ImageFolderData, decode_images
from pipelines.data.folders import FolderSplit, scan_layout
from pipelines.errors import DataError

CHANNELS = {"grayscale": 1, "rgb": 3, "rgba-to-rgb": 3}


def _split_dirs(train_dir, val_dir, test_dir, val_fraction) -> dict[str, Path]:
    split_dirs = {"data.train_dir": train_dir}
    if val_fraction is None:
        if val_dir is None:
            raise DataError(
                "data.val_dir is not set; point it at a folder of class folders, or set "
                "data.val_fraction (e.g. 0.2) to take validation images from data.train_dir"
            )
        split_dirs["data.val_dir"] = val_dir
    if test_dir is not None:
        split_dirs["data.test_dir"] = test_dir
    return split_dirs


def _candidates(split_dirs, report: FileReport) -> tuple[list[str], dict[str, FolderSplit]]:
    """Class names and every split's image files (by extension) before they are read."""
    class_names, listing = scan_layout(split_dirs)
    splits = {}
    for key, classes in listing.items():
        files, labels = [], []
        for label, name in enumerate(class_names):
            for other in classes[name].others:
                report.skip("non-image", other)
            files += [str(path) for path in classes[name].images]
            labels += [label] * len(classes[name].images)
        splits[key] = FolderSplit(split_dirs[key].name, tuple(files), np.asarray(labels))
    return class_names, splits


def _keep_usable(splits, outcomes, split_dirs, class_names, report) -> dict[str, FolderSplit]:
    """Each split less its skipped files; one line for a class folder left with none."""
    bad = set()
    for file, (status, kind) in outcomes.items():
        if status != "ok":
            report.skip(status, file)
            bad.add(file)
        elif kind:
            report.convert(kind)
    usable = {}
    for key, split in splits.items():
        kept = split.without(bad)
        counts = np.bincount(kept.labels, minlength=len(class_names))
        for label in np.flatnonzero(counts == 0):
            class_dir = split_dirs[key] / class_names[label]
            raise DataError(
                f"{key}: class folder '{class_dir}' has no usable images (all skipped)"
            )
        report.nested += sum(
            Path(file).parent != split_dirs[key] / class_names[label]
            for file, label in zip(kept.files, kept.labels, strict=True)
        )
        usable[key[len("data.") : -len("_dir")]] = kept
    return usable


def _resolved_label_mode(label_mode: str, class_names: list[str], train_dir: Path) -> str:
    """auto: binary for two classes, categorical otherwise; binary needs exactly two."""
    if label_mode == "auto":
        return "binary" if len(class_names) == 2 else "categorical"
    if label_mode == "binary" and len(class_names) != 2:
        raise DataError(
            f"data.label_mode 'binary' needs exactly 2 classes; data.train_dir '{train_dir}' "
            f"has {len(class_names)} ({', '.join(class_names)}): use categorical or auto"
        )
    return label_mode


def _decode_all(files: list[Path], report: FileReport, **decode_settings):
    """Every file decoded once (or read back from the cache), timed into the report."""
    report.checked = len(files) + len(report.skipped["non-image"])
    started = time.monotonic()
    pixels, outcomes, cached = decode_images(files, **decode_settings)
    report.seconds, report.cached = time.monotonic() - started, len(files) if cached else 0
    return pixels, {str(file): outcome for file, outcome in zip(files, outcomes, strict=True)}


def _carve_val(splits, val_fraction: float, seed: int, class_names, train_dir: Path) -> None:
    """data.val_fraction: a seeded, stratified share of train becomes the val split."""
    counts = np.bincount(splits["train"].labels, minlength=len(class_names))
    for label in np.flatnonzero(counts < 2):
        raise DataError(
            f"data.val_fraction: class folder '{train_dir / class_names[label]}' has fewer "
            "than 2 usable images; it cannot give both train and val images"
        )
    splits["train"], splits["val"] = splits["train"].split_off(val_fraction, seed, name="val")


def load_image_folders(
    *,
    train_dir: Path,
    val_dir: Path | None,
    test_dir: Path | None,
    val_fraction: float | None,
    image_size: tuple[int, int],
    crop: tuple[int, int] | None,
    color_mode: str,
    label_mode: str,
    max_images_per_class: int | None,
    min_val_per_class: int,
    seed: int,
    cache_budget_mb: float,
    cache_dir: Path,
) -> ImageFolderData:
    """Check the layout, read every file once (checked, converted, resized), then split.

    Args:
        val_fraction: take this seeded, stratified share of train as val (val_dir unused).
        crop: centre-crop [height, width] before resizing; smaller images are skipped.
        label_mode: auto (binary for two classes), binary or categorical.
        max_images_per_class: a seeded cap on every split, for quick runs.
        min_val_per_class: fewer val images in a class gives the data a `val_warning`.
    """
    report = FileReport()
    split_dirs = _split_dirs(train_dir, val_dir, test_dir, val_fraction)
    class_names, splits = _candidates(split_dirs, report)
    label_mode = _resolved_label_mode(label_mode, class_names, train_dir)
    if max_images_per_class:
        # Capped before reading, so a quick run on a large tree reads only what it uses.
        splits = {
            key: split.take_per_class(max_images_per_class, seed) for key, split in splits.items()
        }
    files = [Path(file) for split in splits.values() for file in split.files]
    pixels, outcomes = _decode_all(
        files,
        report,
        image_size=tuple(image_size),
        crop=crop,
        color_mode=color_mode,
        channels=CHANNELS[color_mode],
        cache_budget_mb=cache_budget_mb,
        cache_dir=cache_dir,
    )
    splits = _keep_usable(splits, outcomes, split_dirs, class_names, report)
    if val_fraction is not None:
        _carve_val(splits, val_fraction, seed, class_names, train_dir)
    report.used = sum(len(split) for split in splits.values())
    return ImageFolderData(
        class_names=class_names,
        splits=splits,
        image_size=tuple(image_size),
        channels=CHANNELS[color_mode],
        label_mode=label_mode,
        pixels=pixels,
        rows={str(file): row for row, file in enumerate(files)},
        report=report,
        val_warning=small_val_warning(
            splits["val"].labels, class_names, min_val_per_class, val_fraction
        ),
    )


def small_val_warning(
    val_labels: np.ndarray,
    class_names: list[str],
    min_per_class: int,
    val_fraction: float | None,
) -> str | None:
    """One line when a val class has fewer than `min_per_class` images, with every count."""
    counts = np.bincount(val_labels, minlength=len(class_names))
    if not min_per_class or counts.min() >= min_per_class:
        return None
    figures = ", ".join(f"{name} {count}" for name, count in zip(class_names, counts, strict=True))
    if val_fraction is None:
        remedy = (
            "data.val_fraction=0.2 takes a seeded, stratified val split from train instead "
            "(the val folder is then unused)"
        )
    else:
        # Already carved from train: only a larger share or more images help.
        remedy = (
            f"a larger data.val_fraction (now {val_fraction}) or more images per class would "
            "help; data.min_val_per_class=0 silences this"
        )
    return (
        f"the val split has fewer than data.min_val_per_class={min_per_class} images in a class "
        f"({figures}): trials would be compared on noise; {remedy}"
    )
