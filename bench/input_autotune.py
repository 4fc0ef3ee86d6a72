"""Epoch seconds with tf.data's autotuner on (TensorFlow's default) and off (imgsweep's on CPU).

    python -m bench.input_autotune [--epochs 8] [--repeats 1]

Trains the default study's queued configurations (conf/search/default.yaml: enqueue; the small CNN
and the VGG-style net) on the default data through the full stage's input pipeline and
`fit_classifier`, autotuner on and off in turn, so that a change in machine load touches both
alike. Prints every epoch's seconds (begin to end), the mean epoch after the first (which also
traces the model), and the ratio on / off. On a GPU imgsweep keeps the autotuner on, so there
the two sides are not what it trains with.
"""

import argparse
import statistics

from pipelines.console import import_tensorflow_quietly


def _epoch_seconds(plan, data, epochs: int, autotune: bool) -> list[float]:
    import keras
    import tensorflow as tf

    import pipelines.data.datasets as datasets
    from bench.epoch_cost import fitted_epoch_seconds

    def options() -> tf.data.Options:
        chosen = tf.data.Options()
        chosen.autotune.enabled = autotune
        return chosen

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
    from omegaconf import OmegaConf

    from pipelines.config import compose_config
    from pipelines.plan import load_data, plan_from_config
    from sweep.sizing import configuration_label
    from sweep.space import parse_space, queued_overrides

    cfg = compose_config([])
    data = load_data(cfg)
    dimensions = parse_space(cfg.search.space)
    rows = []
    for queued in OmegaConf.to_container(cfg.search.enqueue, resolve=True):
        overrides = queued_overrides(queued, dimensions, {})
        configuration = compose_config(overrides)
        plan, name = plan_from_config(configuration), configuration_label(overrides, configuration)
        means = {True: [], False: []}
        for _ in range(args.repeats):
            for autotune in (True, False):
                seconds = _epoch_seconds(plan, data, args.epochs, autotune)
                means[autotune].append(statistics.mean(seconds[1:]))
                shown = " ".join(f"{value:.1f}" for value in seconds)
                print(f"{name:20} autotune {'on ' if autotune else 'off'}: {shown}", flush=True)
        rows.append((name, statistics.mean(means[True]), statistics.mean(means[False])))
    print(f"\nmean epoch after the first, {args.epochs} epochs x {args.repeats} repeat(s):")
    print(f"{'configuration':20}{'on s':>8}{'off s':>8}{'on / off':>10}")
    for name, on, off in rows:
        print(f"{name:20}{on:>8.2f}{off:>8.2f}{on / off:>10.2f}")


if __name__ == "__main__":
    main()
