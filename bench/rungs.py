"""The pruner's rungs: the default study with Hyperband's rungs at equal training seconds and
at equal epochs (search.pruner.resource), on the same budget. (Subset rungs, epoch 0 in
stratified shares each reported, were a third variant until they lost: BENCHMARKS.md §13.)

    python -m bench.rungs                          # 20 minutes a study, seeds 0 and 1: 80 min
    python -m bench.rungs --minutes 2 --seeds 1    # a smoke run
    python -m bench.rungs --seeds 1 --first-seed 1 # seed 1 alone, to add to an earlier seed 0
    python -m bench.rungs --variants epochs        # one of the two
    python -m bench.rungs --minutes 20 data=...    # other Hydra overrides for every study

For each seed the studies run one after the other (in --variants order), each on `--minutes`
of wall clock (search.timeout_minutes), without promotion or the data-quality report. Reports
best val metric, test AUC of the best trial (its best-epoch checkpoint), trials by state,
full-set epochs, the study's reference epoch in seconds, and the resource the trials actually
reported in (a study without a measured reference epoch falls back to epochs: `epochs*`).
"""

import argparse
import statistics
import tempfile
from collections import Counter
from pathlib import Path

from bench.studies import (
    budgeted_study_overrides,
    machine_line,
    run_study,
    test_metrics_of_best,
    trial_rows,
    write_csv,
)
from pipelines.console import import_tensorflow_quietly

# Each variant's overrides, after the bench's own and the command line's.
VARIANTS = {
    "seconds": ["search.pruner.resource=seconds"],
    "epochs": ["search.pruner.resource=epochs"],
}
STATES = ("COMPLETE", "PRUNED", "FAIL")


def _resources_used(overrides: list[str]) -> tuple[str, float | None]:
    """How the study's trials reported to the pruner ("epochs*" for the seconds fallback), and
    its reference epoch in seconds, read back from its storage."""
    import optuna

    from pipelines.config import compose_config, resolve_path
    from sweep.storage import storage_url

    cfg = compose_config(overrides)
    storage = storage_url(cfg.search.storage, resolve_path(cfg.tracking.mlruns_dir))
    study = optuna.load_study(study_name=cfg.search.study_name, storage=storage)
    used = Counter(trial.user_attrs.get("pruner_resource") for trial in study.trials)
    used.pop(None, None)
    configured = cfg.search.pruner.resource
    names = ["epochs*" if name == "epochs" and configured == "seconds" else name for name in used]
    return "/".join(names) or "-", study.user_attrs.get("reference_epoch_seconds")


def _row(record, variant: str, seed: int, used: str, reference) -> dict:
    best = record.best
    test = test_metrics_of_best(record) if best else None
    return {
        "variant": variant,
        "seed": seed,
        "reported_in": used,
        "reference_epoch_seconds": reference,
        **{state.lower(): record.count(state) for state in STATES},
        "full_epochs": record.full_epochs,
        "metric": record.metric,
        "best_val_metric": best.value if best else float("nan"),
        "test_auc_of_best": test["auc"] if test else float("nan"),
        "wall_seconds": record.wall_seconds,
    }


def _run(variant: str, seed: int, minutes: float, scratch: Path, extra: list[str]):
    """One study: its record, and how its trials reported."""
    name = f"rungs_{variant}_{seed}"
    print(f"study {name}: {minutes:g} minutes", flush=True)
    overrides = [
        *budgeted_study_overrides(name, minutes, scratch / f"mlruns-{name}"),
        # The data-quality report is the same for both and runs before the budget starts:
        # minutes of wall clock that tell the two apart in nothing.
        "data.quality.enabled=false",
        f"seed={seed}",
        *extra,
        *VARIANTS[variant],
    ]
    record = run_study(name, overrides)
    return record, *_resources_used(overrides)


def _print_table(rows: list[dict]) -> None:
    print(
        f"{'variant':9}{'seed':>5}{'reported':>10}{'ref s':>7}{'complete':>9}{'pruned':>7}"
        f"{'fail':>5}{'epochs':>7}{'best val':>10}{'test AUC':>9}{'wall s':>8}"
    )
    for row in rows:
        reference = row["reference_epoch_seconds"]
        print(
            f"{row['variant']:9}{row['seed']:>5}{row['reported_in']:>10}"
            f"{'-' if reference is None else f'{reference:.1f}':>7}{row['complete']:>9}"
            f"{row['pruned']:>7}{row['fail']:>5}{row['full_epochs']:>7}"
            f"{row['best_val_metric']:>10.4f}{row['test_auc_of_best']:>9.4f}"
            f"{row['wall_seconds']:>8.0f}"
        )
    for variant in dict.fromkeys(row["variant"] for row in rows):
        mine = [row for row in rows if row["variant"] == variant]
        print(
            f"{variant:9} mean of {len(mine)}: best val "
            f"{statistics.fmean(row['best_val_metric'] for row in mine):.4f}, test AUC "
            f"{statistics.fmean(row['test_auc_of_best'] for row in mine):.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="budget for each study")
    parser.add_argument("--seeds", type=int, default=2, help="how many seeds, a study a variant")
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds FIRST .. FIRST+N-1 (to add a seed later)"
    )
    parser.add_argument(
        "--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS), help="in this order"
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every study")
    args = parser.parse_args()
    if args.seeds < 1 or args.minutes <= 0 or args.first_seed < 0:
        parser.error("--seeds must be >= 1, --first-seed >= 0 and --minutes > 0")
    import_tensorflow_quietly()

    rows, records = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for variant in args.variants:
                record, used, reference = _run(
                    variant, seed, args.minutes, Path(scratch), args.overrides
                )
                records.append(record)
                rows.append(_row(record, variant, seed, used, reference))
    path = write_csv("rungs", rows)
    write_csv("rungs_trials", [row for record in records for row in trial_rows(record)])

    print(machine_line())
    print(f"budget {args.minutes:g} min each; overrides: {' '.join(args.overrides) or 'none'}")
    _print_table(rows)
    print(f"best val metric: {rows[0]['metric']}; results: {path}")


if __name__ == "__main__":
    main()
