"""`make ui`: the MLflow UI over mlruns/, in its own process group so Ctrl-C stops all of it.

The start / wait / stop helpers here also serve `make dashboard` (sweep/dashboard.py)."""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from pipelines.config import sqlite_uri

# `mlflow server` takes ~12 s to answer on 2 cores; give slower machines room.
START_TIMEOUT_SECONDS = 90
RUNS_VIEW = "workflowType=machine_learning"


def free_port(preferred: int, host: str) -> int:
    """`preferred` if nothing listens there, else a port the OS picks."""
    for port in (preferred, 0):
        with socket.socket() as probe:
            # As the servers do: connections of a server just stopped (TIME_WAIT) do not count.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise OSError(f"no free port on {host}")


def start_process_group(command: list[str], environment: dict[str, str] | None = None):
    """Start `command` as the leader of a new process group, so stop_server stops all of it."""
    return subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, env=environment
    )


def start_server(
    *, mlruns_dir: Path, host: str, port: int, backend_store_uri: str | None = None
) -> subprocess.Popen:
    """Start `mlflow server` as the leader of a new process group.

    The backend is the sqlite store under `mlruns_dir` unless another (e.g. PostgreSQL) is
    named; artifacts of experiments created through the server are served from
    `mlruns_dir/artifacts`, so clients on other machines can log models too.
    """
    mlruns_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", backend_store_uri or sqlite_uri(mlruns_dir),
        "--artifacts-destination", str(mlruns_dir / "artifacts"),
        "--host", host,
        "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    # The job runners serve GenAI features (judges, trace rollups) that browsing runs never
    # uses: six more processes and ~1.5 GB of memory otherwise.
    environment = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return start_process_group(command, environment)


def wait_until_ready(
    url: str, server: subprocess.Popen, *, probe: str = "/health", name: str = "mlflow server"
) -> None:
    """Return once `url + probe` answers; raise if the server exits or stays silent."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"{name} exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}{probe}", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{name} did not answer at {url} within {START_TIMEOUT_SECONDS} s")


def stop_server(server: subprocess.Popen) -> None:
    """Stop the whole process group (gunicorn/uvicorn workers included)."""
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def choose_port(preferred: int, host: str) -> int:
    """`preferred`, or a free port with one line saying so."""
    port = free_port(preferred, host)
    if port != preferred:
        print(f"port {preferred} is taken; using {port}")
    return port


def serve_until_stopped(
    server: subprocess.Popen, *, url: str, probe: str, name: str, banner: str
) -> int:
    """Wait for `server`, print `banner`, keep it up until Ctrl-C or SIGTERM, then stop it."""
    # SIGTERM (e.g. from a supervisor) stops the group the same way Ctrl-C does. Ctrl-C is
    # set explicitly: a process started in the background inherits SIGINT ignored.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        wait_until_ready(url, server, probe=probe, name=name)
        print(f"{banner}  (Ctrl-C stops it)", flush=True)
        server.wait()
    except KeyboardInterrupt:
        pass
    except (RuntimeError, TimeoutError) as error:
        print(f"imgsweep: error: {error}", file=sys.stderr)
        return 2
    finally:
        stop_server(server)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlruns", type=Path, default=Path("mlruns"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument(
        "--backend-store-uri",
        help="e.g. postgresql://user@host/db (password from PGPASSWORD or ~/.pgpass); "
        "default: the sqlite store under --mlruns",
    )
    args = parser.parse_args(argv)
    port = choose_port(args.port, args.host)
    url = f"http://{args.host}:{port}"
    server = start_server(
        mlruns_dir=args.mlruns.resolve(),
        host=args.host,
        port=port,
        backend_store_uri=args.backend_store_uri,
    )
    # MLflow 3 opens on its GenAI pages; this view lists the experiments' runs.
    return serve_until_stopped(
        server,
        url=url,
        probe="/health",
        name="mlflow server",
        banner=f"MLflow UI: {url}/#/experiments?{RUNS_VIEW}",
    )


if __name__ == "__main__":
    sys.exit(main())
