"""tf.data pipelines over image files: parallel decode, one cache per split, prefetch."""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pipelines.data.folders import FolderSplit


def _decode_fn(image_size: tuple[int, int], channels: int):
    def decode(path):
        raw = tf.io.read_file(path)
        image = tf.io.decode_image(raw, channels=channels, expand_animations=False)
        image.set_shape([None, None, channels])
        # Pixels stay 0..255 floats: the model's own Rescaling layer scales them, so a
        # saved model takes raw images at predict time.
        return tf.image.resize(tf.cast(image, tf.float32), image_size)

    return decode


def _encode_labels(labels: np.ndarray, num_classes: int) -> np.ndarray:
    if num_classes == 2:
        return labels.astype("float32").reshape(-1, 1)
    return np.eye(num_classes, dtype="float32")[labels]


@dataclass
class ImageFolderData:
    """The scanned splits of one folder tree, decoded at most once per process."""

    class_names: list[str]
    splits: dict[str, FolderSplit]
    image_size: tuple[int, int]
    channels: int
    cache_budget_mb: float
    cache_dir: Path
    _decoded: dict[str, tf.data.Dataset] = field(default_factory=dict, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (*self.image_size, self.channels)

    def decoded(self, split: FolderSplit) -> tf.data.Dataset:
        """(image, encoded label) pairs of a split, cached in memory or on disk by size."""
        # Keyed by content: two seeded subsets share a name but not their files.
        key = hashlib.sha1("\n".join(split.files).encode()).hexdigest()[:16]
        if key not in self._decoded:
            images = tf.data.Dataset.from_tensor_slices(list(split.files)).map(
                _decode_fn(self.image_size, self.channels),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
            labels = tf.data.Dataset.from_tensor_slices(
                _encode_labels(split.labels, self.num_classes)
            )
            pairs = tf.data.Dataset.zip((images, labels))
            decoded_mb = len(split) * np.prod(self.input_shape) * 4 / 2**20
            if decoded_mb <= self.cache_budget_mb:
                pairs = pairs.cache()
            else:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                size = "x".join(map(str, self.input_shape))
                pairs = pairs.cache(str(self.cache_dir / f"{key}-{size}"))
            self._decoded[key] = pairs
        return self._decoded[key]


def build_batches(
    data: ImageFolderData,
    split: FolderSplit,
    *,
    batch_size: int,
    shuffle_seed: int | None = None,
    augmentation: keras.Layer | None = None,
) -> tf.data.Dataset:
    """Batched, prefetched pairs; shuffled and augmented only when asked (the train split)."""
    pairs = data.decoded(split)
    if shuffle_seed is not None:
        pairs = pairs.shuffle(len(split), seed=shuffle_seed, reshuffle_each_iteration=True)
    batches = pairs.batch(batch_size)
    if augmentation is not None:
        batches = batches.map(
            lambda images, labels: (augmentation(images, training=True), labels),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return batches.prefetch(tf.data.AUTOTUNE)
