"""Find the images of a folder tree: a sub-folder per class, names sorted, same in every split."""

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.errors import DataError

# Upper- or lower-case alike; what Pillow reads and the loader can decode (or convert once).
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".jfif", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# Folders that tools leave beside the class folders; never classes.
IGNORED_FOLDERS = {"__MACOSX", "__pycache__"}


@dataclass(frozen=True)
class FolderSplit:
    """The image files of one split and their class indices."""

    name: str
    files: tuple[str, ...]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.files)

    def _subset(self, indices, name: str) -> "FolderSplit":
        indices = np.sort(np.asarray(indices, dtype=int))
        return FolderSplit(
            name=name,
            files=tuple(self.files[index] for index in indices),
            labels=self.labels[indices],
        )

    def take_per_class(self, images_per_class: int, seed: int) -> "FolderSplit":
        """A seeded subset with at most `images_per_class` images of each class."""
        # Not train_test_split(stratify=): that keeps class proportions, not a cap per class.
        rng = np.random.default_rng(seed)
        chosen = []
        for label in np.unique(self.labels):
            indices = np.flatnonzero(self.labels == label)
            chosen.extend(rng.permutation(indices)[:images_per_class])
        return self._subset(chosen, f"{self.name}[{images_per_class}/class]")

    def without(self, files: set[str]) -> "FolderSplit":
        """The same split less `files`."""
        keep = [index for index, file in enumerate(self.files) if file not in files]
        return self._subset(keep, self.name)

    def split_off(
        self, fraction: float, seed: int, *, name: str
    ) -> tuple["FolderSplit", "FolderSplit"]:
        """(rest, part): a seeded share of each class moved to `part`, at least one image each."""
        # Not train_test_split(stratify=): it rounds the total, not each class, so a small
        # class can get no val image (3 of 43 images at 0.15 → 0, here 1).
        rng = np.random.default_rng(seed)
        part = []
        for label in np.unique(self.labels):
            indices = rng.permutation(np.flatnonzero(self.labels == label))
            part.extend(indices[: max(1, round(len(indices) * fraction))])
        rest = np.setdiff1d(np.arange(len(self)), part)
        return self._subset(rest, self.name), self._subset(part, name)


@dataclass(frozen=True)
class ClassFiles:
    """What one class folder holds: image files (by extension) and other files."""

    images: list[Path]
    others: list[Path]


def is_ignored(path: Path) -> bool:
    return path.name.startswith(".") or path.name in IGNORED_FOLDERS


def list_class_files(class_dir: Path) -> ClassFiles:
    """Every file under a class folder (sub-folders too, as Keras reads them), sorted."""
    images, others = [], []
    for folder, subfolders, names in os.walk(class_dir, followlinks=True):
        subfolders[:] = sorted(name for name in subfolders if not is_ignored(Path(name)))
        for name in sorted(names):
            path = Path(folder) / name
            (images if path.suffix.lower() in IMAGE_SUFFIXES else others).append(path)
    return ClassFiles(images=images, others=others)


def class_folders(split_dir: Path, key: str) -> list[Path]:
    """The class folders of a split, sorted by name; one clear error for every bad layout."""
    if not split_dir.is_dir():
        raise DataError(f"{key} '{split_dir}' is not a folder{_layout_hint(split_dir, key)}")
    entries = [path for path in split_dir.iterdir() if not is_ignored(path)]
    folders = sorted(path for path in entries if path.is_dir())
    if len(folders) >= 2:
        return folders
    loose = sum(path.suffix.lower() in IMAGE_SUFFIXES for path in entries if path.is_file())
    if not folders and loose:
        raise DataError(
            f"{key} '{split_dir}' holds {loose} images directly but no class folders; put each "
            "class's images in its own sub-folder "
            f"(e.g. {split_dir.name}/cat/, {split_dir.name}/dog/)"
        )
    if not folders:
        raise DataError(f"{key} '{split_dir}' has no class folders and no images (Found 0 images)")
    names = ", ".join(repr(folder.name) for folder in folders)
    raise DataError(
        f"{key} '{split_dir}' has {len(folders)} class folder(s) ({names}); need >= 2, "
        "one sub-folder per class"
    )


def _layout_hint(split_dir: Path, key: str) -> str:
    root = split_dir.parent
    if not root.is_dir():
        return "; run `make data` or point data.root at a folder with train/ (and val/, test/)"
    if key == "data.val_dir":
        return (
            "; set data.val_fraction (e.g. 0.2) to take a seeded, stratified validation split "
            "from data.train_dir instead"
        )
    if key == "data.test_dir":
        return "; set data.test_dir=null to run without a test split"
    subfolders = sorted(
        path.name for path in root.iterdir() if path.is_dir() and not is_ignored(path)
    )
    if len(subfolders) >= 2:
        shown = ", ".join(subfolders[:4]) + (", ..." if len(subfolders) > 4 else "")
        return (
            f"; '{root}' holds class folders ({shown}) with no split: write a train/val/test tree "
            f"with `python -m pipelines.data.split {root} DST --val 0.15 --test 0.15 --seed 0` "
            "and set data.root=DST"
        )
    return "; point data.root at a folder with train/ (and val/, test/), one sub-folder per class"


def scan_layout(split_dirs: dict[str, Path]) -> tuple[list[str], dict[str, dict[str, ClassFiles]]]:
    """Class names (identical in every split) and each split's files per class.

    Args:
        split_dirs: config key (e.g. "data.train_dir") → folder.
    """
    class_names, first_key = None, None
    for key, split_dir in split_dirs.items():
        names = [folder.name for folder in class_folders(split_dir, key)]
        if class_names is None:
            class_names, first_key = names, key
        elif names != class_names:
            raise DataError(
                f"{key} '{split_dir}' has classes {names} but {first_key} has {class_names}; "
                "every split needs the same class folders"
            )
    listing = {}
    for key, split_dir in split_dirs.items():
        listing[key] = {}
        for name in class_names:
            files = list_class_files(split_dir / name)
            if not files.images:
                raise DataError(
                    f"{key}: class folder '{split_dir / name}' has no images "
                    f"({', '.join(sorted(IMAGE_SUFFIXES))})"
                )
            listing[key][name] = files
    return class_names, listing


def fingerprint(splits: dict[str, FolderSplit]) -> str:
    """A short hash of every file's path relative to its split, and its size."""
    digest = hashlib.sha256()
    for split in splits.values():
        for file in split.files:
            path = Path(file)
            digest.update(f"{path.parent.name}/{path.name}:{path.stat().st_size}\n".encode())
    return digest.hexdigest()[:16]
