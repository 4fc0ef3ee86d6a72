"""Find the images of a train/val/test folder tree: one sub-folder per class, names sorted."""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}


@dataclass(frozen=True)
class FolderSplit:
    """The image files of one split and their class indices."""

    name: str
    files: tuple[str, ...]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.files)

    def take_per_class(self, images_per_class: int, seed: int) -> "FolderSplit":
        """A seeded subset with at most `images_per_class` images of each class."""
        rng = np.random.default_rng(seed)
        chosen = []
        for label in np.unique(self.labels):
            indices = np.flatnonzero(self.labels == label)
            chosen.extend(rng.permutation(indices)[:images_per_class])
        chosen = np.sort(np.asarray(chosen))
        return FolderSplit(
            name=f"{self.name}[{images_per_class}/class]",
            files=tuple(self.files[index] for index in chosen),
            labels=self.labels[chosen],
        )


def _class_folders(split_dir: Path, key: str) -> list[Path]:
    if not split_dir.is_dir():
        raise DataError(
            f"{key} '{split_dir}' is not a folder; run `make data` or point {key} at a folder "
            "with one sub-folder per class"
        )
    folders = sorted(path for path in split_dir.iterdir() if path.is_dir())
    if len(folders) < 2:
        names = ", ".join(repr(folder.name) for folder in folders) or "none"
        raise DataError(
            f"{key} '{split_dir}' has {len(folders)} class folder(s) ({names}); need >= 2, "
            "one sub-folder per class"
        )
    return folders


def _scan_split(split_dir: Path, key: str, class_names: list[str]) -> FolderSplit:
    files, labels = [], []
    for label, class_name in enumerate(class_names):
        class_dir = split_dir / class_name
        images = sorted(
            str(path)
            for path in class_dir.iterdir()
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
        )
        if not images:
            raise DataError(f"{key}: class folder '{class_dir}' has no images (.png/.jpg/.bmp/.gif)")
        files.extend(images)
        labels.extend([label] * len(images))
    return FolderSplit(name=split_dir.name, files=tuple(files), labels=np.asarray(labels))


def scan_split_folders(split_dirs: dict[str, Path]) -> tuple[list[str], dict[str, FolderSplit]]:
    """Class names (sorted folder names, identical in every split) and each split's files.

    Args:
        split_dirs: config key (e.g. "data.train_dir") → folder.
    """
    class_names = None
    first_key = None
    for key, split_dir in split_dirs.items():
        names = [folder.name for folder in _class_folders(split_dir, key)]
        if class_names is None:
            class_names, first_key = names, key
        elif names != class_names:
            raise DataError(
                f"{key} '{split_dir}' has classes {names} but {first_key} has {class_names}; "
                "every split needs the same class folders"
            )
    splits = {
        key: _scan_split(split_dir, key, class_names) for key, split_dir in split_dirs.items()
    }
    return class_names, splits


def fingerprint(splits: dict[str, FolderSplit]) -> str:
    """A short hash of every file's path relative to its split, and its size."""
    digest = hashlib.sha256()
    for split in splits.values():
        for file in split.files:
            path = Path(file)
            digest.update(f"{path.parent.name}/{path.name}:{path.stat().st_size}\n".encode())
    return digest.hexdigest()[:16]
