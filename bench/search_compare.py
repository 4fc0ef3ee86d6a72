"""The search itself, three ways on the same budget: what each finds, and how fast.

    python -m bench.search_compare                   # 20 minutes each, one after the other
    python -m bench.search_compare --minutes 1 --no-false-stops    # a smoke run
    python -m bench.search_compare --minutes 20 data=fashion10     # other Hydra overrides
    python -m bench.search_compare --variants b,d    # the default vs the median pruner

(a) the earlier default: TPE, the median pruner and the fixed 95 % overfit bar (two
classes), no queued first trial; (b) the default (conf/search/default.yaml); (c) random
search with the default gate and pruner. On request: (d) the default gate with the median
pruner in place of Hyperband; (e) the default with Hyperband's earlier reduction factor 3
(three brackets, rungs after epochs 2, 4 and 10 of 12, where the default 4 has 2 and 5). Each
study runs `--minutes` of wall clock (search.timeout_minutes). Reports trials by state, full-set
epochs, best val metric, test AUC of the best, false stops (gate-stopped configurations that
reach within 0.01 of their study's best when trained with the gates off; --no-false-stops
skips these re-runs) and when each study first reached each other study's final best.
"""

import argparse
import tempfile
from pathlib import Path

from bench.studies import (
    budgeted_study_overrides,
    false_stops,
    first_reached,
    machine_line,
    run_study,
    test_metrics_of_best,
    trial_rows,
    write_csv,
)
from pipelines.console import import_tensorflow_quietly

VARIANTS = {
    "a: TPE + median + 95% bar": [
        "search.sampler.name=tpe",
        "search.pruner.name=median",
        "stages.overfit.accuracy_share=0.9",
        "stages.overfit.loss_drop=null",
        "search.enqueue=[]",
    ],
    "b: default": [],
    "c: random + default gate": ["search.sampler.name=random"],
    "d: median + default gate": ["search.pruner.name=median"],
    "e: Hyperband, reduction factor 3": ["search.pruner.hyperband.reduction_factor=3"],
}
DEFAULT_VARIANTS = "a,b,c"
VARIANTS_BY_LETTER = {label[0]: label for label in VARIANTS}
STATES = ("COMPLETE", "PRUNED", "FAIL")


def _row(record, test_metrics, stops) -> dict:
    best = record.best
    return {
        "study": record.label,
        **{state.lower(): record.count(state) for state in STATES},
        "stopped_by_gates": record.stopped_by("ablation") + record.stopped_by("overfit"),
        "full_epochs": record.full_epochs,
        "metric": record.metric,
        "best_val_metric": best.value if best else float("nan"),
        "test_auc_of_best": test_metrics["auc"] if test_metrics else float("nan"),
        "false_stops": "" if stops is None else len(stops),
        "wall_seconds": record.wall_seconds,
    }


def _seconds(value) -> str:
    return "never" if value is None else value if isinstance(value, str) else f"{value:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="budget for each study")
    parser.add_argument(
        "--no-false-stops",
        action="store_true",
        help="skip re-running gate-stopped configurations with the gates off",
    )
    parser.add_argument(
        "--variants",
        default=DEFAULT_VARIANTS,
        help=f"comma-separated letters of the studies to run, from {','.join(VARIANTS_BY_LETTER)}",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every study")
    args = parser.parse_args()
    letters = [letter.strip() for letter in args.variants.split(",") if letter.strip()]
    unknown = [letter for letter in letters if letter not in VARIANTS_BY_LETTER]
    if unknown or not letters:
        parser.error(
            f"--variants {args.variants!r}: pick letters from {','.join(VARIANTS_BY_LETTER)}"
        )
    import_tensorflow_quietly()

    records, rows = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for letter in letters:
            label = VARIANTS_BY_LETTER[letter]
            variant = VARIANTS[label]
            print(f"study {label}: {args.minutes:g} minutes", flush=True)
            overrides = [
                *budgeted_study_overrides(
                    f"search_compare_{letter}", args.minutes, Path(scratch) / f"mlruns-{letter}"
                ),
                *args.overrides,
                *variant,
            ]
            record = run_study(label, overrides)
            test_metrics = test_metrics_of_best(record) if record.best else None
            stops = None if args.no_false_stops else false_stops(record)
            records.append(record)
            rows.append(_row(record, test_metrics, stops))

    # When each study first reached each study's final best, its own included (values signed:
    # more is better).
    for record, row in zip(records, rows, strict=True):
        for other in records:
            target = max((value for _, value in other.timeline()), default=None)
            # n/a: that study completed no trial; None: this one never reached its best.
            reached = "n/a" if target is None else first_reached(record.timeline(), target)
            row[f"seconds_to_best_of_{other.label[0]}"] = reached
    path = write_csv("search_compare", rows)
    write_csv("search_compare_trials", [row for record in records for row in trial_rows(record)])

    print(machine_line())
    print(f"budget {args.minutes:g} min each; overrides: {' '.join(args.overrides) or 'none'}")
    studied = ", ".join(letters)
    print(
        f"{'':28}{'complete':>9}{'pruned':>7}{'fail':>5}{'gates':>6}{'epochs':>7}"
        f"{'best val':>10}{'test AUC':>9}{'false':>6}  reached the best of {studied} at"
    )
    for row in rows:
        reached = ", ".join(
            f"{key[-1]}: {_seconds(value)}"
            for key, value in row.items()
            if key.startswith("seconds_to_best_of_")
        )
        print(
            f"{row['study']:28}{row['complete']:>9}{row['pruned']:>7}{row['fail']:>5}"
            f"{row['stopped_by_gates']:>6}{row['full_epochs']:>7}"
            f"{row['best_val_metric']:>10.4f}{row['test_auc_of_best']:>9.4f}"
            f"{row['false_stops']!s:>6}  {reached}"
        )
    print(f"best val metric: {rows[0]['metric']}; results: {path}")


if __name__ == "__main__":
    main()
