"""Study storage calls that ride out a database restart: retried with backoff for
`search.storage_retry_seconds`, then one clear error.

A PostgreSQL restart drops every connection. SQLAlchemy's pool_pre_ping replaces a dead
pooled connection on its next checkout; while the server is down, connecting fails. Optuna
wraps those errors as StorageInternalError (it cannot tell them from bad data), so the error
chain is checked for a connection failure; other errors are raised at once.
"""

import contextlib
import functools
import sys
import threading
import time
from collections.abc import Callable

import optuna
import sqlalchemy.exc

from pipelines.errors import ImgsweepError
from pipelines.urls import mask_password

# The storage methods a study process calls (Optuna's BaseStorage and heartbeat API, and the
# private ones its cache in front of RDBStorage calls): each is one transaction, rolled back
# if the connection drops, so calling it again is safe.
RETRIED_METHODS = (
    "_create_new_trial",
    "_get_best_trial_id",
    "_get_trials",
    "_set_trial_param",
    "create_new_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_all_studies",
    "create_new_trial",
    "set_trial_param",
    "get_trial_id_from_study_id_trial_number",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial",
    "get_all_trials",
    "get_n_trials",
    "get_best_trial",
    "record_heartbeat",
    "_get_stale_trial_ids",
)
# The longest wait between tries: a restarted server is noticed within this.
MAX_DELAY_SECONDS = 2.0


class StorageUnavailable(ImgsweepError):
    """The study's storage did not answer within `search.storage_retry_seconds`."""


def is_connection_error(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is a lost or refused database connection."""
    while error is not None:
        if isinstance(error, sqlalchemy.exc.DBAPIError) and (
            error.connection_invalidated
            or isinstance(error, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError))
        ):
            return True
        error = error.__cause__ or error.__context__
    return False


class StorageRetry:
    """Calls retried while the storage is unreachable, for up to `seconds`; after one call
    has given up, the others fail at once (the process is on its way out)."""

    def __init__(self, url: str, seconds: float):
        self.url, self.seconds = mask_password(url), seconds
        self.gave_up = False
        self._outage_noted = threading.Event()

    def call(self, function: Callable, *args, **kwargs):
        deadline = time.monotonic() + self.seconds
        delay = 0.25
        while True:
            try:
                result = function(*args, **kwargs)
            except Exception as error:
                if not is_connection_error(error):
                    raise
                if self.gave_up or time.monotonic() + delay > deadline:
                    self.gave_up = True
                    raise StorageUnavailable(self._message(error)) from None
                self._note_outage(error)
                time.sleep(delay)
                delay = min(delay * 2, MAX_DELAY_SECONDS)
                continue
            if self._outage_noted.is_set():
                self._outage_noted.clear()
                print(f"imgsweep: search.storage '{self.url}' answers again", file=sys.stderr)
            return result

    def _root_message(self, error: BaseException) -> str:
        while error.__cause__ is not None:
            error = error.__cause__
        return mask_password(str(error).strip().splitlines()[0] if str(error) else "")[:200]

    def _note_outage(self, error: BaseException) -> None:
        if not self._outage_noted.is_set():
            self._outage_noted.set()
            print(
                f"imgsweep: search.storage '{self.url}' does not answer "
                f"({self._root_message(error)}); retrying for up to {self.seconds:.0f} s "
                "(search.storage_retry_seconds)",
                file=sys.stderr,
                flush=True,
            )

    def _message(self, error: BaseException) -> str:
        return (
            f"search.storage '{self.url}' did not answer for {self.seconds:.0f} s "
            f"({self._root_message(error)}); this worker stops. When the database is back, "
            "`make sweep` or `make worker` resumes the study and runs the unfinished trial again "
            "(raise search.storage_retry_seconds to wait longer)"
        )


def retry_storage_calls(storage: optuna.storages.RDBStorage, retry: StorageRetry) -> None:
    """Route the storage's methods through `retry`, on this instance (Optuna's own calls
    between them, e.g. stale-trial checks reading trials, go through it too)."""
    for name in RETRIED_METHODS:
        method = getattr(storage, name)
        setattr(storage, name, functools.partial(retry.call, method))
    # Optuna's heartbeat thread dies, with a traceback, on an error: past the limit the main
    # thread's next call says what happened, and the heartbeats stop with the process.
    record_heartbeat = storage.record_heartbeat

    def keep_beating(trial_id: int) -> None:
        with contextlib.suppress(StorageUnavailable):
            record_heartbeat(trial_id)

    storage.record_heartbeat = keep_beating
