"""The same study twice with the same seed (one worker, CPU): same trials, same best?

    python -m bench.reproducibility                  # the default study, 8 trials each
    python -m bench.reproducibility --trials 16 [overrides ...]

Compares the two studies trial by trial (sampled parameters, how the trial ended, its val
AUC) and checks that every trial's MLflow run records what it was made from: its resolved
config, the git commit, package versions and the data fingerprint. Targets: identical
parameters trial by trial, best val AUC within +-0.005.
"""

import argparse
import tempfile
from pathlib import Path

from bench.studies import machine_line, run_study, write_csv
from pipelines.console import import_tensorflow_quietly

PROVENANCE = {
    "config.yaml": "artifact",
    "packages.json": "artifact",
    "mlflow.source.git.commit": "tag",
    "data_fingerprint": "tag",
}


def missing_provenance(overrides: list[str]) -> dict[str, list[str]]:
    """Trial run name -> the PROVENANCE entries it lacks (only runs that lack some)."""
    from pipelines.config import compose_config
    from pipelines.plan import tracking_from_config

    cfg = compose_config(overrides)
    tracker = tracking_from_config(cfg)
    runs = tracker.find_runs(f"tags.study = '{cfg.search.study_name}'")
    missing = {}
    for run in runs:
        if "trial_number" not in run.data.tags:
            continue  # the study's own run
        artifacts = {entry.path for entry in tracker.client.list_artifacts(run.info.run_id)}
        lacking = [
            name
            for name, kind in PROVENANCE.items()
            if (name not in artifacts if kind == "artifact" else name not in run.data.tags)
        ]
        if lacking:
            missing[run.info.run_name] = lacking
    return missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for both studies")
    args = parser.parse_args()
    import_tensorflow_quietly()

    records, missing = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for run in (1, 2):
            print(f"study run {run}", flush=True)
            overrides = [
                f"search.n_trials={args.trials}",
                "search.timeout_minutes=null",  # the trial count decides
                "search.workers=1",
                f"tracking.mlruns_dir={Path(scratch) / f'mlruns-{run}'}",
                "registry.promote_after_sweep=false",
                *args.overrides,
            ]
            records.append(run_study(f"run {run}", overrides))
            missing.append(missing_provenance(overrides))

    first, second = records
    rows = []
    for one, two in zip(first.trials, second.trials, strict=False):
        difference = (
            abs(one.value - two.value) if one.value is not None and two.value is not None else None
        )
        rows.append(
            {
                "trial": one.number,
                "same_params": one.params == two.params,
                "state_1": one.state,
                "state_2": two.state,
                "val_auc_1": one.value,
                "val_auc_2": two.value,
                "val_auc_difference": difference,
                "params_1": one.params,
                "params_2": two.params,
            }
        )
    path = write_csv("reproducibility", rows)

    print(machine_line())
    print(f"{args.trials} trials each; overrides: {' '.join(args.overrides) or 'none'}")
    print(
        f"{'trial':>5}  {'params':10}{'state 1':>10}{'state 2':>10}"
        f"{'val AUC 1':>11}{'val AUC 2':>11}"
    )
    for row in rows:
        values = [
            "-" if row[key] is None else f"{row[key]:.4f}" for key in ("val_auc_1", "val_auc_2")
        ]
        print(
            f"{row['trial']:>5}  {'same' if row['same_params'] else 'DIFFERENT':10}"
            f"{row['state_1']:>10}{row['state_2']:>10}{values[0]:>11}{values[1]:>11}"
        )
    same = all(row["same_params"] for row in rows) and len(first.trials) == len(second.trials)
    gap = abs(first.best.value - second.best.value) if first.best and second.best else None
    print(f"same parameters trial by trial: {'met' if same else 'MISSED'}")
    if gap is None:
        print("best val AUC: a study finished without a complete trial (MISSED)")
    else:
        print(
            f"best val AUC {first.best.value:.4f} vs {second.best.value:.4f}: difference "
            f"{gap:.4f} (target <= 0.005: {'met' if gap <= 0.005 else 'MISSED'})"
        )
    for run, lacking in enumerate(missing, start=1):
        if lacking:
            print(f"run {run}: provenance MISSING: {lacking}")
        else:
            print(f"run {run}: every trial run records {', '.join(PROVENANCE)}: met")
    print(f"results: {path}")


if __name__ == "__main__":
    main()
