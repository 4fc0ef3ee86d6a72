"""What a run was made from: the code's git commit and the versions of the packages it ran on."""

import functools
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    "tensorflow",
    "keras",
    "numpy",
    "scikit-learn",
    "pillow",
    "mlflow",
    "optuna",
    "hydra-core",
)


def _git(*arguments: str) -> str:
    completed = subprocess.run(
        ["git", *arguments], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10
    )
    if completed.returncode:
        raise subprocess.SubprocessError(completed.stderr)
    return completed.stdout.strip()


@functools.cache
def git_state() -> dict[str, str]:
    """The checkout's commit, and whether tracked files differ from it; {} outside git."""
    try:
        commit = _git("rev-parse", "HEAD")
        changed = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": commit, "dirty": "true" if changed else "false"}


@functools.cache
def package_versions() -> dict[str, str]:
    """Python's version and each installed package of PACKAGES'."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions
