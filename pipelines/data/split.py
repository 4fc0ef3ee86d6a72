"""Write a train/val/test tree from one folder of class folders: stratified, seeded, by copy.

    python -m pipelines.data.split SRC DST --val 0.15 --test 0.15 --seed 0 [--link]

The originals are never moved or changed: files are copied (or hard-linked with --link) into
DST, which must not exist yet or be empty.
"""

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from pipelines.data.folders import class_folders, list_class_files
from pipelines.errors import DataError

SPLITS = ("train", "val", "test")


def plan_split(folder: Path, count: int, *, val: float, test: float, rng) -> list[str]:
    """A split name for each of `count` files: at least one per split whose fraction is > 0."""
    # Counted per class, not by train_test_split(stratify=), which rounds the total and can
    # leave a small class out of val or test.
    sizes = {
        name: max(1, round(count * fraction)) if fraction > 0 else 0
        for name, fraction in (("val", val), ("test", test))
    }
    sizes["train"] = count - sizes["val"] - sizes["test"]
    if sizes["train"] < 1:
        raise DataError(
            f"class folder '{folder}' has {count} images: too few to give train, val and test "
            "at least one each"
        )
    names = np.repeat(["val", "test", "train"], [sizes["val"], sizes["test"], sizes["train"]])
    return list(names[rng.permutation(count)])


def split_folder(
    source: Path, target: Path, *, val: float, test: float, seed: int, link: bool = False
) -> dict[str, dict[str, int]]:
    """Copy (or hard-link) SRC's class folders into DST/{train,val,test}; returns the counts."""
    if not 0 <= val < 1 or not 0 <= test < 1 or val + test >= 1:
        raise DataError(f"--val {val} and --test {test} must each be in [0, 1) and sum below 1")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise DataError(f"DST '{target}' is not empty; choose a new folder (nothing was written)")
    if target.resolve().is_relative_to(source.resolve()):
        raise DataError(f"DST '{target}' is inside SRC '{source}'; choose a folder outside it")
    folders = class_folders(source, "SRC")
    rng = np.random.default_rng(seed)
    plan, counts = [], {name: {} for name in SPLITS}
    for folder in folders:
        images = list_class_files(folder).images
        splits = plan_split(folder, len(images), val=val, test=test, rng=rng)
        for image, split in zip(images, splits, strict=True):
            plan.append((image, target / split / folder.name / image.relative_to(folder)))
            counts[split][folder.name] = counts[split].get(folder.name, 0) + 1
    # Written beside DST and renamed into place: an interrupted run leaves no half tree.
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        for image, destination in plan:
            destination = partial / destination.relative_to(target)
            destination.parent.mkdir(parents=True, exist_ok=True)
            if link:
                os.link(image, destination)
            else:
                shutil.copy2(image, destination)
        settings = {"source": str(source.resolve()), "val": val, "test": test, "seed": seed}
        manifest = {"settings": settings, "counts": counts, "link": link}
        (partial / "split.json").write_text(json.dumps(manifest, indent=2))
        if target.exists():
            target.rmdir()  # empty, checked above
        os.replace(partial, target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.data.split", description=__doc__.splitlines()[0]
    )
    parser.add_argument("source", type=Path, metavar="SRC", help="folder of class folders")
    parser.add_argument("target", type=Path, metavar="DST", help="new folder for train/val/test")
    parser.add_argument("--val", type=float, default=0.15, help="fraction of each class (0.15)")
    parser.add_argument("--test", type=float, default=0.15, help="fraction of each class (0.15)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--link", action="store_true", help="hard-link instead of copying")
    args = parser.parse_args(argv)
    try:
        counts = split_folder(
            args.source, args.target, val=args.val, test=args.test, seed=args.seed, link=args.link
        )
    except (DataError, OSError) as error:
        print(f"imgsweep: error: {error}", file=sys.stderr)
        return 2
    summary = ", ".join(f"{split} {sum(counts[split].values())}" for split in SPLITS)
    how = "hard-linked" if args.link else "copied"
    print(f"{args.target}: {summary} images in {len(counts['train'])} classes ({how})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
