"""Storage and tracking URLs: where the local stores live, and how a URL is shown."""

import re
from pathlib import Path


def mlflow_store_file(mlruns_dir: Path) -> Path:
    """The sqlite file of the local MLflow store inside `mlruns_dir`."""
    return mlruns_dir / "mlflow.db"


def sqlite_uri(mlruns_dir: Path) -> str:
    """The tracking URI of the sqlite store inside `mlruns_dir` (no mlflow import needed)."""
    return f"sqlite:///{mlflow_store_file(mlruns_dir)}"


def mask_password(text: str) -> str:
    """Any URL password in `text` replaced by *** (for logs, tags and artifacts)."""
    return re.sub(r"(://[^:/@\s]+:)[^@\s]*@", r"\1***@", text)
