"""Images/s of the usual notebook's ImageDataGenerator vs this loader vs an in-memory numpy feed.

    python -m bench.loader_throughput [--quick] [--source data/fashion_pair]

Side by side, on the default tree (28x28 grey PNG) and on a 96x96 RGB JPEG version made
from the same images: ImageDataGenerator.flow_from_directory (it decodes every epoch), this
loader's first epoch (the checked read of every file, then the epoch) and later epochs, and
the same batches from a numpy array already in memory (the upper bound). The tf.data
pipelines are consumed inside the graph, as model.fit's train step consumes them; the
generator is a Python iterator, consumed as fit consumes it.
Resident memory growth is reported against data.cache_budget_mb. Results also go to
bench/results/loader_throughput.json.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from pipelines.console import import_tensorflow_quietly

BATCH_SIZE = 64
# This machine is shared and small: every figure is the best of a few epochs.
GENERATOR_EPOCHS = 2
LATER_EPOCHS = 5
RESULTS = Path(__file__).resolve().parent / "results"


def resident_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def make_trees(source: Path, work: Path, per_class: int) -> dict[str, Path]:
    """train/ (per_class images a class) and a small val/, as 28x28 grey PNG and 96x96 RGB JPEG."""
    trees = {"28x28 grey PNG": work / "gray28", "96x96 RGB JPEG": work / "rgb96"}
    for split, count in (("train", per_class), ("val", 8)):
        for class_dir in sorted((source / split).iterdir()):
            files = sorted(class_dir.glob("*.png"))[:count]
            for name, root in trees.items():
                target = root / split / class_dir.name
                target.mkdir(parents=True, exist_ok=True)
                for file in files:
                    if name.startswith("28"):
                        os.link(file, target / file.name)
                    else:
                        image = Image.open(file).convert("RGB").resize((96, 96), Image.BILINEAR)
                        image.save(target / f"{file.stem}.jpg", quality=95)
    return trees


def _as_float(images, labels):
    import tensorflow as tf

    return tf.cast(images, tf.float32), labels


def _count(count, batch):
    return count + 1


def time_epochs(batches, epochs: int) -> list[float]:
    """Seconds per full pass, consumed inside the graph as model.fit's train step does."""
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        batches.reduce(0, _count)
        seconds.append(time.perf_counter() - started)
    return seconds


def bench_tree(root: Path, *, image_size, color_mode: str, budget_mb: float, cache: Path) -> dict:
    import tensorflow as tf

    from pipelines.data.datasets import DiskImages, build_batches
    from pipelines.data.loading import load_image_folders

    generator = tf.keras.preprocessing.image.ImageDataGenerator(rescale=1 / 255)
    flow = generator.flow_from_directory(
        root / "train",
        target_size=image_size,
        color_mode=color_mode,
        class_mode="binary",
        batch_size=BATCH_SIZE,
        shuffle=True,
        seed=0,
    )
    images = flow.samples
    generator_epochs = []
    for _ in range(GENERATOR_EPOCHS):
        started = time.perf_counter()
        for _ in range(len(flow)):
            next(flow)
        generator_epochs.append(time.perf_counter() - started)
    generator_seconds = min(generator_epochs)

    before = resident_mb()
    started = time.perf_counter()
    data = load_image_folders(
        train_dir=root / "train",
        val_dir=root / "val",
        test_dir=None,
        val_fraction=None,
        image_size=image_size,
        crop=None,
        color_mode=color_mode,
        label_mode="auto",
        max_images_per_class=None,
        min_val_per_class=0,
        seed=0,
        cache_budget_mb=budget_mb,
        cache_dir=cache,
    )
    load_seconds = time.perf_counter() - started
    train = data.splits["train"]
    batches = build_batches(data, train, batch_size=BATCH_SIZE, shuffle_seed=0)
    first, *later = time_epochs(batches, 1 + LATER_EPOCHS)
    growth = resident_mb() - before

    pixels = data.images(train)
    labels = train.labels.astype("float32").reshape(-1, 1)
    in_memory = (
        tf.data.Dataset.from_tensor_slices((pixels, labels))
        .shuffle(len(labels), seed=0, reshuffle_each_iteration=True)
        .batch(BATCH_SIZE)
        .map(_as_float, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    _, *bound = time_epochs(in_memory, 1 + LATER_EPOCHS)
    rates = {
        "image_data_generator": images / generator_seconds,
        "loader_first_epoch": images / (load_seconds + first),
        "loader_later_epochs": images / min(later),
        "numpy_in_memory": images / min(bound),
    }
    return {
        "images": images,
        "images_per_second": rates,
        "load_seconds": load_seconds,
        "later_vs_generator": rates["loader_later_epochs"] / rates["image_data_generator"],
        "bound_vs_later": rates["numpy_in_memory"] / rates["loader_later_epochs"],
        "first_vs_generator": rates["loader_first_epoch"] / rates["image_data_generator"],
        "decoded_mb": pixels.nbytes / 2**20 * (len(data.rows) / len(train)),
        "resident_growth_mb": growth,
        "cache_budget_mb": budget_mb,
        "pixels_on_disk": isinstance(data.pixels, DiskImages),
    }


def report(name: str, result: dict) -> str:
    rates = result["images_per_second"]
    where = "file (pread)" if result["pixels_on_disk"] else "memory"
    rows = [
        ("ImageDataGenerator.flow_from_directory", "image_data_generator", ""),
        (
            "this loader, first epoch (read+epoch)",
            "loader_first_epoch",
            f"{result['first_vs_generator']:.1f}x the generator (target >= 1)",
        ),
        (
            "this loader, later epochs",
            "loader_later_epochs",
            f"{result['later_vs_generator']:.0f}x the generator (target >= 20)",
        ),
        (
            "numpy array in memory (upper bound)",
            "numpy_in_memory",
            f"{result['bound_vs_later']:.2f}x this loader (target <= 1.2)",
        ),
    ]
    lines = [f"{name}: {result['images']} train images, batch {BATCH_SIZE}, pixels in {where}"]
    lines += [f"  {label:<39} {rates[key]:>9,.0f} img/s   {note}" for label, key, note in rows]
    lines.append(
        f"  resident memory +{result['resident_growth_mb']:.0f} MB for "
        f"{result['decoded_mb']:.1f} MB decoded; cache budget {result['cache_budget_mb']:g} MB"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("data/fashion_pair"))
    parser.add_argument("--quick", action="store_true", help="1000 images a class, not 5500")
    parser.add_argument("--budget-mb", type=float, default=1024, help="data.cache_budget_mb")
    args = parser.parse_args(argv)
    if not (args.source / "train").is_dir():
        print(
            f"imgsweep: error: '{args.source}/train' is missing; run `make data`", file=sys.stderr
        )
        return 2
    import_tensorflow_quietly()
    per_class = 1000 if args.quick else 5500
    results = {}
    with tempfile.TemporaryDirectory(prefix="loader-bench-") as work:
        trees = make_trees(args.source, Path(work), per_class)
        settings = {"28x28 grey PNG": ((28, 28), "grayscale"), "96x96 RGB JPEG": ((96, 96), "rgb")}
        runs = [(name, args.budget_mb) for name in trees]
        runs.append(("96x96 RGB JPEG", 0))  # the same, over budget: pixels in a file
        for name, budget in runs:
            cache = Path(work) / f"cache-{len(results)}"
            image_size, color_mode = settings[name]
            label = name if budget else f"{name}, cache budget 0"
            results[label] = bench_tree(
                trees[name],
                image_size=image_size,
                color_mode=color_mode,
                budget_mb=budget,
                cache=cache,
            )
            print(report(label, results[label]), flush=True)
            shutil.rmtree(cache, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "loader_throughput.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
