"""What the sanity stages and the pruner buy: one study three ways, same seed and trial budget.

    python -m bench.stage_value                     # the default study, 16 trials each
    python -m bench.stage_value --trials 8 [overrides ...]
    python -m bench.stage_value --false-stops       # also re-run gate-stopped trials, gates off

(a) ablation + overfit gates + the pruner (the default), (b) the pruner only, (c) neither.
Reports how each trial ended, the epochs trained on the full training set, wall time (the
sanity stages' own small-subset epochs are in it) and best val AUC; the target is (a)
training >= 40% fewer full-set epochs than (c) with best val AUC within 0.005, and no false
stops (a gate-stopped configuration that, trained with the gates off, reaches within 0.01 of
its study's best).
"""

import argparse
import tempfile
from pathlib import Path

from bench.studies import false_stops, machine_line, run_study, trial_rows, write_csv
from pipelines.console import import_tensorflow_quietly

VARIANTS = {
    "a: gates + pruner": [],
    "b: pruner only": ["stages.ablation.enabled=false", "stages.overfit.enabled=false"],
    "c: neither": [
        "stages.ablation.enabled=false",
        "stages.overfit.enabled=false",
        "search.pruner.name=none",
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--false-stops", action="store_true", help="count the gates' false stops")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for all three studies")
    args = parser.parse_args()
    import_tensorflow_quietly()

    records, stops = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        for index, (label, variant) in enumerate(VARIANTS.items()):
            print(f"study {label}", flush=True)
            overrides = [
                f"search.n_trials={args.trials}",
                "search.timeout_minutes=null",  # the trial count decides
                f"search.study_name=stage_value_{index}",
                f"tracking.mlruns_dir={Path(scratch) / f'mlruns-{index}'}",
                "registry.promote_after_sweep=false",
                *args.overrides,
                *variant,
            ]
            record = run_study(label, overrides)
            stops[label] = false_stops(record) if args.false_stops else None
            records.append(record)

    rows = [
        {
            "study": record.label,
            "trials_complete": record.count("COMPLETE"),
            "stopped_by_ablation": record.stopped_by("ablation"),
            "stopped_by_overfit": record.stopped_by("overfit"),
            "pruned_in_full_stage": record.stopped_by("full"),
            "failed": record.count("FAIL"),
            "full_epochs": record.full_epochs,
            "wall_seconds": record.wall_seconds,
            "best_val_auc": record.best.value if record.best else float("nan"),
            "false_stops": "" if stops[record.label] is None else len(stops[record.label]),
        }
        for record in records
    ]
    path = write_csv("stage_value", rows)
    write_csv("stage_value_trials", [row for record in records for row in trial_rows(record)])

    print(machine_line())
    print(
        f"{args.trials} trials each, seed as configured; "
        f"overrides: {' '.join(args.overrides) or 'none'}"
    )
    print(
        f"{'':20}{'complete':>9}{'ablation':>9}{'overfit':>8}{'pruned':>7}{'failed':>7}"
        f"{'full epochs':>12}{'wall s':>8}{'best val AUC':>14}{'false stops':>12}"
    )
    for row in rows:
        print(
            f"{row['study']:20}{row['trials_complete']:>9}{row['stopped_by_ablation']:>9}"
            f"{row['stopped_by_overfit']:>8}{row['pruned_in_full_stage']:>7}{row['failed']:>7}"
            f"{row['full_epochs']:>12}{row['wall_seconds']:>8.0f}{row['best_val_auc']:>14.4f}"
            f"{row['false_stops']!s:>12}"
        )
    gated, neither = rows[0], rows[2]
    saved = 1 - gated["full_epochs"] / neither["full_epochs"]
    gap = neither["best_val_auc"] - gated["best_val_auc"]
    less_wall = 1 - gated["wall_seconds"] / neither["wall_seconds"]
    print(
        f"(a) vs (c): {saved:.0%} fewer full-set epochs (target >= 40%: "
        f"{'met' if saved >= 0.4 else 'MISSED'}), {less_wall:.0%} less wall time; "
        f"best val AUC {gap:+.4f} below (target <= 0.005: "
        f"{'met' if gap <= 0.005 else 'MISSED'})"
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
