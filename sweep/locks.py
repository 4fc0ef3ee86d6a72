"""A lock every worker of a study takes around "count the trials, then ask for one".

Without it two workers can both see n_trials - 1 trials and both start one, and the study
ends with one trial too many. PostgreSQL gives an advisory lock, sqlite a lock file beside
the database; other storages run without one (a rare extra trial is then possible).
"""

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy


class StudyLock:
    def __init__(self, storage_url: str, study_name: str):
        self._key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big") >> 1
        self._engine = None
        self._lock_file = None
        if storage_url.startswith("postgresql"):
            self._engine = sqlalchemy.create_engine(storage_url, pool_size=1, pool_pre_ping=True)
        elif storage_url.startswith("sqlite:///"):
            self._lock_file = Path(storage_url.removeprefix("sqlite:///") + f".{self._key}.lock")

    @contextmanager
    def held(self) -> Iterator[None]:
        if self._engine is not None:
            with self._engine.connect() as connection:
                connection.execute(
                    sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": self._key}
                )
                try:
                    yield
                finally:
                    connection.execute(
                        sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": self._key}
                    )
        elif self._lock_file is not None:
            with open(self._lock_file, "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
        else:
            yield

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
