"""Each export run on the same images as the Keras model: an artifact that fails to write, load
or run, or disagrees beyond the tolerance, is a one-line reason and is removed, never kept."""

import shutil
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from champion.export.formats import ExportFormat, Runner, keras_runner, write_export
from pipelines.evaluate import class_probabilities

# float32 graphs that differ only in op order and fusion stay well inside this.
TOLERANCE = 1e-4
PARITY_BATCH = 256


@dataclass(frozen=True)
class ExportCheck:
    format: ExportFormat
    path: Path | None  # None: no usable artifact (see reason)
    max_abs_diff: float | None
    agreement: float | None  # share of images with the same predicted class
    reason: str | None = None

    @property
    def usable(self) -> bool:
        return self.path is not None


def batched_probabilities(run: Runner, images: np.ndarray) -> np.ndarray:
    """(n, classes) probabilities of `run` over `images`, PARITY_BATCH images a call."""
    rows = [
        class_probabilities(np.asarray(run(images[start : start + PARITY_BATCH])))
        for start in range(0, len(images), PARITY_BATCH)
    ]
    return np.concatenate(rows)


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200]}" if text else type(error).__name__


def check_export(
    model: keras.Model,
    export_format: ExportFormat,
    *,
    images: np.ndarray,
    folder: Path,
    reference: np.ndarray | None = None,
) -> ExportCheck:
    """Write `model` in `export_format`, run it on `images` (at least one), compare with Keras'
    probabilities (`reference`, computed here unless given)."""
    if reference is None:
        reference = batched_probabilities(keras_runner(model), images)
    path = folder / export_format.artifact
    step = "export"
    try:
        path = write_export(model, export_format, folder)
        step = "load"
        run = export_format.load(path)
        step = "run"
        probabilities = batched_probabilities(run, images)
    # Converters and runtimes raise anything (ValueError, ConverterError, onnxruntime's
    # InvalidGraph, RuntimeError): each is the reason this format has no artifact.
    except Exception as error:  # noqa: BLE001
        _remove(path)
        return ExportCheck(export_format, None, None, None, f"{step} failed: {first_line(error)}")
    if probabilities.shape != reference.shape:
        _remove(path)
        return ExportCheck(
            export_format,
            None,
            None,
            None,
            f"outputs {probabilities.shape[1:]} per image, Keras {reference.shape[1:]}",
        )
    difference = float(np.max(np.abs(probabilities - reference)))
    agreement = float(np.mean(probabilities.argmax(axis=1) == reference.argmax(axis=1)))
    if not difference <= TOLERANCE:  # NaN fails too
        _remove(path)
        return ExportCheck(
            export_format,
            None,
            difference,
            agreement,
            f"disagrees with Keras: largest probability difference {difference:.2e} > "
            f"{TOLERANCE:g}",
        )
    return ExportCheck(export_format, path, difference, agreement)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
