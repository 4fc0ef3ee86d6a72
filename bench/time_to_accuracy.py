"""Minutes of training until each small-image family reaches a val accuracy, on ten classes.

    python -m bench.time_to_accuracy                       # data=fashion10, 0.92, 20 min each
    python -m bench.time_to_accuracy --minutes 0.5 --max-images-per-class 50   # a smoke run

Each family trains the way a trial's full stage does (fashion10's stages and cosine schedule,
its default learning rate, no augmentation), one epoch at a time; after every epoch the val
accuracy is read, and the clock (training and validation both count) stops at the target or at
the cap. Families run one after another, so a change in machine load is not shared alike:
say the load average with the figures.
"""

import argparse
import os
import time

from pipelines.console import import_tensorflow_quietly

FAMILIES = {
    "small_cnn": ("model=small_cnn",),
    "small_cnn bn+avg": ("model=small_cnn", "model.batch_norm=true", "model.pooling=avg"),
    "vgg_cnn": ("model=vgg_cnn",),
    "vgg_cnn 16 flatten+dense": (
        "model=vgg_cnn",
        "model.base_filters=16",
        "model.pooling=flatten",
        "model.dense_units=128",
    ),
    "resnet18 small w=0.25": ("model=resnet",),
}


def minutes_to_accuracy(overrides: list[str], *, target: float, cap_minutes: float) -> dict:
    """Train one config epoch by epoch until val accuracy >= target or the cap; what it took."""
    import keras

    from pipelines.config import compose_config
    from pipelines.plan import load_data, plan_from_config
    from pipelines.planned_fit import compiled_model
    from pipelines.train.callbacks import learning_rate_callback
    from pipelines.train.fit import fit_classifier
    from pipelines.train.schedules import build_lr_schedule

    cfg = compose_config(["data=fashion10", "schedule=cosine", "stages=fashion10", *overrides])
    plan, data = plan_from_config(cfg), load_data(cfg)
    keras.utils.set_random_seed(plan.seed)
    model = compiled_model(plan, data)
    schedule = build_lr_schedule(
        name=plan.schedule_name,
        initial_learning_rate=plan.optimizer_settings["learning_rate"],
        max_epochs=plan.full_max_epochs,
        **plan.schedule_settings,
    )
    started, best, epochs = time.perf_counter(), 0.0, 0
    while epochs < plan.full_max_epochs:
        history = fit_classifier(
            model,
            data=data,
            train_split=data.splits["train"],
            val_split=data.splits["val"],
            epochs=epochs + 1,
            initial_epoch=epochs,
            batch_size=plan.full_batch_size,
            seed=plan.seed,
            callbacks=[learning_rate_callback(schedule)],
        )
        epochs += 1
        best = max(best, float(history.history["val_accuracy"][-1]))
        minutes = (time.perf_counter() - started) / 60
        if best >= target or minutes >= cap_minutes:
            break
    return {
        "minutes": minutes,
        "reached": best >= target,
        "best": best,
        "epochs": epochs,
        "train_images": len(data.splits["train"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.92, help="val accuracy to reach")
    parser.add_argument("--minutes", type=float, default=20, help="cap per family")
    parser.add_argument("--max-images-per-class", type=int, help="a smaller train split")
    parser.add_argument("--families", nargs="*", choices=list(FAMILIES), default=list(FAMILIES))
    args = parser.parse_args()
    import_tensorflow_quietly()
    cap = (
        [f"data.max_images_per_class={args.max_images_per_class}"]
        if args.max_images_per_class
        else []
    )
    print(
        f"minutes to {args.target} val accuracy on data/fashion10 (cap {args.minutes} min each; "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start)"
    )
    print(f"{'family':<24} {'train':>7} {'epochs':>6} {'best val acc':>12} {'minutes':>8}")
    for label in args.families:
        outcome = minutes_to_accuracy(
            [*FAMILIES[label], *cap], target=args.target, cap_minutes=args.minutes
        )
        minutes = f"{outcome['minutes']:.1f}" + ("" if outcome["reached"] else " (not reached)")
        print(
            f"{label:<24} {outcome['train_images']:>7} {outcome['epochs']:>6} "
            f"{outcome['best']:>12.4f} {minutes:>8}",
            flush=True,
        )


if __name__ == "__main__":
    main()
