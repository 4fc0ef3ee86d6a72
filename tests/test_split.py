"""`python -m pipelines.data.split`: stratified, seeded, and the user's originals untouched."""

import subprocess
import sys

import numpy as np

from pipelines.config import compose_config
from pipelines.data.split import split_folder
from pipelines.plan import load_data
from tests.conftest import small_overrides, write_digit_folders


def _tree(folder):
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _assignment(target):
    return {path.name: path.parts[-3] for path in target.rglob("*.png")}


def test_split_is_stratified_seeded_and_copies(tmp_path):
    source = write_digit_folders(tmp_path / "flowers", [1, 2, 3], per_class={"all": 40}) / "all"
    before = _tree(source)
    counts = split_folder(source, tmp_path / "a", val=0.15, test=0.15, seed=0)
    assert counts["val"] == counts["test"] == {"digit_1": 6, "digit_2": 6, "digit_3": 6}
    assert counts["train"] == {"digit_1": 28, "digit_2": 28, "digit_3": 28}
    assert _tree(source) == before  # nothing moved or changed
    split_folder(source, tmp_path / "b", val=0.15, test=0.15, seed=0)
    split_folder(source, tmp_path / "c", val=0.15, test=0.15, seed=1)
    assert _assignment(tmp_path / "a") == _assignment(tmp_path / "b")
    assert _assignment(tmp_path / "a") != _assignment(tmp_path / "c")
    data = load_data(compose_config(small_overrides(tmp_path / "a", tmp_path / "mlruns")))
    assert np.bincount(data.splits["test"].labels).tolist() == [6, 6, 6]


def test_split_hard_links_on_request(tmp_path):
    source = write_digit_folders(tmp_path / "src", [1, 2], per_class={"all": 10}) / "all"
    split_folder(source, tmp_path / "dst", val=0.2, test=0.0, seed=0, link=True)
    linked = next((tmp_path / "dst" / "train" / "digit_1").iterdir())
    assert linked.stat().st_ino == (source / "digit_1" / linked.name).stat().st_ino
    assert not (tmp_path / "dst" / "test").exists()


def test_split_refuses_a_non_empty_destination(tmp_path):
    source = write_digit_folders(tmp_path / "src", [1, 2], per_class={"all": 10}) / "all"
    target = tmp_path / "dst"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    completed = subprocess.run(
        [sys.executable, "-m", "pipelines.data.split", str(source), str(target), "--val", "0.2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip() == (
        f"imgsweep: error: DST '{target}' is not empty; choose a new folder (nothing was written)"
    )
    assert [path.name for path in target.iterdir()] == ["keep.txt"]
