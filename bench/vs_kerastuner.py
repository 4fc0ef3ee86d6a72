"""imgsweep against KerasTuner's Hyperband: same space, data, model code and wall-clock budget.

    python -m bench.vs_kerastuner                 # 20 minutes each, one after the other
    python -m bench.vs_kerastuner --minutes 3     # quick mode
    python -m bench.vs_kerastuner --minutes 20 data=fashion10   # other Hydra overrides

The space is `conf/search/compare.yaml` (optimizer, learning rate, base filters, dropout,
batch size, augmentation policy), read once and expressed in both tools. Both train the same
model (conf/model, built by pipelines.models) on the same decoded data with the same input
pipeline and augmentation layers, and both score val AUC with the same Keras metric. imgsweep
runs its three stages and default pruner; KerasTuner runs Hyperband (max_epochs = the full
stage's, factor 3) with as many iterations as the budget allows. Each tool's budget starts
once its data is loaded; at the budget, a running trial of either stops at its next epoch end.

The comparison is each tool's best-so-far val AUC at every whole minute of its budget, at
epoch granularity for both: both keep a best-epoch checkpoint, so a tool has a model from its
first trained epoch on. imgsweep's epochs are its full stages' (read back from MLflow);
KerasTuner's are recorded by a callback at each epoch end. When the clocks start and what
counts are defined in bench/epoch_curves.py; each tool's setup before its budget (loading
the data, opening the study) is its own column. imgsweep's data-quality report is off here
(`data.quality.enabled=false`; an override turns it back on): a study runs it once per data
set and caches it, and KerasTuner has nothing like it. This replaces the earlier "time to
the other's final best" ratio, which hung on the single epoch a weak final best came at.
Test AUC is each tool's best model scored on the test split with the same function.

Needs keras-tuner (a bench-only dependency: `make bench-install`).
"""

import argparse
import math
import tempfile
from pathlib import Path

from bench.epoch_curves import (
    EpochPoint,
    first_minute_behind,
    full_stage_epochs,
    minute_rows,
    minutes_covered,
)
from bench.kerastuner_search import keras_tuner_search
from bench.studies import machine_line, run_study, test_metrics_of_best, trial_rows, write_csv
from pipelines.console import import_tensorflow_quietly

# imgsweep's target over KerasTuner's best val AUC.
MARGIN = 0.005


def _summary_row(tool: str, *, trials, complete, trained, counted, test, setup, wall) -> dict:
    """One tool's line: trials, epochs, when its first model came, best val AUC, test AUC."""
    finite = [point for point in counted if math.isfinite(point.val_auc)]
    return {
        "tool": tool,
        "trials": trials,
        "trials_complete": complete,
        "epochs_trained": trained,
        "epochs_counted": len(counted),
        "setup_seconds": setup,
        "first_model_seconds": min((point.seconds for point in finite), default=math.nan),
        "best_val_auc": max((point.val_auc for point in finite), default=math.nan),
        "test_auc_of_best": test["auc"] if test else math.nan,
        "wall_seconds": wall,
    }


def _print_summary(rows: list[dict]) -> None:
    header = f"{'':28}{'trials':>7}{'done':>6}{'epochs':>8}{'counted':>9}{'setup s':>9}"
    print(header + f"{'1st model s':>13}{'best val AUC':>14}{'test AUC':>10}{'wall s':>8}")
    for row in rows:
        print(
            f"{row['tool']:28}{row['trials']:>7}{row['trials_complete']:>6}"
            f"{row['epochs_trained']:>8}{row['epochs_counted']:>9}{row['setup_seconds']:>9.0f}"
            f"{row['first_model_seconds']:>13.0f}{row['best_val_auc']:>14.4f}"
            f"{row['test_auc_of_best']:>10.4f}{row['wall_seconds']:>8.0f}"
        )
    print(
        "(epochs: full-data epochs trained; counted: those of trials that ended with a result; "
        "setup: before the budget's start; 1st model: seconds into the budget)"
    )


def _print_minutes(rows: list[dict]) -> None:
    """The minute table, then whether imgsweep was ahead at every minute from the second on."""

    def cell(value: float | None, signed: bool = False) -> str:
        return "-" if value is None else f"{value:+.4f}" if signed else f"{value:.4f}"

    print("best-so-far val AUC at each whole minute (epoch granularity, both tools):")
    print(f"{'minute':>6}{'imgsweep':>10}{'KerasTuner':>12}{'difference':>12}")
    for row in rows:
        print(
            f"{row['minute']:>6}{cell(row['imgsweep']):>10}{cell(row['kerastuner']):>12}"
            f"{cell(row['difference'], signed=True):>12}"
        )
    behind = first_minute_behind(rows)
    verdict = "yes" if behind is None else f"no (first minute it was behind: {behind})"
    print(f"imgsweep ahead at every minute from the second on: {verdict}")


def _study_base(minutes: float, scratch: Path, overrides: list[str]) -> list[str]:
    return [
        "search=compare",
        f"search.timeout_minutes={minutes}",
        f"tracking.mlruns_dir={scratch / 'mlruns'}",
        "registry.promote_after_sweep=false",
        # The data-quality report is a one-off per data set (a study's store caches it) that
        # KerasTuner has no counterpart of; in this throwaway store it would run uncached and,
        # as a study's budget is its whole wall clock, take minutes of imgsweep's budget.
        "data.quality.enabled=false",
        *overrides,
    ]


def _setup_seconds(record) -> float:
    """Seconds from the study's start to its first trial's (nan if it ran none)."""
    if record.search_started_unix is None:
        return math.nan
    return record.search_started_unix - record.started_unix


def _summary_rows(imgsweep, imgsweep_epochs, imgsweep_test, tuner: dict) -> list[dict]:
    return [
        _summary_row(
            "imgsweep (default study)",
            trials=len(imgsweep.trials),
            complete=len(imgsweep.complete),
            trained=imgsweep.full_epochs,
            counted=imgsweep_epochs,
            test=imgsweep_test,
            setup=_setup_seconds(imgsweep),
            wall=imgsweep.wall_seconds,
        ),
        _summary_row(
            "KerasTuner 1.4.8 Hyperband",
            trials=tuner["trials"],
            complete=tuner["trials_complete"],
            trained=tuner["epochs_trained"],
            counted=tuner["counted"],
            test=tuner["test"],
            setup=tuner["setup"],
            wall=tuner["wall"],
        ),
    ]


def _write_epochs(imgsweep_epochs: list[EpochPoint], tuner_epochs: list[EpochPoint]) -> None:
    """Every counted epoch of both tools, as bench/results/vs_kerastuner_epochs.csv."""
    tools = [("imgsweep", imgsweep_epochs), ("kerastuner", tuner_epochs)]
    rows = [{"tool": tool, **vars(point)} for tool, points in tools for point in points]
    if rows:
        write_csv("vs_kerastuner_epochs", rows)


def _check_curve(imgsweep, curve_best: float) -> None:
    """The curve's last point is the study's best trial value, read another way: say if not."""
    if not imgsweep.best or imgsweep.metric != "val_auc":
        return
    if not math.isclose(imgsweep.best.value, curve_best, abs_tol=1e-6):
        print(
            f"warning: imgsweep's best trial scored {imgsweep.best.value:.4f} but its "
            f"counted epochs' best is {curve_best:.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="budget for each tool")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for both tools")
    args = parser.parse_args()
    import_tensorflow_quietly()

    with tempfile.TemporaryDirectory() as scratch:
        base = _study_base(args.minutes, Path(scratch), args.overrides)
        print(f"imgsweep: {args.minutes:g} minutes", flush=True)
        imgsweep = run_study("imgsweep", base)
        imgsweep_epochs = full_stage_epochs(imgsweep)
        imgsweep_test = test_metrics_of_best(imgsweep) if imgsweep.best else None
        print(f"KerasTuner Hyperband: {args.minutes:g} minutes", flush=True)
        tuner = keras_tuner_search(base, args.minutes, Path(scratch))

    rows = _summary_rows(imgsweep, imgsweep_epochs, imgsweep_test, tuner)
    minutes = minutes_covered([imgsweep_epochs, tuner["counted"]], args.minutes)
    by_minute = minute_rows(imgsweep_epochs, tuner["counted"], minutes)
    path = write_csv("vs_kerastuner", rows)
    write_csv("vs_kerastuner_minutes", by_minute)
    write_csv("vs_kerastuner_trials", trial_rows(imgsweep))
    _write_epochs(imgsweep_epochs, tuner["counted"])

    print(machine_line())
    print(f"budget {args.minutes:g} min each; overrides: {' '.join(args.overrides) or 'none'}")
    _print_summary(rows)
    _print_minutes(by_minute)
    gap = rows[0]["best_val_auc"] - rows[1]["best_val_auc"]
    met = "met" if gap >= MARGIN else "MISSED"
    print(f"best val AUC imgsweep >= KerasTuner + {MARGIN}: {met} ({gap:+.4f})")
    _check_curve(imgsweep, rows[0]["best_val_auc"])
    print(f"results: {path} (and _minutes, _epochs, _trials .csv beside it)")


if __name__ == "__main__":
    main()
