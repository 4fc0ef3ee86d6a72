"""`make serve`: a registered model behind MLflow's scoring server, in class names.

python -m servers.scoring [--port 5002] [--model NAME[@ALIAS|/VERSION]] [hydra overrides]

Runs `mlflow models serve --env-manager local` on 127.0.0.1 in its own process group (one
Ctrl-C or SIGTERM stops it whole), from this checkout's virtualenv whether or not it is
activated: MLflow starts `uvicorn` by name, so the venv's bin folder goes first on PATH.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

from pipelines.console import import_tensorflow_quietly, run_command
from pipelines.errors import ImgsweepError
from servers.processes import choose_port, serve_until_stopped, start_process_group

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def serving_environment(tracking_uri: str) -> dict[str, str]:
    """This process's environment, with the venv's tools and this checkout's code first."""
    bin_folder = str(Path(sys.executable).parent)
    python_path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    return {
        **os.environ,
        "PATH": os.pathsep.join([bin_folder, os.environ.get("PATH", "")]),
        "PYTHONPATH": python_path,
        "MLFLOW_TRACKING_URI": tracking_uri,
    }


def start_scoring_server(
    *, model_uri: str, tracking_uri: str, host: str, port: int
) -> subprocess.Popen:
    """Start `mlflow models serve` for `model_uri` as the leader of a new process group."""
    command = [
        sys.executable, "-m", "mlflow", "models", "serve",
        "--model-uri", model_uri,
        "--env-manager", "local",
        "--host", host,
        "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    return start_process_group(command, serving_environment(tracking_uri))


def served_version(*, reference: str | None, overrides: list[str]):
    """(model version, tracking URI) of what to serve; one line if there is nothing to serve."""
    from champion.registration import KERAS_MODEL_TAG
    from champion.versions import find_version, open_registry
    from pipelines.config import compose_config, resolve_path
    from pipelines.urls import sqlite_uri

    cfg = compose_config(overrides)
    mlruns_dir = resolve_path(cfg.tracking.mlruns_dir)
    tracking_uri = cfg.tracking.tracking_uri or sqlite_uri(mlruns_dir)
    client = open_registry(mlruns_dir=mlruns_dir, tracking_uri=cfg.tracking.tracking_uri)
    version = find_version(
        client, reference or cfg.registry.model_name, cfg.registry.champion_alias
    )
    if KERAS_MODEL_TAG not in version.tags:
        raise ImgsweepError(
            f"{version.name} v{version.version} was registered as a bare Keras model, which "
            "answers in raw tensors; promote it again (`make promote`) to serve it in class names"
        )
    return version, tracking_uri


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5002)
    parser.add_argument(
        "--model", help="NAME, NAME@ALIAS or NAME/VERSION (default: registry.model_name@champion)"
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the config")
    args = parser.parse_intermixed_args(argv)
    # Checking the registry loads TensorFlow (via MLflow's Keras flavor): without its banner.
    import_tensorflow_quietly()
    from champion.image_requests import curl_line

    found = {}

    def find() -> None:
        found["version"], found["tracking_uri"] = served_version(
            reference=args.model, overrides=args.overrides
        )

    status = run_command(find)
    if status:
        return status
    version = found["version"]
    port = choose_port(args.port, args.host)
    url = f"http://{args.host}:{port}"
    server = start_scoring_server(
        model_uri=f"models:/{version.name}/{version.version}",
        tracking_uri=found["tracking_uri"],
        host=args.host,
        port=port,
    )
    return serve_until_stopped(
        server,
        url=url,
        probe="/ping",
        name="mlflow models serve",
        banner=f"{version.name} v{version.version} on {url}/invocations; try:\n  {curl_line(url)}",
    )


if __name__ == "__main__":
    sys.exit(main())
