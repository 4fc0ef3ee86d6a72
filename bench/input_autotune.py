"""Epoch seconds with tf.data's autotuner on (TensorFlow's default) and off (imgsweep's on CPU).

    python -m bench.input_autotune [--epochs 8] [--repeats 1]

Trains the default study's two queued configurations (conf/search/default.yaml: the small CNN
and the VGG-style net) on the default data through the full stage's input pipeline and
`fit_classifier`, autotuner on and off in turn, so that a change in machine load touches both
alike. Prints every epoch's seconds (begin to end), the mean epoch after the first (which also
traces the model), and the ratio on / off. On a GPU imgsweep keeps the autotuner on, so there
the two sides are not what it trains with.
"""

import argparse
import statistics

from pipelines.console import import_tensorflow_quietly

# The default study's queued trials (conf/search/default.yaml: enqueue), as config overrides.
QUEUED = {
    "small_cnn": (
        "model=small_cnn",
        "model.base_filters=32",
        "model.dropout_rate=0.3",
        "augment=none",
        "stages.full.batch_size=64",
    ),
    "vgg_cnn": (
        "model=vgg_cnn",
        "model.base_filters=32",
        "model.dropout_rate=0.1",
        "augment=flip",
        "stages.full.batch_size=64",
    ),
}


def _epoch_seconds(overrides: tuple[str, ...], epochs: int, autotune: bool) -> list[float]:
    import keras
    import tensorflow as tf

    import pipelines.data.datasets as datasets
    from bench.epoch_cost import fitted_epoch_seconds
    from pipelines.config import compose_config
    from pipelines.plan import load_data, plan_from_config

    def options() -> tf.data.Options:
        chosen = tf.data.Options()
        chosen.autotune.enabled = autotune
        return chosen

    cfg = compose_config(list(overrides))
    plan, data = plan_from_config(cfg), load_data(cfg)
    keras.backend.clear_session()
    keras.utils.set_random_seed(plan.seed)
    chosen_by_imgsweep = datasets._pipeline_options
    datasets._pipeline_options = options  # the one difference between the two sides
    try:
        return fitted_epoch_seconds(plan, data, epochs)
    finally:
        datasets._pipeline_options = chosen_by_imgsweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    import_tensorflow_quietly()
    rows = []
    for name, overrides in QUEUED.items():
        means = {True: [], False: []}
        for _ in range(args.repeats):
            for autotune in (True, False):
                seconds = _epoch_seconds(overrides, args.epochs, autotune)
                means[autotune].append(statistics.mean(seconds[1:]))
                shown = " ".join(f"{value:.1f}" for value in seconds)
                print(f"{name:10} autotune {'on ' if autotune else 'off'}: {shown}", flush=True)
        rows.append((name, statistics.mean(means[True]), statistics.mean(means[False])))
    print(f"\nmean epoch after the first, {args.epochs} epochs x {args.repeats} repeat(s):")
    print(f"{'model':10}{'on s':>8}{'off s':>8}{'on / off':>10}")
    for name, on, off in rows:
        print(f"{name:10}{on:>8.2f}{off:>8.2f}{on / off:>10.2f}")


if __name__ == "__main__":
    main()
