"""Full stage vs a bare `model.fit` on the same data, model and epochs, side by side.

    python -m bench.full_stage_overhead [--epochs 3] [--repeats 2] [overrides ...]

Prints the wall-time ratio (target <= 1.10) and the tracking time per trial, model logging
included (target <= 0.5 s). Runs alternate bare / full so machine drift hits both alike.
"""

import argparse
import tempfile
import time
from pathlib import Path

from pipelines.console import import_tensorflow_quietly


def _bare_fit(plan, data, epochs: int) -> float:
    import keras

    from pipelines.planned_fit import compiled_model
    from pipelines.train.fit import fit_classifier

    keras.backend.clear_session()
    keras.utils.set_random_seed(plan.seed)
    started = time.perf_counter()
    fit_classifier(
        compiled_model(plan, data),
        data=data,
        train_split=data.splits["train"],
        val_split=data.splits["val"],
        epochs=epochs,
        batch_size=plan.full_batch_size,
        seed=plan.seed,
    )
    return time.perf_counter() - started


class TimedTracker:
    """Wraps a Tracker and adds up the seconds spent in its calls."""

    def __init__(self, tracker):
        self._tracker = tracker
        self.seconds = 0.0

    def __getattr__(self, name):
        attribute = getattr(self._tracker, name)
        if not callable(attribute):
            return attribute

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        return timed


def _full_stage(plan, data, tracker, mlruns: Path) -> tuple[float, float, float]:
    """Seconds for the tracked full stage, the seconds of it in tracking calls, and in the
    val report's plots (issue 5's figures, timed by the stage itself as report_seconds)."""
    import keras

    from pipelines.full_stage import run_full

    keras.backend.clear_session()
    keras.utils.set_random_seed(plan.seed)
    timed = TimedTracker(tracker)
    started = time.perf_counter()
    parent = timed.start_run("bench-trial")
    run_full(
        plan=plan,
        data=data,
        tracker=timed,
        parent_run_id=parent,
        checkpoint_path=mlruns / "checkpoints" / "bench.keras",
    )
    timed.end_run(parent, "FINISHED")
    elapsed = time.perf_counter() - started
    (full_run,) = tracker.find_runs(f"tags.mlflow.parentRunId = '{parent}'")
    return elapsed, timed.seconds, full_run.data.metrics.get("report_seconds", 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    import_tensorflow_quietly()
    from pipelines.config import compose_config
    from pipelines.plan import load_data, plan_from_config
    from pipelines.tracking import connect_tracking

    with tempfile.TemporaryDirectory() as scratch:
        mlruns = Path(scratch) / "mlruns"
        # Early stopping and the schedule stay on; the patience cannot end a 3-epoch run early.
        cfg = compose_config(
            [
                f"tracking.mlruns_dir={mlruns}",
                f"stages.full.max_epochs={args.epochs}",
                f"stages.full.early_stopping_patience={args.epochs}",
                "search.pruner.name=none",
                *args.overrides,
            ]
        )
        plan, data = plan_from_config(cfg), load_data(cfg)
        tracker = connect_tracking(mlruns_dir=mlruns, tracking_uri=None, experiment_name="bench")
        _bare_fit(plan, data, 1)  # fills the decode cache and warms TensorFlow for both sides
        bare_times, full_times, tracking_times, report_times = [], [], [], []
        for _ in range(args.repeats):
            bare_times.append(_bare_fit(plan, data, args.epochs))
            full, tracking, report = _full_stage(plan, data, tracker, mlruns)
            full_times.append(full)
            tracking_times.append(tracking)
            report_times.append(report)
    bare, full = min(bare_times), min(full_times)
    images = len(data.splits["train"]) * args.epochs
    print(
        f"data: {len(data.splits['train'])} train / {len(data.splits['val'])} val images, "
        f"{args.epochs} epochs, batch {plan.full_batch_size}, best of {args.repeats}"
    )
    print(f"{'':28}{'seconds':>10}{'img/s':>10}")
    print(f"{'bare model.fit':28}{bare:>10.2f}{images / bare:>10.0f}")
    print(f"{'full stage (tracked)':28}{full:>10.2f}{images / full:>10.0f}")
    report = min(report_times)
    print(f"ratio full / bare: {full / bare:.3f}  (target <= 1.10)")
    print(
        f"  of which the val report's plots: {report:.2f} s; without them "
        f"{(full - report) / bare:.3f}"
    )
    print(
        f"tracking per trial (runs, params, per-epoch metrics, model logging): "
        f"{min(tracking_times):.3f} s  (target <= 0.5 s; the first trial of a process also "
        "pays MLflow's imports)"
    )


if __name__ == "__main__":
    main()
