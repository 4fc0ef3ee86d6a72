"""`make data`: write Fashion-MNIST class pairs (or all ten classes) as PNG folders.

    python -m pipelines.data.prepare --source /usr/share/datasets/fashion-mnist \
        --output data/fashion_pair --classes 0:tshirt_top 6:shirt
"""

import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines.errors import DataError

FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
DONE_MARKER = ".complete.json"
# Where keras.datasets.fashion_mnist downloads the same idx files from.
KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


def download_with_keras() -> Path:
    """Fetch the four idx files with Keras' downloader (cached under ~/.keras/datasets)."""
    import keras

    try:
        paths = [
            keras.utils.get_file(
                name, origin=KERAS_ORIGIN + name, cache_subdir="datasets/fashion-mnist"
            )
            for names in FASHION_FILES.values()
            for name in names
        ]
    except Exception as error:  # network errors come in many types
        raise DataError(
            "Fashion-MNIST is not installed and could not be downloaded "
            f"({type(error).__name__}); install it with `apt-get install dataset-fashion-mnist` "
            "or pass --source DIR holding the four idx .gz files"
        ) from None
    return Path(paths[0]).parent


def read_idx(path: Path) -> np.ndarray:
    """An idx file (optionally gzipped) as a uint8 array: the format MNIST-like sets ship in."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        content = stream.read()
    if len(content) < 4 or content[:2] != b"\x00\x00" or content[2] != 0x08:
        raise DataError(f"'{path}' is not an unsigned-byte idx file")
    dimensions = content[3]
    shape = tuple(
        int.from_bytes(content[4 + 4 * axis : 8 + 4 * axis], "big") for axis in range(dimensions)
    )
    offset = 4 + 4 * dimensions
    if len(content) - offset != int(np.prod(shape)):
        raise DataError(f"'{path}' is truncated: expected shape {shape}")
    return np.frombuffer(content, dtype=np.uint8, offset=offset).reshape(shape)


def _write_split(images, labels, output: Path, classes: dict[int, str], indices) -> None:
    for index in indices:
        class_dir = output / classes[int(labels[index])]
        Image.fromarray(images[index]).save(class_dir / f"{index:05d}.png")


def prepare_fashion(
    *, source: Path, output: Path, classes: dict[int, str], val_per_class: int, seed: int
) -> dict:
    """Write train/val/test PNG folders; val comes from the official train split, seeded."""
    settings = {
        "source": str(source),
        "classes": {str(label): name for label, name in classes.items()},
        "val_per_class": val_per_class,
        "seed": seed,
    }
    marker = output / DONE_MARKER
    if marker.exists() and json.loads(marker.read_text()).get("settings") == settings:
        return json.loads(marker.read_text())["counts"]
    arrays = {}
    for split, (images_name, labels_name) in FASHION_FILES.items():
        missing = [name for name in (images_name, labels_name) if not (source / name).exists()]
        if missing:
            raise DataError(
                f"Fashion-MNIST file '{source / missing[0]}' is missing; install it with "
                "`apt-get install dataset-fashion-mnist` or pass --source DIR"
            )
        arrays[split] = (read_idx(source / images_name), read_idx(source / labels_name))

    rng = np.random.default_rng(seed)
    plan = {"train": [], "val": [], "test": []}
    train_labels = arrays["train"][1]
    for label in classes:
        indices = rng.permutation(np.flatnonzero(train_labels == label))
        plan["val"].extend(indices[:val_per_class])
        plan["train"].extend(indices[val_per_class:])
        plan["test"].extend(np.flatnonzero(arrays["test"][1] == label))

    counts = {}
    for split, indices in plan.items():
        for name in classes.values():
            (output / split / name).mkdir(parents=True, exist_ok=True)
        images, labels = arrays["test" if split == "test" else "train"]
        _write_split(images, labels, output / split, classes, sorted(indices))
        counts[split] = len(indices)
    marker.write_text(json.dumps({"settings": settings, "counts": counts}, indent=2))
    return counts


def _parse_classes(pairs: list[str]) -> dict[int, str]:
    classes = {}
    for pair in pairs:
        label, _, name = pair.partition(":")
        if not label.isdigit() or not name:
            raise DataError(
                f"--classes entry {pair!r} must look like LABEL:name, e.g. 0:tshirt_top"
            )
        classes[int(label)] = name
    return classes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--output", type=Path, default=Path("data/fashion_pair"))
    parser.add_argument("--classes", nargs="+", default=["0:tshirt_top", "6:shirt"])
    parser.add_argument("--val-per-class", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--download-fallback",
        action="store_true",
        help="if --source lacks the files, download them with Keras' downloader",
    )
    args = parser.parse_args(argv)
    try:
        if args.download_fallback and not (args.source / FASHION_FILES["train"][0]).exists():
            args.source = download_with_keras()
        counts = prepare_fashion(
            source=args.source,
            output=args.output,
            classes=_parse_classes(args.classes),
            val_per_class=args.val_per_class,
            seed=args.seed,
        )
    except DataError as error:
        print(f"imgsweep: error: {error}", file=sys.stderr)
        return 2
    summary = ", ".join(f"{split} {count}" for split, count in counts.items())
    print(f"{args.output}: {summary} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
