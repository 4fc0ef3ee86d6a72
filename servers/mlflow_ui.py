"""`make ui`: the MLflow UI over mlruns/, in its own process group so Ctrl-C stops all of it.

`make tracking-server` runs the same server over another backend store (e.g. PostgreSQL)."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

from pipelines.urls import sqlite_uri
from servers.processes import choose_port, serve_until_stopped, start_process_group

RUNS_VIEW = "workflowType=machine_learning"


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
