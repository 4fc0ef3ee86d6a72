"""Local servers in their own process group: a free port, start, wait until ready, stop whole.

`make ui`, `make tracking-server` and `make dashboard` start their servers with these, so one
Ctrl-C or SIGTERM stops the server and every worker process it started."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

# `mlflow server` takes ~12 s to answer on 2 cores; give slower machines room.
START_TIMEOUT_SECONDS = 90


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
