"""Inference latency of the export formats side by side: Keras, SavedModel, ONNX Runtime, LiteRT.

    python -m bench.export_latency                  # small_cnn, vgg_cnn, their 2-member ensemble
    python -m bench.export_latency --rounds 1 --single-calls 50     # a quick look

Each model is built as `model=small_cnn` / `model=vgg_cnn` trains it (conf/model/*.yaml, 28x28
grayscale, two classes: one sigmoid unit) and the ensemble is pipelines.ensemble's one-graph
average of the two. Random weights: latency does not depend on them (parity on trained models
is `make export`'s and tests/test_export.py's). Each is exported in every format (checked on
256 random images against Keras, as `make export` does), then every round times each runtime of
each model in turn, so a change in machine load touches all of them alike; the median round
is reported. Single-image: p50/p99 of one-image calls; batch: img/s on batches of 256.
"""

import argparse
import os
import platform
import statistics
import tempfile
from pathlib import Path

from pipelines.console import import_tensorflow_quietly

MODELS = ("small_cnn", "vgg_cnn")
INPUT_SHAPE = (28, 28, 1)


def build_family(config_name: str):
    """The model `model=<config_name>` trains, on 28x28x1 images and two classes."""
    from pipelines.config import compose_config
    from pipelines.models import build_model
    from pipelines.plan import plan_from_config

    plan = plan_from_config(compose_config([f"model={config_name}"]))
    return build_model(
        name=plan.model_name,
        input_shape=INPUT_SHAPE,
        num_classes=2,
        preprocessing=plan.preprocessing,
        **plan.model_settings,
    )


def build_models() -> dict:
    """The two families and their equal-weight ensemble (one Keras graph)."""
    from pipelines.ensemble import build_ensemble_model

    models = {name: build_family(name) for name in MODELS}
    models["ensemble (both)"] = build_ensemble_model(
        list(models.values()), [0.5, 0.5], input_shape=INPUT_SHAPE, member_names=list(MODELS)
    )
    return models


def exported_runners(label: str, model, images, folder: Path) -> dict:
    """Keras and each export that passes the parity check, as runners; each check printed."""
    from champion.export.formats import FORMATS, keras_runner
    from champion.export.parity import check_export

    runners = {"Keras": keras_runner(model)}
    for export_format in FORMATS.values():
        check = check_export(model, export_format, images=images, folder=folder)
        if check.usable:
            runners[export_format.label] = export_format.load(check.path)
            outcome = f"max |dp| {check.max_abs_diff:.1e}, agreement {check.agreement:.4f}"
        else:
            outcome = check.reason
        print(f"parity {label:<16} {export_format.label:<13} {outcome}")
    return runners


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--single-calls", type=int, default=200)
    parser.add_argument("--batch-calls", type=int, default=5)
    args = parser.parse_args()
    import_tensorflow_quietly()
    import keras
    import numpy as np
    import tensorflow as tf

    from champion.export.latency import measure_latency

    images = np.random.default_rng(0).uniform(0, 255, (256, *INPUT_SHAPE)).astype("float32")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as temporary:
        runners = {}
        for label, model in build_models().items():
            folder = Path(temporary) / label.split()[0]
            folder.mkdir()
            runners[label] = (
                model.count_params(),
                exported_runners(label, model, images, folder),
            )
        rounds = {(label, name): [] for label, (_, each) in runners.items() for name in each}
        for _ in range(args.rounds):
            for label, (_, each) in runners.items():
                for name, run in each.items():
                    rounds[label, name].append(
                        measure_latency(
                            run,
                            images,
                            single_calls=args.single_calls,
                            batch_calls=args.batch_calls,
                        )
                    )
    load_after = os.getloadavg()[0]
    print(
        f"inference on CPU ({os.cpu_count()} cores, {platform.machine()}), tensorflow "
        f"{tf.__version__}, keras {keras.__version__}; median of {args.rounds} rounds of "
        f"{args.single_calls} single-image calls and {args.batch_calls} batches of 256; "
        f"load average {load_before:.1f} before, {load_after:.1f} after"
    )
    print(
        f"{'model':<16} {'params':>8} {'runtime':<13} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'img/s':>7} {'p50 vs Keras':>12} {'img/s vs Keras':>14}"
    )
    for label, (params, each) in runners.items():
        keras_p50 = statistics.median(item.p50_ms for item in rounds[label, "Keras"])
        keras_rate = statistics.median(item.images_per_second for item in rounds[label, "Keras"])
        for name in each:
            measured = rounds[label, name]
            p50 = statistics.median(item.p50_ms for item in measured)
            p99 = statistics.median(item.p99_ms for item in measured)
            rate = statistics.median(item.images_per_second for item in measured)
            print(
                f"{label:<16} {params:>8,} {name:<13} {p50:>7.3f} {p99:>7.3f} {rate:>7.0f} "
                f"{keras_p50 / p50:>11.1f}x {rate / keras_rate:>13.2f}x"
            )


if __name__ == "__main__":
    main()
