"""A trained model on image files: read them as training did, keep going past bad ones."""

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from pipelines.data.checks import SKIP_LABELS, read_image
from pipelines.evaluate import predict_probabilities


@dataclass(frozen=True)
class Predictions:
    files: list[str]
    probabilities: np.ndarray
    skipped: dict[str, str]  # file → why it was skipped


@dataclass(frozen=True)
class ReadSettings:
    """How training read its images (from the run's config): predict must read the same way."""

    image_size: tuple[int, int]
    color_mode: str
    crop: tuple[int, int] | None = None


def read_batches(
    files: Sequence[str], *, settings: ReadSettings, batch_size: int = 256
) -> Iterator[tuple[list[str], np.ndarray, dict[str, str]]]:
    """(files read, uint8 images, skipped file → reason) a batch at a time, read in threads.

    The loader's own `read_image` (Pillow: convert, centre-crop, resize), so a model sees
    any-size, any-mode files exactly as it saw its training images.
    """
    with ThreadPoolExecutor() as pool:
        for start in range(0, len(files), batch_size):
            batch = files[start : start + batch_size]
            results = pool.map(
                lambda file: read_image(
                    Path(file),
                    image_size=settings.image_size,
                    crop=settings.crop,
                    color_mode=settings.color_mode,
                ),
                batch,
            )
            read, images, skipped = [], [], {}
            for file, result in zip(batch, results, strict=True):
                if result.status == "ok":
                    read.append(file)
                    images.append(result.pixels)
                else:
                    skipped[file] = SKIP_LABELS[result.status]
            yield read, np.stack(images) if images else None, skipped


def find_files(target: Path) -> list[str]:
    """`target` itself if it is a file, else every file under it (recursively), sorted."""
    if target.is_file():
        return [str(target)]
    return sorted(str(path) for path in target.rglob("*") if path.is_file())


def predict_files(
    model: keras.Model, files: Sequence[str], *, settings: ReadSettings, batch_size: int = 256
) -> Predictions:
    """Class probabilities of every file that reads, and the reason for each that does not."""
    read_files, rows, skipped = [], [], {}
    for read, images, batch_skipped in read_batches(
        files, settings=settings, batch_size=batch_size
    ):
        skipped |= batch_skipped
        if images is not None:
            read_files.extend(read)
            rows.append(predict_probabilities(model, images.astype("float32")))
    width = model.output_shape[-1]
    probabilities = np.concatenate(rows) if rows else np.empty((0, max(width, 2)))
    return Predictions(read_files, probabilities, skipped)


def labelled(
    probabilities: np.ndarray, class_names: Sequence[str], threshold: float | None = None
) -> list[dict[str, Any]]:
    """Per image: `predicted_class` and `p_<class>` each. The class is the most probable one,
    or with two classes and a decision `threshold`, the second when its probability reaches it.
    """
    from pipelines.calibration.threshold import predicted_classes

    predicted = predicted_classes(probabilities, threshold)
    return [
        {
            "predicted_class": class_names[int(index)],
            **{f"p_{name}": float(value) for name, value in zip(class_names, row, strict=True)},
        }
        for row, index in zip(probabilities, predicted, strict=True)
    ]
