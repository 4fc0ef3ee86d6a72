"""From folders to ImageFolderData: layout, up-front file check, splits, one decode."""

from pathlib import Path

import numpy as np

from pipelines.data.checks import (
    FileReport,
    conversion_kind,
    converted_path,
    inspect_files,
    needs_rewrite,
    rewrite_all,
)
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


def _checked_splits(split_dirs, *, crop, color_mode, cache_dir, report):
    """Class names, each split's usable files, and the conversions they still need."""
    class_names, listing = scan_layout(split_dirs)
    candidates = [
        path for classes in listing.values() for files in classes.values() for path in files.images
    ]
    facts, report.cached, report.seconds = inspect_files(candidates, cache_dir=cache_dir / "checks")
    report.checked = len(candidates)
    splits, pending = {}, {}
    for key, classes in listing.items():
        files, labels = [], []
        for label, name in enumerate(class_names):
            class_dir = split_dirs[key] / name
            report.checked += len(classes[name].others)
            for other in classes[name].others:
                report.skip("non-image", other)
            usable = []
            for path in classes[name].images:
                found = facts[path]
                if found.status != "ok":
                    report.skip(found.status, path)
                    continue
                if crop and (found.height < crop[0] or found.width < crop[1]):
                    report.skip("too-small", path)
                    continue
                kind = conversion_kind(found)
                if kind:
                    report.convert(kind)
                report.nested += path.parent != class_dir
                if needs_rewrite(found, color_mode):
                    target = converted_path(cache_dir, path, color_mode)
                    pending[str(target)] = path
                    path = target
                usable.append(str(path))
            if not usable:
                raise DataError(
                    f"{key}: class folder '{class_dir}' has no usable images "
                    f"({len(classes[name].images) + len(classes[name].others)} files, all skipped)"
                )
            files += usable
            labels += [label] * len(usable)
        splits[key[len("data.") : -len("_dir")]] = FolderSplit(
            name=split_dirs[key].name, files=tuple(files), labels=np.asarray(labels)
        )
    return class_names, splits, pending


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
    seed: int,
    cache_budget_mb: float,
    cache_dir: Path,
) -> ImageFolderData:
    """Check the layout and every file, split, then decode each used image once.

    Args:
        val_fraction: take this seeded, stratified share of train as val (val_dir unused).
        crop: centre-crop [height, width] before resizing; smaller images are skipped.
        label_mode: auto (binary for two classes), binary or categorical.
        max_images_per_class: a seeded cap on every split, for quick runs.
    """
    report = FileReport()
    class_names, splits, pending = _checked_splits(
        _split_dirs(train_dir, val_dir, test_dir, val_fraction),
        crop=crop,
        color_mode=color_mode,
        cache_dir=cache_dir,
        report=report,
    )
    if label_mode == "auto":
        label_mode = "binary" if len(class_names) == 2 else "categorical"
    elif label_mode == "binary" and len(class_names) != 2:
        raise DataError(
            f"data.label_mode 'binary' needs exactly 2 classes; data.train_dir '{train_dir}' "
            f"has {len(class_names)} ({', '.join(class_names)}): use categorical or auto"
        )
    if val_fraction is not None:
        for name in class_names:
            if np.sum(splits["train"].labels == class_names.index(name)) < 2:
                raise DataError(
                    f"data.val_fraction: class folder '{train_dir / name}' has fewer than 2 "
                    "usable images; it cannot give both train and val images"
                )
        splits["train"], splits["val"] = splits["train"].split_off(val_fraction, seed, name="val")
    if max_images_per_class:
        splits = {
            name: split.take_per_class(max_images_per_class, seed) for name, split in splits.items()
        }
    files = list(dict.fromkeys(file for split in splits.values() for file in split.files))
    report.rewritten = len([file for file in files if file in pending])
    rewrite_all([(pending[file], Path(file)) for file in files if file in pending], color_mode)
    pixels, decoded = decode_images(
        files,
        image_size=image_size,
        channels=CHANNELS[color_mode],
        crop=crop,
        cache_budget_mb=cache_budget_mb,
        cache_dir=cache_dir,
    )
    rejected = {file for file, ok in zip(files, decoded, strict=True) if not ok}
    for file in sorted(rejected):
        report.skip("undecodable", pending.get(file, file))
    splits = {name: split.without(rejected) for name, split in splits.items()}
    report.used = sum(len(split) for split in splits.values())
    return ImageFolderData(
        class_names=class_names,
        splits=splits,
        image_size=tuple(image_size),
        channels=CHANNELS[color_mode],
        label_mode=label_mode,
        pixels=pixels,
        rows={file: row for row, file in enumerate(files)},
        report=report,
    )
