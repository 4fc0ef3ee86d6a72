"""`make predict EXPLAIN=1`: a Grad-CAM overlay PNG per predicted image, beside the CSV."""

from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from pipelines.inference import ReadSettings, read_batches
from pipelines.reports.gradcam import gradcam_maps, overlay

# Overlays are drawn at least this many pixels across, so a 28 px image is worth looking at.
SMALLEST_SIDE = 224


def overlay_path(file: str, *, root: Path, folder: Path) -> Path:
    """Where a file's overlay goes: its path under `root` (the predicted folder), as PNG."""
    source = Path(file)
    relative = source.relative_to(root) if root.is_dir() else Path(source.name)
    return folder / relative.with_suffix(".png")


def write_gradcam_overlays(
    model: keras.Model,
    files: Sequence[str],
    predicted: Sequence[int],
    *,
    settings: ReadSettings,
    root: Path,
    folder: Path,
) -> int:
    """One overlay per file (each for its predicted class); returns how many were written."""
    classes = dict(zip(files, predicted, strict=True))
    written = 0
    for read, images, _ in read_batches(list(files), settings=settings, batch_size=64):
        if images is None:
            continue
        maps = gradcam_maps(model, images.astype("float32"), np.array([classes[f] for f in read]))
        for file, image, heat in zip(read, images, maps, strict=True):
            picture = Image.fromarray(overlay(image, heat))
            scale = max(1, SMALLEST_SIDE // min(picture.size))
            size = (picture.width * scale, picture.height * scale)
            picture = picture.resize(size, Image.Resampling.NEAREST)
            path = overlay_path(file, root=root, folder=folder)
            path.parent.mkdir(parents=True, exist_ok=True)
            picture.save(path)
            written += 1
    return written
