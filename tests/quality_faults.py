"""A fault-injected copy of an image-folder tree, with the truth about every fault it holds.

The copy gets: labels of a share of train moved to another class, test images copied into
train, val images copied into train shifted by one pixel and a little brighter, and train
images duplicated inside train. The source tree is only read.
"""

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass
class InjectedFaults:
    """Relative paths (split/class/name) in the faulty tree, by kind of fault."""

    flipped: list[str] = field(default_factory=list)  # train files now under another class
    test_copies: list[tuple[str, str]] = field(default_factory=list)  # (train copy, test file)
    val_copies: list[tuple[str, str]] = field(default_factory=list)  # (train copy, val file)
    train_copies: list[tuple[str, str]] = field(default_factory=list)  # (copy, original)


def _files(split_dir: Path) -> list[Path]:
    return sorted(path for path in split_dir.glob("*/*") if path.is_file())


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root))


def _shifted_brighter(source: Path, target: Path, *, brightness: int) -> None:
    """One pixel right and down (the edge repeated), every pixel `brightness` levels up."""
    pixels = np.asarray(Image.open(source)).astype(np.int16)
    shifted = np.pad(pixels, [(1, 0), (1, 0)] + [(0, 0)] * (pixels.ndim - 2), mode="edge")
    shifted = shifted[: pixels.shape[0], : pixels.shape[1]]
    Image.fromarray(np.clip(shifted + brightness, 0, 255).astype(np.uint8)).save(target)


def inject_faults(
    source: Path,
    target: Path,
    *,
    flip_fraction: float = 0.02,
    test_copies: int = 25,
    val_copies: int = 25,
    train_copies: int = 20,
    brightness: int = 12,
    seed: int = 0,
) -> InjectedFaults:
    """Copy `source` (train/val/test of class folders) to `target` with the faults injected."""
    rng = np.random.default_rng(seed)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".*"))
    faults = InjectedFaults()
    train = target / "train"
    classes = sorted(path.name for path in train.iterdir() if path.is_dir())
    originals = _files(train)
    chosen = rng.permutation(len(originals))
    flips = chosen[: round(flip_fraction * len(originals))]
    rest = chosen[len(flips) :]
    for index in flips:
        path = originals[index]
        others = [name for name in classes if name != path.parent.name]
        moved = train / others[rng.integers(len(others))] / f"flip_{path.name}"
        path.rename(moved)
        faults.flipped.append(_relative(moved, target))
    for index in rest[:train_copies]:
        path = originals[index]
        copy = path.with_name(f"dup_{path.name}")
        shutil.copyfile(path, copy)
        faults.train_copies.append((_relative(copy, target), _relative(path, target)))
    for split, count, kind in (("test", test_copies, "test"), ("val", val_copies, "val")):
        files = _files(target / split)
        for index in rng.permutation(len(files))[:count]:
            path = files[index]
            copy = train / path.parent.name / f"leak_{split}_{path.name}"
            if kind == "test":
                shutil.copyfile(path, copy)
                faults.test_copies.append((_relative(copy, target), _relative(path, target)))
            else:
                _shifted_brighter(path, copy, brightness=brightness)
                faults.val_copies.append((_relative(copy, target), _relative(path, target)))
    (target / "faults.json").write_text(json.dumps(asdict(faults), indent=1))
    return faults
