"""`make dashboard`: optuna-dashboard over the study storage, stopped whole by Ctrl-C.

    python -m servers.dashboard [--host H] [--port P] [hydra overrides, e.g. search.storage=...]

The storage is the one `make sweep` writes: `search.storage`, else `optuna.db` under
`tracking.mlruns_dir`. The server runs in its own process group (servers/processes.py).
"""

import argparse
import shutil
import sys
from pathlib import Path

from pipelines.config import compose_config, resolve_path
from pipelines.console import run_command
from pipelines.errors import ImgsweepError
from pipelines.urls import mask_password
from servers.processes import choose_port, serve_until_stopped, start_process_group

# optuna-dashboard's cheapest JSON endpoint: it answers once the storage is open.
READY_PROBE = "/api/meta"


def study_storage(*, storage: str | None, mlruns_dir: Path) -> str:
    """The storage URL of the studies; one clear line when its sqlite file is missing."""
    # Imported here: `--help` and a bad override answer without loading Optuna.
    from sweep.storage import storage_url

    url = storage_url(storage, mlruns_dir)
    if url.startswith("sqlite:///"):
        database = Path(url.removeprefix("sqlite:///"))
        if not database.exists():
            raise ImgsweepError(
                f"no study storage at '{database}'; run `make sweep` first, or name one with "
                "STORAGE=... (search.storage)"
            )
    return url


def dashboard_command(*, storage: str, host: str, port: int) -> list[str]:
    """optuna-dashboard's own command line (the console script beside this Python)."""
    script = Path(sys.executable).with_name("optuna-dashboard")
    if not script.exists():
        script = shutil.which("optuna-dashboard")
    if script is None:
        raise ImgsweepError("optuna-dashboard is not installed; run `make install`")
    # --quiet keeps gunicorn's per-worker INFO lines off the terminal; errors still show.
    return [str(script), storage, "--host", host, "--port", str(port), "--quiet"]


def open_dashboard(*, storage: str | None, mlruns_dir: Path, host: str, port: int) -> int:
    """Serve the studies in `storage` until Ctrl-C or SIGTERM; 0 when stopped that way."""
    storage = study_storage(storage=storage, mlruns_dir=mlruns_dir)
    port = choose_port(port, host)
    command = dashboard_command(storage=storage, host=host, port=port)
    url = f"http://{host}:{port}"
    return serve_until_stopped(
        start_process_group(command),
        url=url,
        probe=READY_PROBE,
        name="optuna-dashboard",
        banner=f"Optuna dashboard: {url}/dashboard over {mask_password(storage)}",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("overrides", nargs="*", help="hydra overrides, e.g. search.storage=...")
    args = parser.parse_args(argv)

    def serve() -> int:
        cfg = compose_config(args.overrides)
        return open_dashboard(
            storage=cfg.search.storage,
            mlruns_dir=resolve_path(cfg.tracking.mlruns_dir),
            host=args.host,
            port=args.port,
        )

    return run_command(serve)


if __name__ == "__main__":
    sys.exit(main())
