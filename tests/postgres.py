"""A throwaway PostgreSQL cluster for tests: initdb in a temp dir, pg_ctl on a free port."""

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Cluster:
    port: int
    user: str
    password: str
    databases: tuple[str, ...]
    # pg_ctl's arguments for this cluster (-D data_dir -o options -l log), for stop/start.
    control: tuple[str, ...] = ()

    def stop(self) -> None:
        """A fast shutdown, as `systemctl restart postgresql` does: connections are dropped."""
        _pg_ctl([*self.control, "-m", "fast", "-w", "stop"])

    def start(self) -> None:
        _pg_ctl([*self.control, "-w", "start"])

    def url(self, password: str | None = None, database: str | None = None) -> str:
        """A URL for the first database (Optuna's), or another one such as "mlflow"."""
        secret = self.password if password is None else password
        name = database or self.databases[0]
        return f"postgresql://{self.user}:{secret}@127.0.0.1:{self.port}/{name}"


def postgres_bin() -> Path | None:
    """The newest installed server's bin folder (Debian's postgresql package), if any."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root: use the package's `postgres` account.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _pg_ctl(arguments: list[str]) -> None:
    command = _as_server_user([str(postgres_bin() / "pg_ctl"), *arguments])
    subprocess.run(command, check=True, capture_output=True, text=True)


@contextmanager
def throwaway_cluster(databases: tuple[str, ...] = ("optuna", "mlflow")) -> Iterator[Cluster]:
    """Start a cluster with password (scram) login on 127.0.0.1; remove it afterwards.

    Optuna and MLflow each need a database of their own: both keep an alembic_version table.
    """
    bin_dir = postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="imgsweep-pg-"))
    data_dir, password_file = root / "data", root / "password"
    port = _free_port()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    control = ("-D", str(data_dir), "-o", options, "-l", str(root / "server.log"))
    cluster = Cluster(port, "imgsweep", secrets.token_urlsafe(16), databases, control)
    password_file.write_text(cluster.password)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(password_file, "postgres")
    run = lambda command: subprocess.run(  # noqa: E731
        _as_server_user(command), check=True, capture_output=True, text=True
    )
    run([str(bin_dir / "initdb"), "-D", str(data_dir), "-U", cluster.user,
         f"--pwfile={password_file}", "--auth-host=scram-sha-256",
         "--auth-local=trust"])  # fmt: skip
    cluster.start()
    try:
        for database in databases:
            run([str(bin_dir / "createdb"), "-h", str(root), "-p", str(cluster.port),
                 "-U", cluster.user, database])  # fmt: skip
        yield cluster
    finally:
        subprocess.run(
            _as_server_user(
                [str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "stop"]
            ),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)
