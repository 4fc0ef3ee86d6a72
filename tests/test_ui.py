"""`make ui` and `make dashboard`: they answer, a real browser shows the study, and Ctrl-C
leaves nothing running."""

import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient
from PIL import Image

from pipelines.urls import sqlite_uri
from servers.mlflow_ui import RUNS_VIEW, start_server
from servers.processes import free_port, stop_server, wait_until_ready

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _descendants(pid: int) -> dict[int, str]:
    """Every process below `pid`, with its command line."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, pending = {}, [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found[child] = _command(child)
                pending.append(child)
    return found


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _read_line_with(process: subprocess.Popen, text: str, timeout: float) -> str:
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline and process.poll() is None:
        if selector.select(timeout=1):
            line = process.stdout.readline()
            seen.append(line)
            if text in line:
                return line
    raise AssertionError(f"no line with {text!r} within {timeout} s; output: {''.join(seen)}")


def _start_make(target: str, log: Path, **variables: object) -> subprocess.Popen:
    """`make <target>` as a terminal runs it: its own process group, stdout read by the test."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    # -o: the environment is installed already (this test runs in it); never reinstall it.
    command = ["make", "--no-print-directory", "-o", ".venv/.installed", target]
    command += [f"PY={sys.executable}"] + [f"{name}={value}" for name, value in variables.items()]
    with open(log, "w") as server_log:
        return subprocess.Popen(
            command,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=server_log,
            text=True,
            start_new_session=True,  # like a terminal: Ctrl-C goes to make's process group
        )


def _press_ctrl_c(make: subprocess.Popen, started: dict[int, str]) -> None:
    """Ctrl-C to make's process group; every process it started must be gone soon after."""
    os.killpg(make.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
    make.wait(timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_running(pid) for pid in started):
        time.sleep(0.5)
    left = {pid: command for pid, command in started.items() if _running(pid)}
    assert not left, f"still running after Ctrl-C: {left}"


@pytest.mark.slow
def test_make_ui_answers_and_ctrl_c_leaves_no_process(tmp_path):
    port = free_port(0, "127.0.0.1")
    make = _start_make(
        "ui", tmp_path / "server.log", PORT=port, ARGS=f"--mlruns {tmp_path / 'mlruns'}"
    )
    started: dict[int, str] = {}
    try:
        line = _read_line_with(make, "MLflow UI: ", timeout=120)
        url = line.split()[2]
        assert url.startswith(f"http://127.0.0.1:{port}/") and RUNS_VIEW in url
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            assert response.read() == b"OK"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"<title>MLflow</title>" in response.read()
        started = _descendants(make.pid)
        assert any("mlflow server" in command for command in started.values()), started
    finally:
        _press_ctrl_c(make, started)


@pytest.mark.slow
def test_a_real_browser_shows_the_study_its_metrics_and_the_confusion_matrix(
    finished_study, chromium, tmp_path
):
    from playwright.sync_api import sync_playwright

    client = MlflowClient(sqlite_uri(finished_study.mlruns))
    study = finished_study.result.study
    trial_run = client.get_run(study.best_trial.user_attrs["mlflow_run_id"])
    experiment = trial_run.info.experiment_id
    (full_run,) = client.search_runs(
        [experiment],
        f"tags.mlflow.parentRunId = '{trial_run.info.run_id}' and tags.stage = 'full'",
    )
    screenshots = tmp_path / "screenshots"
    screenshots.mkdir()
    host, port = "127.0.0.1", free_port(0, "127.0.0.1")
    server = start_server(mlruns_dir=finished_study.mlruns, host=host, port=port)
    base = f"http://{host}:{port}/#/experiments/{experiment}"
    try:
        wait_until_ready(f"http://{host}:{port}", server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(60_000)

            # The experiment page lists the study run; expanded, its trial runs.
            page.goto(f"{base}/runs?{RUNS_VIEW}")
            study_row = page.get_by_role("row").filter(has_text="study-test_study")
            study_row.locator("button[data-component-id*='runnamecellrenderer']").click()
            for trial in study.get_trials():
                page.get_by_role("link", name=f"trial-{trial.number:03d}").wait_for()
            page.screenshot(path=screenshots / "experiment.png")

            # A trial's page shows its metrics; its full stage's page, the val report's too.
            page.goto(f"{base}/runs/{trial_run.info.run_id}")
            page.get_by_text("best_val_auc", exact=True).first.scroll_into_view_if_needed()
            page.screenshot(path=screenshots / "trial_run.png")
            page.goto(f"{base}/runs/{full_run.info.run_id}")
            for metric in ("val_auc", "val_macro_f1", "best_epoch"):
                page.get_by_text(metric, exact=True).first.scroll_into_view_if_needed()
            page.screenshot(path=screenshots / "full_stage_run.png")

            page.goto(f"{base}/runs/{full_run.info.run_id}/artifacts/report/confusion_matrix.png")
            page.get_by_text("report/confusion_matrix.png").first.wait_for()
            shown = page.locator("img[src^='blob:']").first
            shown.wait_for()
            page.wait_for_function(
                "image => image.complete && image.naturalWidth > 0", arg=shown.element_handle()
            )
            size = shown.evaluate("image => [image.naturalWidth, image.naturalHeight]")
            page.screenshot(path=screenshots / "confusion_matrix.png")
            browser.close()
    finally:
        stop_server(server)
    logged = client.download_artifacts(
        full_run.info.run_id, "report/confusion_matrix.png", str(tmp_path)
    )
    with Image.open(logged) as image:
        assert tuple(size) == image.size  # the page shows the logged PNG itself
    assert sorted(path.name for path in screenshots.iterdir()) == [
        "confusion_matrix.png", "experiment.png", "full_stage_run.png", "trial_run.png"
    ]  # fmt: skip


def test_make_dashboard_without_a_study_says_to_run_the_sweep_first(tmp_path):
    make = _start_make(
        "dashboard", tmp_path / "dashboard.log", ARGS=f"tracking.mlruns_dir={tmp_path / 'mlruns'}"
    )
    make.communicate(timeout=120)
    errors = (tmp_path / "dashboard.log").read_text().splitlines()
    assert make.returncode != 0
    assert errors[0] == (
        f"imgsweep: error: no study storage at '{tmp_path / 'mlruns' / 'optuna.db'}'; run "
        "`make sweep` first, or name one with STORAGE=... (search.storage)"
    )
    assert not (tmp_path / "mlruns" / "optuna.db").exists()  # no empty storage left behind


@pytest.mark.slow
def test_make_dashboard_shows_the_study_and_its_trials_and_ctrl_c_leaves_no_process(
    finished_study, chromium, tmp_path
):
    from playwright.sync_api import sync_playwright

    study = finished_study.result.study
    port = free_port(0, "127.0.0.1")
    make = _start_make(
        "dashboard",
        tmp_path / "dashboard.log",
        PORT=port,
        ARGS=f"tracking.mlruns_dir={finished_study.mlruns}",
    )
    started: dict[int, str] = {}
    try:
        url = _read_line_with(make, "Optuna dashboard: ", timeout=120).split()[2]
        assert url == f"http://127.0.0.1:{port}/dashboard"
        started = _descendants(make.pid)
        assert any("optuna-dashboard" in command for command in started.values()), started
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(60_000)

            # The start page lists the study; its trials page lists each trial with its state.
            page.goto(url)
            page.get_by_role("link").filter(has_text=study.study_name).click()
            # The history plot names the objective after the study's metric (set_metric_names).
            page.locator("text.ytitle").filter(has_text="val_auc").first.wait_for()
            assert "Objective 0" not in page.content()
            page.get_by_role("link", name="Trials (List)").click()
            for trial in study.get_trials():
                item = page.get_by_role("button").filter(
                    has_text=re.compile(rf"^Trial {trial.number}(?!\d)")
                )
                item.wait_for()
                assert trial.state.name.capitalize() in item.inner_text()
            best = page.get_by_role("button").filter(has_text="Best Trial")
            assert best.inner_text().startswith(f"Trial {study.best_trial.number}")
            page.screenshot(path=tmp_path / "dashboard_trials.png")
            browser.close()
    finally:
        _press_ctrl_c(make, started)
