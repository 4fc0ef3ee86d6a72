"""`make serve`: the champion behind MLflow's own scoring server, answering in class names."""

import base64
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from PIL import Image

from champion.image_requests import MAX_REQUEST_BYTES
from champion.predict import main as predict_main
from servers.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ("p_digit_3", "p_digit_8")


def _b64(content: bytes) -> str:
    return base64.b64encode(content).decode()


def _post(url: str, payload: dict, timeout: float = 60) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _jpeg(pixels: np.ndarray, size: int = 64) -> bytes:
    stream = io.BytesIO()
    Image.fromarray(pixels).resize((size, size)).save(stream, format="JPEG", quality=90)
    return stream.getvalue()


@pytest.fixture(scope="module")
def scoring_server(finished_study, tmp_path_factory):
    """make serve's command over the finished study's champion, the venv not on PATH."""
    port = free_port(0, "127.0.0.1")
    logs = tmp_path_factory.mktemp("serve")
    environment = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    environment["PATH"] = "/usr/bin:/bin"  # a shell that never activated the venv
    command = [sys.executable, "-m", "servers.scoring", "--port", str(port)]
    with open(logs / "out.txt", "w") as out, open(logs / "err.txt", "w") as err:
        launcher = subprocess.Popen(
            [*command, *finished_study.overrides], cwd=ROOT, env=environment, stdout=out,
            stderr=err, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if launcher.poll() is not None:
            pytest.fail(f"make serve exited: {(logs / 'err.txt').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2):
                break
        except OSError:
            time.sleep(0.5)
    else:
        pytest.fail("make serve did not answer within 180 s")
    yield url
    launcher.send_signal(signal.SIGTERM)
    launcher.wait(timeout=30)


@pytest.mark.slow
def test_served_answers_equal_make_predicts_rows(scoring_server, finished_study, tmp_path):
    import mlflow

    folder = tmp_path / "incoming"
    folder.mkdir()
    test = finished_study.data_root / "test"
    sources = sorted((test / "digit_8").iterdir())[:3] + sorted((test / "digit_3").iterdir())[:3]
    items, names = [], []
    for source in sources:
        (folder / source.name).write_bytes(source.read_bytes())
        items.append({"image": _b64(source.read_bytes())})
        names.append(source.name)
    digit = np.asarray(Image.open(sources[0]))
    (folder / "photo.jpg").write_bytes(_jpeg(digit))
    items.append({"image": _b64((folder / "photo.jpg").read_bytes())})
    # Pixel arrays of other sizes and modes than training's 16x16 grayscale: make predict
    # reads the same pixels from a PNG.
    small = np.asarray(Image.fromarray(digit).resize((11, 13), Image.NEAREST))
    colour = np.repeat(np.asarray(Image.fromarray(digit).resize((40, 40)))[..., None], 3, axis=2)
    for name, pixels in (("small.png", small), ("colour.png", colour)):
        Image.fromarray(pixels).save(folder / name)
        items.append({"pixels": pixels.tolist()})
    names += ["photo.jpg", "small.png", "colour.png"]

    output = tmp_path / "predictions.csv"
    assert predict_main([str(folder), "--output", str(output), *finished_study.overrides]) == 0
    with open(output, newline="") as stream:
        rows = {Path(row["file"]).name: row for row in csv.DictReader(stream)}
    status, answer = _post(scoring_server, {"inputs": items})
    assert status == 200, answer
    uri = f"sqlite:///{finished_study.mlruns / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    in_python = mlflow.pyfunc.load_model("models:/test_classifier@champion").predict(items)

    assert len(answer["predictions"]) == len(names) == len(in_python)
    for name, served, local in zip(names, answer["predictions"], in_python, strict=True):
        row = rows[name]
        assert set(served) == {"predicted_class", *CLASSES}
        assert served["predicted_class"] == row["predicted_class"] == local["predicted_class"]
        for key in CLASSES:
            assert served[key] == pytest.approx(float(row[key]), abs=1e-6), name
            assert local[key] == pytest.approx(served[key], abs=1e-6), name


def _bad_requests(good_image: bytes) -> dict[str, tuple[dict, str]]:
    """Each bad request kind: (payload, the start of its one-line answer)."""
    jpeg = _jpeg(np.asarray(Image.open(io.BytesIO(good_image))))
    return {
        "non-image": (
            {"inputs": [{"image": _b64(b"plain text, not an image")}]},
            "inputs[0]: 'image' is not an image",
        ),
        "truncated JPEG": (
            {"inputs": [{"image": _b64(good_image)}, {"image": _b64(jpeg[: len(jpeg) // 2])}]},
            "inputs[1]: 'image' is truncated or cannot be decoded",
        ),
        "empty list": ({"inputs": []}, "'inputs' is an empty list"),
        "wrong shape": (
            {"inputs": [{"pixels": np.zeros((4, 4, 2)).tolist()}]},
            "inputs[0]: 'pixels' has shape (4, 4, 2)",
        ),
        "ragged rows": (
            {"inputs": [{"pixels": [[1, 2, 3], [4, 5]]}]},
            "inputs[0]: 'pixels' must be numbers in rows of equal length",
        ),
        "oversized": (
            {"inputs": [{"image": _b64(bytes(MAX_REQUEST_BYTES + 1))}]},
            "the request holds more than 32 MiB of images",
        ),
    }


@pytest.mark.slow
def test_each_bad_request_is_a_400_line_and_the_server_keeps_answering(
    scoring_server, finished_study
):
    good_image = next((finished_study.data_root / "test" / "digit_8").iterdir()).read_bytes()
    good = {"inputs": [{"image": _b64(good_image)}]}
    status, expected = _post(scoring_server, good)
    assert status == 200
    bad = _bad_requests(good_image)
    for kind, (payload, line) in bad.items():
        status, answer = _post(scoring_server, payload)
        assert status == 400, (kind, answer)
        assert answer["message"].startswith(line), (kind, answer["message"])
        assert "\n" not in answer["message"], kind
        assert _post(scoring_server, good) == (200, expected), kind

    # A few hundred mixed requests, bounded in time: every bad one a 400, every good one
    # answered the same; the oversized kind (44 MB of JSON) only now and then.
    light = [payload for kind, (payload, _) in bad.items() if kind != "oversized"]
    started, answered = time.monotonic(), 0
    for index in range(300):
        assert time.monotonic() - started < 300, f"{index} requests in 300 s"
        if index % 3 == 0:
            assert _post(scoring_server, good) == (200, expected), index
            answered += 1
        else:
            payload = bad["oversized"][0] if index % 100 == 1 else light[index % len(light)]
            assert _post(scoring_server, payload)[0] == 400, index
    assert answered == 100
    with urllib.request.urlopen(f"{scoring_server}/ping", timeout=5) as response:
        assert response.status == 200


@pytest.mark.slow
def test_make_serve_without_a_champion_is_one_line(tmp_path):
    mlruns = tmp_path / "mlruns"
    mlruns.mkdir()
    uri = f"sqlite:///{mlruns / 'mlflow.db'}"
    # A study ran with promotion off: the registered model exists, no version holds @champion.
    MlflowClient(uri, registry_uri=uri).create_registered_model("fashion_pair_classifier")
    result = subprocess.run(
        ["make", "-o", ".venv/.installed", "--no-print-directory", "serve",
         f"ARGS=tracking.mlruns_dir={mlruns}"],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 2
    # Our lines only: a library's start-up notes on stderr are not the error.
    ours = [line for line in result.stderr.splitlines() if line.startswith("imgsweep:")]
    assert ours == [
        "imgsweep: error: registered model 'fashion_pair_classifier' has no @champion yet; "
        "promote a version with `make promote`, or name NAME@ALIAS or NAME/VERSION"
    ]
