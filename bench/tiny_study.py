"""A small real study for the scale benchmarks: scikit-learn digits as PNG folders, 16×16."""

from pathlib import Path

from tests.conftest import small_overrides, write_digit_folders


def write_tiny_data(folder: Path) -> Path:
    """Digits 3 vs 8: 100 train, 30 val and 30 test images per class."""
    return write_digit_folders(folder, [3, 8], per_class={"train": 100, "val": 30, "test": 30})


def tiny_study_overrides(
    data: Path, mlruns: Path, *, study: str, storage: str, trials: int, workers: int, epochs: int
) -> list[str]:
    """The shrunk test config with fast heartbeats, no pruner and no promotion."""
    return small_overrides(
        data,
        mlruns,
        **{
            "search.storage": storage,
            "search.study_name": study,
            "search.n_trials": trials,
            "search.workers": workers,
            "search.heartbeat_interval": 1,
            "search.grace_period": 3,
            "search.pruner.name": "none",
            "stages.full.max_epochs": epochs,
            "registry.promote_after_sweep": "false",
        },
    )
