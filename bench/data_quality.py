"""The data-quality report on a fault-injected copy of the default pair: what it finds, and
its time on data/fashion_pair and data/fashion10.

    .venv/bin/python -m bench.data_quality [--fashion10 | --fashion10-only]
    .venv/bin/python -m bench.data_quality --exclusion [--data data/fashion_pair]
        [--epochs 6] [--seeds 0 1]

--exclusion: does `data.quality.exclude_label_issues=true` move the test scores? The default
config's model trained for a fixed number of epochs (no early stopping, so the figures do not
depend on load) on the whole train split and on train less the flagged images, side by side
for each seed; scored on the official test labels.

Injected (tests/quality_faults.py): 2 % of train labels flipped, 25 test images copied into
train, 25 val images copied into train shifted by one pixel and 12 levels brighter, 20 train
images duplicated in train. Copies found = pairs (copy, original) in the report; precision on
cross-split copies is counted two ways: against the injected copies only, and against injected
plus genuine copies already in Fashion-MNIST (pairs without an injected file, which are listed
so they can be looked at).
"""

import argparse
import math
import shutil
import tempfile
import time
from pathlib import Path

from pipelines.config import compose_config
from pipelines.console import import_tensorflow_quietly
from tests.quality_faults import inject_faults


def _report(root: Path, cache: Path, *extra: str):
    """The report on `root`, its time printed: wall clock, and CPU seconds (all threads), which
    other jobs on the same cores change much less than the wall clock."""
    from pipelines.plan import load_data
    from pipelines.quality.run import data_quality_report
    from pipelines.quality.settings import quality_settings

    cfg = compose_config([f"data.root={root}", f"tracking.mlruns_dir={cache}", *extra])
    data = load_data(cfg)
    started, cpu_started = time.monotonic(), time.process_time()
    report, _, _ = data_quality_report(
        data, quality_settings(cfg), cache_dir=cache / "cache", title="bench"
    )
    print(
        f"report on {root}: {time.monotonic() - started:.0f} s wall, "
        f"{time.process_time() - cpu_started:.0f} s CPU ({report.seconds})",
        flush=True,
    )
    return report


def fault_injection(work: Path) -> None:
    root = work / "faulty_pair"
    faults = inject_faults(Path("data/fashion_pair"), root)
    report = _report(root, work / "mlruns")
    found = {(pair["file_a"], pair["file_b"]) for pair in report.duplicates}
    found |= {(b, a) for a, b in found}
    for name, pairs in (
        ("test copies in train", faults.test_copies),
        ("val copies in train (shifted, brighter)", faults.val_copies),
        ("train copies in train", faults.train_copies),
    ):
        hits = sum((str(root / copy), str(root / original)) in found for copy, original in pairs)
        print(f"{name}: found {hits}/{len(pairs)} ({100 * hits / len(pairs):.0f} %)")
    injected = {str(root / copy) for copy, _ in faults.test_copies + faults.val_copies}
    cross = report.cross_split()
    on_injected = [pair for pair in cross if {pair["file_a"], pair["file_b"]} & injected]
    genuine = [pair for pair in cross if pair not in on_injected]
    print(
        f"cross-split pairs reported: {len(cross)}; on injected copies {len(on_injected)} "
        f"(precision vs injected only {100 * len(on_injected) / max(len(cross), 1):.0f} %); "
        f"{len(genuine)} without an injected file:"
    )
    for pair in genuine:
        print(
            f"   {pair['file_a']} = {pair['file_b']} ({pair['kind']}, "
            f"pixel diff {pair['pixel_difference']})"
        )
    flipped = {str(root / file) for file in faults.flipped}
    top = math.ceil(0.03 * report.train_images)
    ranked = [issue["file"] for issue in report.label_issues]
    hits = len(flipped & set(ranked[:top]))
    print(
        f"flipped labels among the top {top} (3 %) of {report.train_images} train images: "
        f"{hits}/{len(flipped)} ({100 * hits / len(flipped):.0f} %); flagged in all "
        f"{len(flipped & set(ranked))}/{len(flipped)} of {len(ranked)} flagged"
    )


def _test_scores(data, *, train, plan, epochs: int, seed: int) -> dict:
    """Test AUC and accuracy of the plan's model fitted `epochs` epochs on `train`."""
    import keras

    from pipelines.evaluate import evaluate_split
    from pipelines.planned_fit import compiled_model, fit_as_planned

    keras.utils.set_random_seed(seed)
    model = compiled_model(plan, data)
    fit_as_planned(
        model,
        plan=plan,
        data=data,
        train_split=train,
        val_split=data.splits["val"],
        max_epochs=epochs,
        callbacks=[],
        stoppers=[],
    )
    scores = evaluate_split(model, data, data.splits["test"])
    keras.backend.clear_session()
    return scores


def label_exclusion(work: Path, root: Path, *, epochs: int, seeds: list[int]) -> None:
    """Test scores with and without the flagged train images, per seed."""
    from dataclasses import replace

    from pipelines.plan import load_data, plan_from_config
    from pipelines.quality.filters import files_to_remove, without_train_files
    from pipelines.quality.settings import quality_settings

    report = _report(root, work / "mlruns")
    print(f"{len(report.label_issues)} train images flagged")
    for seed in seeds:
        cfg = compose_config([f"data.root={root}", f"tracking.mlruns_dir={work}", f"seed={seed}"])
        data, plan = load_data(cfg), plan_from_config(cfg)
        excluded = replace(quality_settings(cfg), exclude_label_issues=True)
        reduced = without_train_files(data, files_to_remove(report, excluded))
        for name, train in (
            ("all", data.splits["train"]),
            ("flagged left out", reduced.splits["train"]),
        ):
            started = time.monotonic()
            scores = _test_scores(data, train=train, plan=plan, epochs=epochs, seed=seed)
            print(
                f"seed {seed}, train {name} ({len(train)} images), {epochs} epochs: test AUC "
                f"{scores['auc']:.4f}, accuracy {scores['accuracy']:.4f} "
                f"({time.monotonic() - started:.0f} s)",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fashion10", action="store_true", help="also time data/fashion10")
    parser.add_argument("--fashion10-only", action="store_true", help="time data/fashion10 only")
    parser.add_argument("--exclusion", action="store_true", help="test scores with/without")
    parser.add_argument("--data", default="data/fashion_pair", help="--exclusion's data")
    parser.add_argument("--epochs", type=int, default=6, help="--exclusion's epochs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    arguments = parser.parse_args()
    import_tensorflow_quietly()
    work = Path(tempfile.mkdtemp(prefix="bench-quality-"))
    try:
        if arguments.exclusion:
            label_exclusion(
                work, Path(arguments.data), epochs=arguments.epochs, seeds=arguments.seeds
            )
            return
        if not arguments.fashion10_only:
            fault_injection(work)
            _report(Path("data/fashion_pair"), work / "mlruns")
        if arguments.fashion10 or arguments.fashion10_only:
            _report(Path("data/fashion10"), work / "mlruns")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
