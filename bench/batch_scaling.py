"""Which learning-rate rule keeps the score at large batches, and what each batch trains at.

    python -m bench.batch_scaling                     # both models, 1000 images/class, 3 epochs
    python -m bench.batch_scaling --per-class 500 --epochs 2 --models small_cnn

The default study's two queued configurations (conf/search/default.yaml enqueue: the 32-filter
small CNN, and the VGG-style net at 32 filters with flips and exponential decay), each at
batch 32, 64, 128 and 256 with the learning rate scaled from the reference batch (64) by each
`optimizer.batch_scaling` rule (none, linear, sqrt; at batch 64 they coincide, so it runs
once), on a seeded per-class subset of data/fashion_pair for a fixed number of epochs. Every
row starts from the same seed. The score is the best epoch's val AUC (what the study's
checkpoint keeps). Speed is timed apart, first: each (model, batch) trains on a batch of real
train images held in memory, in turn, three rounds, median img/s (no validation, no loading).
"""

import argparse
import time

from pipelines.console import import_tensorflow_quietly

# The default study's queued trials (conf/search/default.yaml), as config overrides.
MODELS = {
    "small_cnn": (
        "model=small_cnn", "model.base_filters=32", "model.dropout_rate=0.3",
        "schedule=step", "schedule.factor=0.5", "schedule.every_epochs=2", "augment=none",
    ),
    "vgg_cnn": (
        "model=vgg_cnn", "model.base_filters=32", "model.dropout_rate=0.1",
        "schedule=exponential", "schedule.decay_rate=0.8", "augment=flip",
    ),
}  # fmt: skip
BATCH_SIZES = (32, 64, 128, 256)
RULES = ("none", "linear", "sqrt")
REFERENCE = 64


def _val_auc_recorder():
    import keras

    class ValAucRecorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.val_auc = []

        def on_epoch_end(self, epoch, logs=None):
            self.val_auc.append(float((logs or {}).get("val_auc", float("nan"))))

    return ValAucRecorder()


def _train(data, *, model: str, batch_size: int, rule: str, epochs: int, per_class: int):
    """Best val AUC and the learning rate of one (model, batch, rule)."""
    import keras

    from pipelines.config import compose_config
    from pipelines.plan import plan_from_config
    from pipelines.planned_fit import compiled_model, fit_as_planned

    overrides = [
        *MODELS[model], "optimizer=adam", "optimizer.learning_rate=0.001",
        f"optimizer.batch_scaling={rule}", f"optimizer.reference_batch_size={REFERENCE}",
        f"stages.full.batch_size={batch_size}", f"stages.full.max_epochs={epochs}",
        f"data.max_images_per_class={per_class}", "seed=0",
    ]  # fmt: skip
    plan = plan_from_config(compose_config(overrides))
    keras.backend.clear_session()
    keras.utils.set_random_seed(plan.seed)
    recorder = _val_auc_recorder()
    trained = compiled_model(plan, data)
    fit_as_planned(
        trained, plan=plan, data=data, train_split=data.splits["train"],
        val_split=data.splits["val"], max_epochs=epochs, callbacks=[recorder], stoppers=[],
    )  # fmt: skip
    return max(recorder.val_auc), plan.optimizer_settings["learning_rate"]


def _throughput(data, *, model: str, batch_size: int):
    """A compiled model and an endless batch of real train images, for timing its steps."""
    import tensorflow as tf

    from pipelines.config import compose_config
    from pipelines.data.datasets import build_batches
    from pipelines.plan import plan_from_config
    from pipelines.planned_fit import compiled_model

    plan = plan_from_config(
        compose_config([*MODELS[model], f"stages.full.batch_size={batch_size}"])
    )
    trained = compiled_model(plan, data)
    batch = next(iter(build_batches(data, data.splits["train"], batch_size=batch_size)))
    batches = tf.data.Dataset.from_tensors(batch).repeat().prefetch(2)
    trained.fit(batches, epochs=1, steps_per_epoch=2, verbose=0)  # traces the train step
    return trained, batches


def _timed_rates(data, *, models: list[str], images: int, rounds: int) -> dict:
    """Median training img/s of each (model, batch), the pairs timed in turn each round so that
    a change in load touches all of them alike (as bench/model_throughput.py does)."""
    import statistics

    built = {
        (model, size): _throughput(data, model=model, batch_size=size)
        for model in models
        for size in BATCH_SIZES
    }
    seconds = {key: [] for key in built}
    for _ in range(rounds):
        for (model, size), (trained, batches) in built.items():
            steps = max(1, images // size)
            started = time.perf_counter()
            trained.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0)
            seconds[(model, size)].append((time.perf_counter() - started) / (steps * size))
    return {key: 1 / statistics.median(values) for key, values in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="0: the timing alone")
    parser.add_argument("--per-class", type=int, default=1000, help="train images per class")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=list(BATCH_SIZES))
    parser.add_argument("--rules", nargs="+", choices=RULES, default=list(RULES))
    parser.add_argument(
        "--timing-images", type=int, default=2048, help="images per timed round (0: no timing)"
    )
    args = parser.parse_args()
    import_tensorflow_quietly()
    import os

    from bench.studies import machine_line
    from pipelines.config import compose_config
    from pipelines.plan import load_data

    data = load_data(compose_config([f"data.max_images_per_class={args.per_class}", "seed=0"]))
    load_before, started = os.getloadavg()[0], time.perf_counter()
    print(machine_line())
    print(
        f"data/fashion_pair, {len(data.splits['train'])} train / {len(data.splits['val'])} val "
        f"images, {args.epochs} epochs, Adam 1e-3 at the reference batch {REFERENCE}"
    )
    if args.timing_images:
        rates = _timed_rates(data, models=args.models, images=args.timing_images, rounds=3)
        print("| model | " + " | ".join(f"img/s at {size}" for size in BATCH_SIZES) + " |")
        print("|---|" + "---|" * len(BATCH_SIZES))
        for model in args.models:
            cells = " | ".join(f"{rates[(model, size)]:,.0f}" for size in BATCH_SIZES)
            print(f"| {model} | {cells} |", flush=True)
    if args.epochs == 0:
        return
    print("| model | batch | rule | learning rate | best val AUC |")
    print("|---|---|---|---|---|")
    for model in args.models:
        for batch_size in args.batch_sizes:
            rules = args.rules if batch_size != REFERENCE else ("any",)
            for rule in rules:
                auc, learning_rate = _train(
                    data, model=model, batch_size=batch_size, rule=rule.replace("any", "none"),
                    epochs=args.epochs, per_class=args.per_class,
                )  # fmt: skip
                print(
                    f"| {model} | {batch_size} | {rule} | {learning_rate:.2e} | {auc:.4f} |",
                    flush=True,
                )
    print(
        f"{time.perf_counter() - started:.0f} s in all; load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after (img/s under that load)"
    )


if __name__ == "__main__":
    main()
