"""A tracking store that does not answer: each call retried with backoff, then one clear error.

A tracking server restarting or a sqlite file locked by another worker is waited out for
`tracking.retry_seconds`; a full disk or a wrong request is reported at once.
"""

import time
from collections.abc import Callable

from mlflow.exceptions import MlflowException

from pipelines.disk import DiskFull, is_disk_full
from pipelines.errors import ImgsweepError
from pipelines.urls import mask_password

# Errors that retrying cannot fix: the request itself is wrong.
PERMANENT_ERRORS = {
    "INVALID_PARAMETER_VALUE",
    "RESOURCE_ALREADY_EXISTS",
    "RESOURCE_DOES_NOT_EXIST",
    "BAD_REQUEST",
    "INVALID_STATE",
}


class TrackingUnavailable(ImgsweepError):
    """The tracking store did not answer within `tracking.retry_seconds`."""


def call_with_retry(function: Callable, *args, tracking_uri: str, retry_seconds: float, **kwargs):
    """`function(*args, **kwargs)`, retried with backoff for up to `retry_seconds`; raises
    TrackingUnavailable (or DiskFull) naming `tracking_uri` after that: never a hang."""
    deadline = time.monotonic() + retry_seconds
    delay = 0.5
    while True:
        try:
            return function(*args, **kwargs)
        except (MlflowException, OSError) as error:
            code = getattr(error, "error_code", None)
            if code in PERMANENT_ERRORS:
                raise
            message = mask_password(str(error).strip().splitlines()[0])[:200]
            if is_disk_full(error):
                # Waiting does not free space: say so now rather than after retry_seconds.
                raise DiskFull(
                    f"tracking store '{mask_password(tracking_uri)}' cannot write: "
                    f"{message}; free some space where it keeps its files and run again"
                ) from None
            if time.monotonic() + delay > deadline:
                raise TrackingUnavailable(
                    f"tracking store '{mask_password(tracking_uri)}' failed for "
                    f"{retry_seconds:.0f} s ({message}); check tracking.tracking_uri"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 30)
