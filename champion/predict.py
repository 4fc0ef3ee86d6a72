"""`make predict IMAGES=path/`: the champion (or a named version) on a folder or one image.

python -m champion.predict PATH [--model NAME[@ALIAS|/VERSION]] [--output predictions.csv]
    [--explain] [hydra overrides, e.g. tracking.mlruns_dir=... registry.model_name=...]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.console import import_tensorflow_quietly, run_command
from pipelines.errors import ImgsweepError

if TYPE_CHECKING:  # TensorFlow is imported later, quietly
    from champion.versions import ServedModel
    from pipelines.inference import Predictions


@dataclass(frozen=True)
class PredictRun:
    served: ServedModel
    predictions: Predictions
    output: Path
    seconds: float
    # The version's two-class decision threshold (None: argmax); Grad-CAM overlays' folder.
    threshold: float | None = None
    explained: Path | None = None


def write_predictions(
    path: Path, predictions: Predictions, class_names: list[str], threshold: float | None = None
) -> None:
    """One row per decoded file: file, predicted class name, then each class's probability.

    The predicted class follows the version's decision threshold where it has one.
    """
    from pipelines.inference import labelled

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file", "predicted_class", *(f"p_{name}" for name in class_names)])
        for file, answer in zip(
            predictions.files,
            labelled(predictions.probabilities, class_names, threshold),
            strict=True,
        ):
            writer.writerow(
                [
                    file,
                    *(
                        value if isinstance(value, str) else f"{value:.6f}"
                        for value in answer.values()
                    ),
                ]
            )


def predict_path(
    *, target: Path, reference: str, output: Path, cfg, explain: bool = False
) -> PredictRun:
    """Load the version `reference` names, predict every file under `target`, write the CSV
    (and with `explain`, a Grad-CAM overlay per image in `<output>_gradcam/`)."""
    from champion.decision import stored_threshold
    from champion.versions import load_served_model, open_registry
    from pipelines.calibration.threshold import predicted_classes
    from pipelines.config import resolve_path
    from pipelines.inference import find_files, predict_files
    from pipelines.reports.gradcam import check_explainable
    from pipelines.reports.gradcam_files import write_gradcam_overlays

    if not target.exists():
        raise ImgsweepError(f"'{target}' does not exist; give a folder of images or one image")
    files = find_files(target)
    if not files:
        raise ImgsweepError(f"'{target}' holds no files")
    client = open_registry(
        mlruns_dir=resolve_path(cfg.tracking.mlruns_dir), tracking_uri=cfg.tracking.tracking_uri
    )
    served = load_served_model(client, reference, default_alias=cfg.registry.champion_alias)
    if explain:
        check_explainable(served.model)
    threshold = stored_threshold(client, served.name, served.version)
    started = time.perf_counter()
    predictions = predict_files(served.model, files, settings=served.read_settings)
    seconds = time.perf_counter() - started
    write_predictions(output, predictions, served.class_names, threshold)
    explained = None
    if explain:
        explained = output.with_name(f"{output.stem}_gradcam")
        write_gradcam_overlays(
            served.model, predictions.files,
            predicted_classes(predictions.probabilities, threshold),
            settings=served.read_settings, root=target, folder=explained,
        )  # fmt: skip
    return PredictRun(served, predictions, output, seconds, threshold, explained)


def format_predict_summary(run: PredictRun) -> str:
    """The model used, counts per predicted class, throughput, and the skipped files by reason."""
    served, predictions = run.served, run.predictions
    settings = served.read_settings
    size = "x".join(map(str, settings.image_size))
    lines = [f"model: {served.name} v{served.version} ({size} {settings.color_mode})"]
    done = len(predictions.files)
    rate = done / run.seconds if run.seconds > 0 else 0.0
    lines.append(
        f"predicted {done} images in {run.seconds:.1f} s ({rate:.0f} img/s) -> {run.output}"
    )
    from pipelines.calibration.threshold import predicted_classes

    if run.threshold is not None:
        lines.append(f"decision threshold {run.threshold:.4f} on p({served.class_names[1]})")
    predicted = Counter(predicted_classes(predictions.probabilities, run.threshold).tolist())
    width = max(len(name) for name in served.class_names)
    for index, name in enumerate(served.class_names):
        lines.append(f"  {name:<{width}}  {predicted.get(index, 0)}")
    skipped = predictions.skipped
    lines.append(f"skipped {len(skipped)} file{'s' if len(skipped) != 1 else ''}")
    for reason, count in Counter(skipped.values()).most_common():
        example = next(file for file, why in skipped.items() if why == reason)
        lines.append(f"  {count} {reason} (e.g. {example})")
    if run.explained is not None:
        lines.append(f"Grad-CAM overlays -> {run.explained}/")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", type=Path, help="a folder (searched recursively) or one image")
    parser.add_argument(
        "--model",
        help="NAME, NAME@ALIAS or NAME/VERSION (default: registry.model_name@champion)",
    )
    parser.add_argument("--output", type=Path, default=Path("predictions.csv"))
    parser.add_argument(
        "--explain", action="store_true", help="Grad-CAM overlay PNGs beside the CSV"
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the config")
    args = parser.parse_intermixed_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    def run() -> None:
        from pipelines.config import compose_config

        cfg = compose_config(args.overrides)
        import_tensorflow_quietly()
        result = predict_path(
            target=args.images,
            reference=args.model or cfg.registry.model_name,
            output=args.output,
            cfg=cfg,
            explain=args.explain,
        )
        print(format_predict_summary(result))

    return run_command(run)


if __name__ == "__main__":
    sys.exit(main())
