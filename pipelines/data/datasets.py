"""Decode every image once (parallel tf.data), keep the uint8 pixels, serve shuffled batches.

The decoded pixels of all splits live in one uint8 array: in memory when it fits
`data.cache_budget_mb`, else in a file under the cache folder read a batch at a time (and
reused by the next process, e.g. a resumed sweep). Each epoch gathers batches by shuffled row
index, so nothing is decoded during training and a decode error cannot stop a trial.
"""

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pipelines.data.checks import FileReport
from pipelines.data.folders import FolderSplit

DECODE_BATCH = 256


def _decode_fn(image_size: tuple[int, int], channels: int, crop: tuple[int, int] | None):
    def decode(row, path):
        raw = tf.io.read_file(path)
        image = tf.io.decode_image(raw, channels=channels, expand_animations=False)
        image.set_shape([None, None, channels])
        if crop is not None:
            height, width = tf.shape(image)[0], tf.shape(image)[1]
            image = tf.image.crop_to_bounding_box(
                image, (height - crop[0]) // 2, (width - crop[1]) // 2, crop[0], crop[1]
            )
        # Antialiased, so large photos shrunk to a small image_size do not alias.
        image = tf.image.resize(image, image_size, antialias=True)
        return row, tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)

    return decode


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


def decode_images(
    files: list[str],
    *,
    image_size: tuple[int, int],
    channels: int,
    crop: tuple[int, int] | None,
    cache_budget_mb: float,
    cache_dir: Path,
) -> tuple[np.ndarray | DiskImages, np.ndarray]:
    """(pixels, decoded mask): row i holds files[i]; a file TensorFlow rejects is masked out."""
    shape = (len(files), *image_size, channels)
    row_bytes = int(np.prod(shape[1:]))
    in_memory = len(files) * row_bytes / 2**20 <= cache_budget_mb
    if in_memory:
        pixels, sink = np.zeros(shape, dtype=np.uint8), None
    else:
        stamp = "\n".join(f"{f}:{os.stat(f).st_size}:{os.stat(f).st_mtime_ns}" for f in files)
        key = hashlib.sha1(f"{shape}|{crop}|{stamp}".encode()).hexdigest()[:16]
        target = cache_dir / f"decoded-{key}-{'x'.join(map(str, shape[1:]))}.u8"
        done = target.with_suffix(".ok.npy")
        if target.exists() and done.exists():
            return DiskImages(target, shape), np.load(done)
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        sink = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.ftruncate(sink, len(files) * row_bytes)
    decoded = np.zeros(len(files), dtype=bool)
    rows = tf.data.Dataset.from_tensor_slices((np.arange(len(files)), list(files)))
    batches = (
        rows.map(
            _decode_fn(image_size, channels, crop),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=False,  # rows carry their index, so order does not matter here
        )
        .ignore_errors()  # Pillow passed these files; a file TensorFlow still rejects is masked
        .batch(DECODE_BATCH)
        .prefetch(2)
    )
    for indices, images in batches.as_numpy_iterator():
        decoded[indices] = True
        if sink is None:
            pixels[indices] = images
            continue
        # Written row by row rather than through a memory map, so resident memory stays small.
        for index, image in zip(indices, images, strict=True):
            os.pwrite(sink, image.tobytes(), int(index) * row_bytes)
    if in_memory:
        return pixels, decoded
    os.close(sink)
    os.replace(partial, target)
    np.save(done, decoded)
    return DiskImages(target, shape), decoded


def encode_labels(labels: np.ndarray, *, num_classes: int, label_mode: str) -> np.ndarray:
    """(n, 1) floats for a binary (sigmoid) model, one-hot rows for a categorical one."""
    if label_mode == "binary":
        return labels.astype("float32").reshape(-1, 1)
    return np.eye(num_classes, dtype="float32")[labels]


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """n / (classes × count) per class, as scikit-learn's `balanced` gives them."""
    counts = np.bincount(labels, minlength=num_classes)
    return {
        label: float(len(labels) / (num_classes * count)) if count else 0.0
        for label, count in enumerate(counts)
    }


@dataclass
class ImageFolderData:
    """The splits of one folder tree and every image decoded once, shared by a sweep's trials."""

    class_names: list[str]
    splits: dict[str, FolderSplit]
    image_size: tuple[int, int]
    channels: int
    label_mode: str  # binary | categorical
    pixels: np.ndarray | DiskImages
    rows: dict[str, int]  # file → row of `pixels`
    report: FileReport

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
        return self.pixels[self.rows_of(split)]


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
        images = tf.numpy_function(lambda indices: pixels[indices], [rows], tf.uint8)
        images = tf.cast(tf.ensure_shape(images, [None, *shape]), tf.float32)
        if augmentation is not None:
            images = augmentation(images, training=True)
        return images, batch_labels

    batches = pairs.batch(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    return batches.prefetch(tf.data.AUTOTUNE)
