"""A trained model on image files: decode them as training did, keep going past bad ones."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pipelines.evaluate import class_probabilities

# Formats tf.io.decode_image reads, by their first bytes: a file that starts like one of
# these but does not decode is corrupt; anything else is not an image we can read.
IMAGE_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")
OTHER_IMAGE_SIGNATURES = (b"II*\x00", b"MM\x00*", b"RIFF")  # TIFF, WebP


@dataclass(frozen=True)
class Predictions:
    files: list[str]
    probabilities: np.ndarray
    skipped: dict[str, str]  # file → why it was skipped


def _decode(path: tf.Tensor, image_size: tuple[int, int], channels: int) -> tf.Tensor:
    # The same ops as the training pipeline (pipelines/data/datasets.py), so a model sees
    # any-size, any-mode files exactly as it saw its training images.
    image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
    image.set_shape([None, None, channels])
    return tf.image.resize(tf.cast(image, tf.float32), image_size)


def decoded_batches(
    files: Sequence[str], *, image_size: tuple[int, int], channels: int, batch_size: int = 256
) -> tf.data.Dataset:
    """(file names, raw 0..255 images) batches of the files that decode; the rest are dropped."""
    paths = tf.data.Dataset.from_tensor_slices(tf.constant(list(files), dtype=tf.string))
    pairs = paths.map(
        lambda path: (path, _decode(path, image_size, channels)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    ).ignore_errors()
    return pairs.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def read_images(files: Sequence[str], *, image_size: tuple[int, int], channels: int) -> np.ndarray:
    """The files as one (n, height, width, channels) float array; every file must decode."""
    images = [
        batch for _, batch in decoded_batches(files, image_size=image_size, channels=channels)
    ]
    stacked = np.concatenate([np.asarray(batch) for batch in images]) if images else np.empty(0)
    if len(stacked) != len(files):
        raise ValueError(f"{len(files) - len(stacked)} of {len(files)} images did not decode")
    return stacked


def skip_reason(path: Path) -> str:
    """Why a file that did not decode was skipped, from its size and first bytes."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(16)
    except OSError as error:
        return f"unreadable ({error.strerror})"
    if not head:
        return "empty file"
    if head.startswith(IMAGE_SIGNATURES):
        return "corrupt image"
    if head.startswith(OTHER_IMAGE_SIGNATURES):
        return "unsupported image format (use PNG, JPEG, GIF or BMP)"
    return "not an image"


def find_files(target: Path) -> list[str]:
    """`target` itself if it is a file, else every file under it (recursively), sorted."""
    if target.is_file():
        return [str(target)]
    return sorted(str(path) for path in target.rglob("*") if path.is_file())


def predict_files(
    model: keras.Model,
    files: Sequence[str],
    *,
    image_size: tuple[int, int],
    channels: int,
    batch_size: int = 256,
) -> Predictions:
    """Class probabilities of every file that decodes, and the reason for each that does not."""
    decoded, rows = [], []
    for names, images in decoded_batches(
        files, image_size=image_size, channels=channels, batch_size=batch_size
    ):
        decoded.extend(name.decode() for name in names.numpy())
        rows.append(class_probabilities(np.asarray(model.predict_on_batch(images))))
    kept = set(decoded)
    skipped = {file: skip_reason(Path(file)) for file in files if file not in kept}
    width = model.output_shape[-1]
    probabilities = np.concatenate(rows) if rows else np.empty((0, max(width, 2)))
    return Predictions(decoded, probabilities, skipped)
