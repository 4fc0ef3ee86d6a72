"""The data-quality report on a fault-injected copy of the default pair: what it finds, and
its time on data/fashion_pair and data/fashion10.

    .venv/bin/python -m bench.data_quality [--fashion10]

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
    from pipelines.plan import load_data
    from pipelines.quality.run import data_quality_report
    from pipelines.quality.settings import quality_settings

    cfg = compose_config([f"data.root={root}", f"tracking.mlruns_dir={cache}", *extra])
    data = load_data(cfg)
    started = time.monotonic()
    report, _, _ = data_quality_report(
        data, quality_settings(cfg), cache_dir=cache / "cache", title="bench"
    )
    return report, time.monotonic() - started


def fault_injection(work: Path) -> None:
    root = work / "faulty_pair"
    faults = inject_faults(Path("data/fashion_pair"), root)
    report, seconds = _report(root, work / "mlruns")
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
    print(f"report on the faulty pair: {seconds:.0f} s ({report.seconds})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fashion10", action="store_true", help="also time data/fashion10")
    arguments = parser.parse_args()
    import_tensorflow_quietly()
    work = Path(tempfile.mkdtemp(prefix="bench-quality-"))
    try:
        fault_injection(work)
        report, seconds = _report(Path("data/fashion_pair"), work / "mlruns")
        print(f"report on data/fashion_pair: {seconds:.0f} s ({report.seconds})")
        if arguments.fashion10:
            report, seconds = _report(Path("data/fashion10"), work / "mlruns")
            print(f"report on data/fashion10: {seconds:.0f} s ({report.seconds})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
