"""Shared fixtures: tiny real image folders (scikit-learn's digits) and a shrunk real config."""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from pipelines.config import compose_config


def write_digit_folders(root: Path, digits: list[int], *, per_class: dict[str, int]) -> Path:
    """train/val/test folders of 8×8 digit PNGs, one class folder per digit ('digit_3')."""
    images, labels = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    for digit in digits:
        indices = rng.permutation(np.flatnonzero(labels == digit))
        start = 0
        for split, count in per_class.items():
            folder = root / split / f"digit_{digit}"
            folder.mkdir(parents=True, exist_ok=True)
            for index in indices[start : start + count]:
                pixels = (images[index].reshape(8, 8) * 255 / 16).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{index}.png")
            start += count
    return root


SPLIT_SIZES = {"train": 100, "val": 30, "test": 30}


@pytest.fixture(scope="session")
def binary_digits(tmp_path_factory) -> Path:
    """Digits 3 vs 8, the pair that looks most alike."""
    return write_digit_folders(tmp_path_factory.mktemp("digits38"), [3, 8], per_class=SPLIT_SIZES)


@pytest.fixture(scope="session")
def multiclass_digits(tmp_path_factory) -> Path:
    return write_digit_folders(
        tmp_path_factory.mktemp("digits012"), [0, 1, 2], per_class=SPLIT_SIZES
    )


def small_overrides(data_root: Path, mlruns: Path, **extra: object) -> list[str]:
    """The real config, shrunk: 16×16 images, short stages, storage under tmp."""
    overrides = {
        "data.root": str(data_root),
        "data.image_size": "[16,16]",
        "tracking.mlruns_dir": str(mlruns),
        "stages.ablation.images_per_class": 8,
        "stages.overfit.images_per_class": 20,
        "stages.overfit.max_epochs": 25,
        "stages.overfit.accuracy_share": 0.8,
        "stages.overfit.batch_size": 8,
        "stages.full.max_epochs": 2,
        "stages.full.batch_size": 32,
        "search.n_trials": 3,
        "search.study_name": "test_study",
        "search.space.learning_rate.low": 0.003,
        "search.space.learning_rate.high": 0.01,
        "search.space.optimizer.choices": "[adam]",
        # The family fixed (so not searched): the one-conv CNN passes the overfit stage on
        # 16x16 digits in every sampled setting; vgg_cnn has its own tests.
        "model": "small_cnn",
        "registry.model_name": "test_classifier",
        # The best trial alone: the refit and the ensemble (on by default) have their own
        # tests in test_final_models.py, and each would add two versions to every study here.
        "registry.refit": "none",
        "registry.ensemble": 0,
        # The data-quality report has its own tests (test_quality.py): off for the others.
        "data.quality.enabled": "false",
    }
    overrides.update(extra)
    return [f"{key}={value}" for key, value in overrides.items()]


@pytest.fixture
def make_config():
    """compose_config with the small overrides; returns (cfg, overrides) as the CLI would."""

    def make(data_root: Path, mlruns: Path, **extra):
        overrides = small_overrides(data_root, mlruns, **extra)
        return compose_config(overrides), overrides

    return make


CHROMIUM = Path("/usr/bin/chromium")


def missing_system_package(message: str) -> None:
    """Fail under `make test` and CI, which promise the whole suite; skip a bare pytest run."""
    if os.environ.get("IMGSWEEP_WHOLE_SUITE") or os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL cluster for the session (`make test` installs Debian's postgresql)."""
    from tests.postgres import postgres_bin, throwaway_cluster

    if postgres_bin() is None:
        missing_system_package("PostgreSQL is not installed: sudo apt-get install postgresql")
    with throwaway_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium with Playwright to drive it (`make test` installs the browser)."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (make install)")
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (sudo apt-get install chromium)")
    if missing:
        missing_system_package("the browser tests need " + " and ".join(missing))
    return CHROMIUM


@dataclass(frozen=True)
class FinishedStudy:
    result: object  # sweep.run.SweepResult
    mlruns: Path
    overrides: list[str]
    data_root: Path


@pytest.fixture(scope="session")
def finished_study(binary_digits, tmp_path_factory) -> FinishedStudy:
    """A two-trial study, its best model promoted: run once for the tests that read results."""
    from sweep.run import run_sweep

    mlruns = tmp_path_factory.mktemp("finished_study") / "mlruns"
    overrides = small_overrides(binary_digits, mlruns, **{"search.n_trials": 2})
    result = run_sweep(compose_config(overrides), overrides)
    return FinishedStudy(result, mlruns, overrides, binary_digits)
