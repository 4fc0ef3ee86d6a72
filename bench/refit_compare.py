"""registry.refit: train_val vs budget: one finished study's best configuration refitted both
ways within the same time, each scored on the test split.

    python -m bench.refit_compare                    # default data, 4 trials, times 1.5x and 3x
    python -m bench.refit_compare --quick            # a first look: 300 images a class, 2 trials
    python -m bench.refit_compare --times 1.2,2,4 search.n_trials=6   # other times, overrides
    python -m bench.refit_compare --times 1.2,2,3 seed=1              # another seed

The study runs once (no refit, no ensemble, no promotion). Its best trial's train_val refit is
estimated as champion/final_models.py does (best_epoch + 1 epochs at the trial's measured
seconds per full-stage epoch, scaled by (train+val)/train); each time given is a multiple of that
estimate (1.2x is about what `refit_reserve: auto` holds back). train_val trains its fixed
epochs whatever the time (skipped if they do not fit), so it runs once, at the first time
given; budget trains until the time is up with its schedule stretched, at every time. The
best trial's own checkpoint is scored beside them for reference.
"""

import argparse
import tempfile
import time
from pathlib import Path

from bench.studies import machine_line, run_study, write_csv
from pipelines.console import import_tensorflow_quietly

QUICK = ["data.max_images_per_class=300", "search.n_trials=2", "stages.full.max_epochs=6"]


def _scored_refits(session, record, times: list[float]) -> list[dict]:
    """Each mode at each time: epochs trained, seconds used and test scores."""
    from champion.final_models import build_refit, seconds_per_epoch
    from pipelines.refit import refit_epochs, refit_seconds

    data = session.context.base_data
    estimate = refit_seconds(
        seconds_per_epoch=seconds_per_epoch(session.tracker, record),
        epochs=refit_epochs(record.best_epoch),
        train=len(data.splits["train"]),
        val=len(data.splits["val"]),
    )
    rows = []
    for multiple in times:
        # train_val trains the same fixed epochs whenever they fit: once, at the first time.
        for mode in ("train_val", "budget") if multiple == times[0] else ("budget",):
            notes: list[str] = []
            started = time.monotonic()
            built = build_refit(
                trial=record,
                data=data,
                tracker=session.tracker,
                parent_run_id=session.parent_run_id,
                seconds_left=multiple * estimate,
                notes=notes,
                mode=mode,
            )
            used = time.monotonic() - started
            metrics = built.test_score.metrics if built else {}
            rows.append(
                {
                    "mode": mode,
                    "time_multiple": multiple,
                    "seconds_given": round(multiple * estimate, 1),
                    "seconds_used": round(used, 1),
                    "epochs": int(built.tags["refit_epochs"]) if built else 0,
                    "test_auc": metrics.get("auc"),
                    "test_accuracy": metrics.get("accuracy"),
                    "notes": " | ".join(notes),
                }
            )
    return rows


def _single_row(session, record) -> dict:
    """The best trial's own best-epoch checkpoint on test: what both refits try to beat."""
    from pipelines.evaluate import timed_evaluation
    from pipelines.tracking.keras_logging import load_keras_model

    data = session.context.base_data
    score = timed_evaluation(load_keras_model(record.model_uri), data, data.splits["test"])
    return {
        "mode": "single (best trial)",
        "time_multiple": 0,
        "seconds_given": 0,
        "seconds_used": 0,
        "epochs": record.best_epoch + 1,
        "test_auc": score.metrics["auc"],
        "test_accuracy": score.metrics["accuracy"],
        "notes": "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides")
    parser.add_argument("--quick", action="store_true", help="small data: a first look")
    parser.add_argument(
        "--times", default="1.5,3", help="times given, as multiples of the train_val estimate"
    )
    args = parser.parse_args()
    import_tensorflow_quietly()
    from pipelines.config import compose_config
    from sweep.run import trial_record
    from sweep.session import open_session

    times = [float(value) for value in args.times.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        overrides = [
            "search.n_trials=4",
            "search.timeout_minutes=null",
            "registry.refit=none",
            "registry.ensemble=0",
            "registry.promote_after_sweep=false",
            "search.study_name=refit_compare",
            # The data-quality report is not what is compared here (bench/data_quality.py).
            "data.quality.enabled=false",
            f"tracking.mlruns_dir={Path(scratch) / 'mlruns'}",
        ]
        shown = [*(QUICK if args.quick else []), *args.overrides]
        overrides += shown
        study = run_study("refit_compare", overrides)
        session = open_session(compose_config(overrides), [], create=False)
        session.lock.close()
        record = trial_record(session.study.best_trial)
        rows = [_single_row(session, record), *_scored_refits(session, record, times)]
    path = write_csv("refit_compare", rows)

    print(machine_line())
    print(f"overrides: {' '.join(shown) or '(none)'}")
    print(
        f"study: {len(study.trials)} trials in {study.wall_seconds:.0f} s; best trial "
        f"{record.number} (best epoch {record.best_epoch}, {record.full_epochs} full epochs in "
        f"{record.full_seconds:.0f} s)"
    )
    print(f"{'refit':<20} {'time':>5} {'given s':>8} {'used s':>7} {'epochs':>6}  AUC     acc")
    for row in rows:
        auc = "-" if row["test_auc"] is None else f"{row['test_auc']:.4f}"
        accuracy = "-" if row["test_accuracy"] is None else f"{row['test_accuracy']:.4f}"
        print(
            f"{row['mode']:<20} {row['time_multiple']:>4}x {row['seconds_given']:>8} "
            f"{row['seconds_used']:>7} {row['epochs']:>6}  {auc:<7} {accuracy}"
        )
        if row["notes"]:
            print(f"{'':<20} {row['notes']}")
    print(f"written: {path}")


if __name__ == "__main__":
    main()
