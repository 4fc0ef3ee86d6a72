"""Training images per second of each model family on this machine, measured side by side.

    python -m bench.model_throughput            # the three families, plus reference variants
    python -m bench.model_throughput --quick    # the families at their defaults only
    python -m bench.time_to_accuracy            # minutes to 0.92 val accuracy on ten classes

Each model is the one `model=<family>` trains on the default data (conf/model/*.yaml on
28×28 grayscale images; transfer resizes to its `resize_to` inside the model), fed random
0..255 images from memory so that only the model's compute is timed. After a warm-up fit
(tracing), every round times a fixed number of steps of each model in turn, so a change in
machine load touches all of them alike; the median round is reported. ImageNet weights
cannot be assumed here: transfer models use random weights, which train at the same speed.
"""

import argparse
import os
import platform
import statistics
import time
from dataclasses import dataclass

from pipelines.console import import_tensorflow_quietly


@dataclass(frozen=True)
class Variant:
    label: str
    overrides: tuple[str, ...]
    # Timed steps per round: about a second or more of work each, so that fit()'s own
    # start-up (tens of ms) does not count for the fast models.
    steps: int
    quick: bool = False


VARIANTS = (
    Variant("small_cnn (default)", ("model=small_cnn",), steps=64, quick=True),
    Variant("vgg_cnn (default)", ("model=vgg_cnn",), steps=32, quick=True),
    Variant("resnet (default)", ("model=resnet",), steps=16, quick=True),
    # The small stem narrower still: the width that trains >= 1,000 img/s at 28x28 on 2 cores?
    Variant("resnet18 small stem w=0.125", ("model=resnet", "model.width_multiplier=0.125"), 16),
    Variant("transfer (default)", ("model=transfer",), steps=16, quick=True),
    # The reference points: full-width ResNet-18 at 64×64, each stem.
    Variant(
        "resnet18 imagenet stem w=1",
        (
            "model=resnet",
            "model.stem=imagenet",
            "model.width_multiplier=1.0",
            "data.image_size=[64,64]",
        ),
        steps=8,
    ),
    Variant(
        "resnet18 small stem w=1",
        (
            "model=resnet",
            "model.stem=small",
            "model.width_multiplier=1.0",
            "data.image_size=[64,64]",
        ),
        steps=2,
    ),
    Variant("transfer mobilenet", ("model=transfer", "model.backbone=mobilenet"), steps=8),
    Variant("transfer resnet50", ("model=transfer", "model.backbone=resnet50"), steps=4),
    Variant("transfer vgg16", ("model=transfer", "model.backbone=vgg16"), steps=2),
)


def _build(variant: Variant, batch_size: int):
    """The compiled model of a variant and an endless in-memory batch for it."""
    import numpy as np
    import tensorflow as tf

    from pipelines.config import compose_config
    from pipelines.data.loading import CHANNELS
    from pipelines.models import build_model
    from pipelines.plan import plan_from_config
    from pipelines.train.fit import compile_classifier
    from pipelines.train.optimizers import build_optimizer

    transfer = "model=transfer" in variant.overrides
    cfg = compose_config([*variant.overrides, *(["model.weights=none"] if transfer else [])])
    plan = plan_from_config(cfg)
    input_shape = (*cfg.data.image_size, CHANNELS[cfg.data.color_mode])
    model = build_model(
        name=plan.model_name,
        input_shape=input_shape,
        num_classes=2,
        preprocessing=plan.preprocessing,
        **plan.model_settings,
    )
    optimizer = build_optimizer(name=plan.optimizer_name, **plan.optimizer_settings)
    compile_classifier(model, optimizer=optimizer, num_classes=2)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(batch_size, *input_shape)).astype("float32")
    labels = (np.arange(batch_size) % 2).astype("float32").reshape(-1, 1)
    batches = tf.data.Dataset.from_tensors((images, labels)).repeat().prefetch(2)
    size = "x".join(map(str, input_shape))
    if plan.model_settings.get("resize_to"):
        size += ">" + "x".join(map(str, plan.model_settings["resize_to"]))
    return model, batches, size


def _fit_seconds(model, batches, steps: int) -> float:
    started = time.perf_counter()
    model.fit(batches, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
    return time.perf_counter() - started


def _steps(variant: Variant, args: argparse.Namespace) -> int:
    return max(1, round(variant.steps * args.step_scale))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the defaults only, 2 rounds")
    parser.add_argument(
        "--step-scale", type=float, default=1.0, help="multiplies every model's timed steps"
    )
    parser.add_argument("--rounds", type=int, help="timed rounds (default 3, quick 2)")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 3)
    import_tensorflow_quietly()
    import keras
    import tensorflow as tf

    variants = [variant for variant in VARIANTS if variant.quick or not args.quick]
    load_before = os.getloadavg()[0]
    models = {}
    for variant in variants:
        model, batches, size = _build(variant, args.batch_size)
        _fit_seconds(model, batches, 2)  # traces the train step
        models[variant.label] = (model, batches, size)
    seconds = {label: [] for label in models}
    for _ in range(rounds):
        for variant in variants:
            model, batches, _ = models[variant.label]
            seconds[variant.label].append(_fit_seconds(model, batches, _steps(variant, args)))
    load_after = os.getloadavg()[0]

    devices = [device.device_type for device in tf.config.list_physical_devices()]
    device = "GPU" if "GPU" in devices else f"CPU ({os.cpu_count()} cores, {platform.machine()})"
    print(
        f"training img/s on {device}, tensorflow {tf.__version__}, keras {keras.__version__}; "
        f"batch {args.batch_size}, median of {rounds} rounds of a fixed number of steps; "
        f"load average {load_before:.1f} before, {load_after:.1f} after"
    )
    print(
        f"{'model':<28} {'input(>resized)':>16} {'params':>11} {'trainable':>11} {'steps':>5} "
        f"{'img/s':>8}  range"
    )
    for variant in variants:
        label, steps = variant.label, _steps(variant, args)
        model, _, size = models[label]
        rates = [steps * args.batch_size / value for value in seconds[label]]
        trainable = sum(int(tf.size(weight)) for weight in model.trainable_weights)
        print(
            f"{label:<28} {size:>16} {model.count_params():>11,} "
            f"{trainable:>11,} {steps:>5} {statistics.median(rates):>8.1f}  "
            f"{min(rates):.1f}-{max(rates):.1f}"
        )


if __name__ == "__main__":
    main()
