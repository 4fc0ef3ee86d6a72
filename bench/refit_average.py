"""The best trial, its refit and the two averaged (registry.average_refit), scored on the test
split from finished sweeps: what the `single+refit` candidate adds, also for sweeps made before
it existed.

    python -m bench.refit_average mlruns                      # this clone's sweep
    python -m bench.refit_average /a/mlruns /b/mlruns         # several sweeps of the same data
    python -m bench.refit_average runs/mlruns data.root=...   # another data set (its overrides)

For each store, the latest `single` version of `registry.model_name` and the `refit` version of
the same trial are loaded, both predict the test split, and the two probabilities are averaged
with equal weights, as champion/ensembles.py builds the candidate. A store is read in place: its
runs' artifact paths must still point at it.
"""

import argparse
from pathlib import Path

import numpy as np

from bench.studies import machine_line, write_csv
from pipelines.console import import_tensorflow_quietly


def _latest(versions, kind: str, trial_number: str | None = None):
    """The highest version tagged `candidate: kind` (of trial `trial_number`, if given)."""
    matching = [
        version
        for version in versions
        if version.tags.get("candidate") == kind
        and (trial_number is None or version.tags.get("trial_number") == trial_number)
    ]
    return max(matching, key=lambda version: int(version.version), default=None)


def _scores(labels, probabilities) -> dict[str, float]:
    from pipelines.evaluate import accuracy, roc_auc

    return {
        "test_auc": round(roc_auc(labels, probabilities), 6),
        "test_accuracy": round(accuracy(labels, probabilities), 6),
    }


def _store_rows(mlruns: Path, overrides: list[str]) -> list[dict]:
    """single, refit and their average on one store's test split, one row each."""
    from pipelines.config import compose_config
    from pipelines.evaluate import predict_split
    from pipelines.plan import load_data, tracking_from_config
    from pipelines.tracking.keras_logging import load_keras_model

    cfg = compose_config([*overrides, f"tracking.mlruns_dir={mlruns.resolve()}"])
    name = cfg.registry.model_name
    versions = tracking_from_config(cfg).model_versions(name, create=False)
    single = _latest(versions, "single")
    refit = single and _latest(versions, "refit", single.tags.get("trial_number"))
    if refit is None:
        print(f"{mlruns}: no single and refit versions of {name} from the same trial; skipped")
        return []
    data = load_data(cfg)
    test = data.splits["test"]
    probabilities = {
        kind: predict_split(load_keras_model(f"models:/{name}/{version.version}"), data, test)
        for kind, version in (("single", single), ("refit", refit))
    }
    probabilities["single+refit"] = (probabilities["single"] + probabilities["refit"]) / 2
    return [
        {
            "store": str(mlruns),
            "trial": single.tags.get("trial_number"),
            "refit_epochs": refit.tags.get("refit_epochs"),
            "candidate": kind,
            **_scores(test.labels, each),
        }
        for kind, each in probabilities.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stores", nargs="+", type=Path, help="mlruns folders of finished sweeps")
    parser.add_argument("--override", action="append", default=[], help="a Hydra override")
    args = parser.parse_args()
    import_tensorflow_quietly()
    rows = [row for store in args.stores for row in _store_rows(store, args.override)]
    if not rows:
        raise SystemExit("refit_average: no store had a single and a refit version to compare")
    path = write_csv("refit_average", rows)
    print(machine_line())
    print(f"{'store':<40} {'trial':>5} {'refit ep':>8}  single  refit   average  gain")
    gains = []
    for start in range(0, len(rows), 3):
        single, refit, average = (row["test_auc"] for row in rows[start : start + 3])
        gain = average - max(single, refit)
        gains.append(gain)
        row = rows[start]
        print(
            f"{row['store'][-40:]:<40} {row['trial']:>5} {row['refit_epochs']:>8}  "
            f"{single:.4f}  {refit:.4f}  {average:.4f}  {gain:+.4f}"
        )
    print(
        f"test AUC of the average over the better of the two: mean {np.mean(gains):+.4f}, "
        f"{sum(gain > 0 for gain in gains)} of {len(gains)} above; rows in {path}"
    )


if __name__ == "__main__":
    main()
