"""A full disk while writing a file: no half-written file left, one line naming the path and
the space it needed."""

import contextlib
import errno
import shutil
from collections.abc import Iterator
from pathlib import Path

from pipelines.errors import ImgsweepError

# How a full disk reads when a library has turned the OSError into its own error (SQLite's
# "database or disk is full", h5py's and zipfile's messages carrying strerror).
FULL_DISK_MESSAGES = ("No space left on device", "database or disk is full", "Disk quota exceeded")


class DiskFull(ImgsweepError):
    """A write failed because the file system holding it is full."""


def is_disk_full(error: BaseException | None) -> bool:
    """Whether `error`, or an error that caused it, is ENOSPC / EDQUOT or says so."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(message in str(error) for message in FULL_DISK_MESSAGES):
            return True
        error = error.__cause__ or error.__context__
    return False


def _megabytes(size: float) -> str:
    return f"{size / 2**20:.1f} MB"


def disk_full(path: Path, what: str, needed_bytes: int | None) -> DiskFull:
    """The one line: which file, how much it needs, how much is free where it goes."""
    folder = next((parent for parent in [path, *path.parents] if parent.exists()), Path("/"))
    free = shutil.disk_usage(folder).free
    needed = f"about {_megabytes(needed_bytes)} needed, " if needed_bytes else ""
    return DiskFull(
        f"no space left on the device for {what} {path} ({needed}{_megabytes(free)} free "
        f"in {folder}); free some space there and run again"
    )


@contextlib.contextmanager
def written_whole(
    path: Path, partial: Path, *, what: str, needed_bytes: int | None
) -> Iterator[None]:
    """Around writing `partial` (renamed to `path` by the caller): on any failure the partial
    file is removed, and a full disk becomes DiskFull naming `path`."""
    try:
        yield
    except BaseException as error:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        if is_disk_full(error):
            raise disk_full(path, what, needed_bytes) from None
        raise
