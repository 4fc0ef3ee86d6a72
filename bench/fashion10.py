"""All ten Fashion-MNIST classes: a time-boxed sweep, its champion next to the published table.

    python -m bench.fashion10                      # `experiment=fashion10` (30 min)
    python -m bench.fashion10 search.timeout_minutes=10   # a shorter budget, or other overrides
    python -m bench.fashion10 registry.refit=none registry.ensemble=0   # the best trial only

Runs the study (conf/experiment/fashion10.yaml: its budget is search.timeout_minutes) and promotes
among its candidates (the best trial, its refit on train+val, a greedy ensemble of 5 steps:
champion/candidates.py), each scored on the official 10,000 test images. The whole run, data
loading, refit and promotion included, is timed against the 30 minutes. Target: >= 0.94 test
accuracy.
"""

import argparse
import tempfile
import time
from pathlib import Path

from bench.studies import machine_line, run_study, trial_rows, write_csv
from pipelines.console import import_tensorflow_quietly

BUDGET_MINUTES = 30
# Rows of the benchmark table in github.com/zalandoresearch/fashion-mnist (README, "Benchmark":
# test accuracy as submitted, various preprocessing and training budgets, mostly on GPUs).
PUBLISHED = (
    ("2 Conv + pooling (several submissions)", "0.876-0.939"),
    ("ResNet18", "0.949"),
    ("MobileNet", "0.950"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides")
    parser.add_argument(
        "--keep", type=Path, help="keep the study's mlruns here (default: a scratch folder)"
    )
    args = parser.parse_args()
    import_tensorflow_quietly()

    with tempfile.TemporaryDirectory() as scratch:
        mlruns = args.keep or Path(scratch) / "mlruns"
        overrides = [
            "experiment=fashion10",
            # Every candidate, so the table shows what refit and ensemble add.
            "registry.refit=train_val",
            "registry.ensemble=5",
            f"tracking.mlruns_dir={mlruns}",
        ]
        started = time.perf_counter()
        record = run_study("fashion10", overrides + args.overrides)
        total = time.perf_counter() - started

    promotion = record.promotion
    accuracy = promotion.test_metrics["accuracy"] if promotion else float("nan")
    test_auc = promotion.test_metrics["auc"] if promotion else float("nan")
    best = record.best
    write_csv(
        "fashion10",
        [
            {
                "trials": len(record.trials),
                "trials_complete": len(record.complete),
                "full_epochs": record.full_epochs,
                "metric": record.metric,
                "best_value": best.value if best else None,
                "test_accuracy": accuracy,
                "test_auc": test_auc,
                "total_seconds": total,
                "best_params": best.params if best else None,
            }
        ],
    )
    path = write_csv("fashion10_trials", trial_rows(record))

    print(machine_line())
    print(f"overrides: {' '.join(overrides[:4] + args.overrides)}")
    print(
        f"{len(record.trials)} trials ({len(record.complete)} complete, "
        f"{record.count('PRUNED')} pruned, {record.count('FAIL')} failed), "
        f"{record.full_epochs} full-set epochs, {total / 60:.1f} min in all"
    )
    if best:
        print(f"best trial {best.number}: {record.metric} {best.value:.4f} [{best.params}]")
    print(f"{'model':64}{'test accuracy':>16}")
    for candidate in record.final.candidates if record.final else ():
        label = f"imgsweep {candidate.kind}: {candidate.description}"[:63]
        print(f"{label:64}{candidate.test_metrics['accuracy']:>16.4f}")
    for note in record.final.notes if record.final else ():
        print(f"  {note}")
    print(f"{'imgsweep champion (this run, CPU)':64}{accuracy:>16.4f}")
    for name, published in PUBLISHED:
        print(f"{name + ' (published)':64}{published:>16}")
    within = total <= 60 * BUDGET_MINUTES
    print(
        f"target >= 0.94 test accuracy within {BUDGET_MINUTES} min: "
        f"{'met' if accuracy >= 0.94 and within else 'MISSED'} "
        f"({accuracy:.4f} in {total / 60:.1f} min)"
    )
    print(f"trials: {path}")


if __name__ == "__main__":
    main()
