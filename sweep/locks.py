"""A lock every worker of a study takes around "count the trials, then ask for one".

Without it two workers can both see n_trials - 1 trials and both start one, and the study
ends with one trial too many. PostgreSQL gives an advisory lock, sqlite a lock file beside
the database; other storages run without one (a rare extra trial is then possible).
"""

import contextlib
import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy

from sweep.storage_retry import StorageRetry


class StudyLock:
    def __init__(self, storage_url: str, study_name: str, *, retry_seconds: float = 0):
        self._key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big") >> 1
        self._engine = None
        self._lock_file = None
        # A database restart drops the connection, and the lock with it: connect again.
        self._retry = StorageRetry(storage_url, retry_seconds)
        if storage_url.startswith("postgresql"):
            self._engine = sqlalchemy.create_engine(storage_url, pool_size=1, pool_pre_ping=True)
        elif storage_url.startswith("sqlite:///"):
            self._lock_file = Path(storage_url.removeprefix("sqlite:///") + f".{self._key}.lock")

    @contextmanager
    def held(self) -> Iterator[None]:
        if self._engine is not None:
            connection = self._retry.call(self._locked_connection)
            try:
                yield
            finally:
                with contextlib.suppress(sqlalchemy.exc.DBAPIError):
                    connection.execute(
                        sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": self._key}
                    )
                connection.close()
        elif self._lock_file is not None:
            with open(self._lock_file, "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
        else:
            yield

    def _locked_connection(self) -> sqlalchemy.Connection:
        connection = self._engine.connect()
        try:
            lock = sqlalchemy.text("SELECT pg_advisory_lock(:key)")
            connection.execute(lock, {"key": self._key})
        except BaseException:
            connection.close()
            raise
        return connection

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
