"""Every image decoded once into one uint8 array; epochs gather shuffled batches from it.

The array is in memory when it fits `data.cache_budget_mb`, else in a file under the cache
folder read a batch of rows at a time. Either way it is also kept on disk with each file's
outcome, keyed by the files' sizes and mtimes and the decode settings, so the next process
(a resumed sweep, `make train` after `make sweep`) reads it back instead of decoding again.
"""

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from sklearn.utils.class_weight import compute_class_weight

from pipelines.data.checks import FileReport, read_image
from pipelines.data.folders import FolderSplit
from pipelines.disk import DiskFull, written_whole


class DiskImages:
    """A uint8 (n, H, W, C) array in a file, read a batch of rows at a time (pread)."""

    def __init__(self, path: Path, shape: tuple[int, ...]):
        self.path, self.shape = path, shape
        self.row_bytes = int(np.prod(shape[1:]))
        self._fd = os.open(path, os.O_RDONLY)

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), *self.shape[1:]), dtype=np.uint8)
        for position, row in enumerate(rows):
            os.preadv(self._fd, [memoryview(out[position]).cast("B")], int(row) * self.row_bytes)
        return out

    def __del__(self):
        os.close(self._fd)


def _cache_key(files: list[Path], settings: dict) -> str:
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode())
    for file in files:
        stat = file.stat()
        digest.update(f"{file}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _read_all(files, partial, shape, in_memory, image_size, crop, color_mode):
    """Read every file in threads, write the rows to `partial`; (pixels if in_memory, outcomes)."""
    row_bytes = int(np.prod(shape[1:]))
    pixels = np.zeros(shape, dtype=np.uint8) if in_memory else None
    sink = None if in_memory else os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    if sink is not None:
        os.ftruncate(sink, len(files) * row_bytes)
    outcomes = [None] * len(files)

    def read_rows(rows: range) -> None:
        for row in rows:
            result = read_image(
                files[row], image_size=image_size, crop=crop, color_mode=color_mode
            )
            outcomes[row] = (result.status, result.kind)
            if result.pixels is None:
                continue
            if pixels is not None:
                pixels[row] = result.pixels
            else:  # row by row rather than through a memory map: resident memory stays small
                os.pwrite(sink, result.pixels.tobytes(), row * row_bytes)

    # One share of rows per core: Pillow releases the GIL while it decodes and
    # resizes, and one task per thread keeps the pool's own overhead out of small images.
    workers = os.cpu_count() or 1
    shares = [range(start, len(files), workers) for start in range(workers)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(read_rows, shares))
    if sink is not None:
        os.close(sink)
    else:
        # Not ndarray.tofile: on a full disk it reports a short write without ENOSPC.
        with open(partial, "wb") as handle:
            handle.write(pixels.data)
    return pixels, outcomes


def _write_outcomes(outcomes_file: Path, outcomes: list, pixels_file: Path) -> None:
    """Written last: it marks the cache pair complete. Without room for it, neither stays."""
    partial = outcomes_file.with_name(f".{outcomes_file.name}.{os.getpid()}.partial")
    try:
        with written_whole(outcomes_file, partial, what="the decoded-image cache", needed_bytes=0):
            partial.write_text(json.dumps(outcomes))
            os.replace(partial, outcomes_file)
    except DiskFull:
        pixels_file.unlink(missing_ok=True)
        raise


def decode_images(
    files: list[Path],
    *,
    image_size: tuple[int, int],
    crop: tuple[int, int] | None,
    color_mode: str,
    channels: int,
    cache_budget_mb: float,
    cache_dir: Path,
) -> tuple["tf.Tensor | DiskImages", list[tuple[str, str | None]], bool]:
    """(pixels, (status, conversion kind) per file, whether it came from the cache).

    Row i of pixels holds files[i] (zeros where the file is skipped).
    """
    shape = (len(files), *image_size, channels)
    row_bytes = int(np.prod(shape[1:]))
    in_memory = len(files) * row_bytes / 2**20 <= cache_budget_mb
    settings = {"size": image_size, "crop": crop, "color_mode": color_mode}
    stem = cache_dir / f"decoded-{_cache_key(files, settings)}-{'x'.join(map(str, shape[1:]))}"
    pixels_file, outcomes_file = stem.with_suffix(".u8"), stem.with_suffix(".json")
    cached = pixels_file.exists() and outcomes_file.exists()
    if cached:
        outcomes = [tuple(outcome) for outcome in json.loads(outcomes_file.read_text())]
        pixels = np.fromfile(pixels_file, dtype=np.uint8).reshape(shape) if in_memory else None
    else:
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = stem.with_name(f".{stem.name}.{os.getpid()}.partial")
        with written_whole(
            pixels_file,
            partial,
            what="the decoded-image cache",
            needed_bytes=len(files) * row_bytes,
        ):
            pixels, outcomes = _read_all(
                files, partial, shape, in_memory, image_size, crop, color_mode
            )
            os.replace(partial, pixels_file)
        _write_outcomes(outcomes_file, outcomes, pixels_file)
    if in_memory:
        # A tensor, so batches are gathered inside the graph; the numpy copy is dropped here.
        return tf.constant(pixels), outcomes, cached
    return DiskImages(pixels_file, shape), outcomes, cached


def encode_labels(labels: np.ndarray, *, num_classes: int, label_mode: str) -> np.ndarray:
    """(n, 1) floats for a binary (sigmoid) model, one-hot rows for a categorical one."""
    if label_mode == "binary":
        return labels.astype("float32").reshape(-1, 1)
    return np.eye(num_classes, dtype="float32")[labels]


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """scikit-learn's `balanced` weights, n / (classes × count), as Keras' class_weight dict.

    Every class must be in `labels`: the loader refuses a train split that lacks one.
    """
    classes = np.arange(num_classes)
    weights = compute_class_weight("balanced", classes=classes, y=labels)
    return dict(zip(classes.tolist(), weights.tolist(), strict=True))


@dataclass
class ImageFolderData:
    """The splits of one folder tree and every image decoded once, shared by a sweep's trials."""

    class_names: list[str]
    splits: dict[str, FolderSplit]
    image_size: tuple[int, int]
    channels: int
    label_mode: str  # binary | categorical
    pixels: tf.Tensor | DiskImages
    rows: dict[str, int]  # file → row of `pixels`
    report: FileReport
    # One line when a val class is smaller than data.min_val_per_class (loading.small_val_warning).
    val_warning: str | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (*self.image_size, self.channels)

    @property
    def output_units(self) -> int:
        return 1 if self.label_mode == "binary" else self.num_classes

    def rows_of(self, split: FolderSplit) -> np.ndarray:
        return np.fromiter((self.rows[file] for file in split.files), np.int64, len(split))

    def images(self, split: FolderSplit) -> np.ndarray:
        """A split's images as uint8 (n, H, W, C), in the split's order."""
        if isinstance(self.pixels, DiskImages):
            return self.pixels[self.rows_of(split)]
        return tf.gather(self.pixels, self.rows_of(split)).numpy()


def _pipeline_options() -> tf.data.Options:
    """tf.data's autotuning off when training runs on the CPU; TensorFlow's default on a GPU.

    On the CPU the input pipeline and the model share the same few cores. There the autotuner
    let some epochs take twice as long as others (11 s and 20 s alternating for the VGG-style
    net on 2 cores, in training and in the refit alike); with it off every epoch takes the
    short time (bench/input_autotune.py, BENCHMARKS.md §18). A GPU's input pipeline has the
    CPU to itself and is where the autotuner earns its keep, so it stays on there.
    """
    options = tf.data.Options()
    if not tf.config.list_physical_devices("GPU"):
        options.autotune.enabled = False
    return options


def build_batches(
    data: ImageFolderData,
    split: FolderSplit,
    *,
    batch_size: int,
    shuffle_seed: int | None = None,
    augmentation: keras.Layer | None = None,
) -> tf.data.Dataset:
    """Batched, prefetched (float 0..255 image, label) pairs; shuffled and augmented if asked."""
    labels = encode_labels(split.labels, num_classes=data.num_classes, label_mode=data.label_mode)
    pairs = tf.data.Dataset.from_tensor_slices((data.rows_of(split), labels))
    if shuffle_seed is not None:
        pairs = pairs.shuffle(len(split), seed=shuffle_seed, reshuffle_each_iteration=True)
    pixels, shape = data.pixels, data.input_shape

    def gather(rows, batch_labels):
        if isinstance(pixels, DiskImages):
            images = tf.numpy_function(lambda indices: pixels[indices], [rows], tf.uint8)
            images = tf.ensure_shape(images, [None, *shape])
        else:
            images = tf.gather(pixels, rows)
        images = tf.cast(images, tf.float32)
        if augmentation is not None:
            images = augmentation(images, training=True)
        return images, batch_labels

    batches = pairs.batch(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    return batches.prefetch(tf.data.AUTOTUNE).with_options(_pipeline_options())
