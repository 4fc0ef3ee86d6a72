"""The study's epoch-cost measurement against real full-stage epochs, side by side.

    python -m bench.epoch_cost                      # the default study's queued trials
    python -m bench.epoch_cost --epochs 2 search=fashion10 experiment=fashion10

For each configuration the default study queues (conf/search/default.yaml's `enqueue`), on the
default data: the measurement a new study makes before its first trial
(pipelines/epoch_cost.py), how long it took, and its predicted seconds per full-stage epoch;
then the same configuration trained for real, `--epochs` epochs of model.fit over the whole
train split with the val pass, the last epoch timed (the first pays for tracing). The ratio
predicted / real is what the study's sizing (sweep/sizing.py) rests on.
"""

import argparse
import time

from pipelines.console import import_tensorflow_quietly


def fitted_epoch_seconds(plan, data, epochs: int) -> list[float]:
    """Each of `epochs` epochs of model.fit as the full stage runs it, begin to end, in seconds
    (the first also traces the model)."""
    import keras

    from pipelines.planned_fit import compiled_model
    from pipelines.train.augment import build_augmentation
    from pipelines.train.fit import fit_classifier

    marks = []
    fit_classifier(
        compiled_model(plan, data),
        data=data,
        train_split=data.splits["train"],
        val_split=data.splits["val"],
        epochs=epochs,
        batch_size=plan.full_batch_size,
        seed=plan.seed,
        augmentation=build_augmentation(**plan.augment_settings, seed=plan.seed),
        callbacks=[
            keras.callbacks.LambdaCallback(
                on_epoch_begin=lambda epoch, logs: marks.append(time.perf_counter()),
                on_epoch_end=lambda epoch, logs: marks.append(time.perf_counter()),
            )
        ],
    )
    return [end - begin for begin, end in zip(marks[::2], marks[1::2], strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="real epochs per configuration")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for the base config")
    args = parser.parse_args()
    import_tensorflow_quietly()
    from omegaconf import OmegaConf

    from pipelines.config import compose_config
    from pipelines.plan import load_data, plan_from_config
    from sweep.sizing import measure_configurations
    from sweep.space import parse_space, queued_overrides

    cfg = compose_config(args.overrides)
    data = load_data(cfg)
    dimensions = parse_space(cfg.search.space)
    queued = OmegaConf.to_container(cfg.search.enqueue, resolve=True) or [{}]
    started = time.perf_counter()
    measured, notes = measure_configurations(
        queued,
        base_overrides=list(args.overrides),
        dimensions=dimensions,
        fixed_values={},
        data_for=lambda _: data,
    )
    print(*notes, sep="\n")
    print(f"measuring {len(measured)} configuration(s) took {time.perf_counter() - started:.1f} s")
    print("| configuration | measured in | predicted epoch | real epoch | predicted / real |")
    print("| --- | --- | --- | --- | --- |")
    for index, trial in measured.items():
        overrides = list(args.overrides) + queued_overrides(queued[index], dimensions, {})
        plan = plan_from_config(compose_config(overrides))
        real = fitted_epoch_seconds(plan, data, args.epochs)[-1]
        predicted = trial.cost.epoch_seconds
        print(
            f"| {trial.label} | {trial.cost.measured_in_seconds:.1f} s | {predicted:.1f} s "
            f"| {real:.1f} s | {predicted / real:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
