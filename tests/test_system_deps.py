"""`make test` installs PostgreSQL and chromium with apt-get as root, else names them in a line.

apt-get here is a stand-in on PATH that records its calls: a test must not install packages.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Fails `install` until `update` has run, as apt-get does on a fresh image with no package lists.
FAKE_APT_GET = """#!/bin/sh
echo "$*" >> "{log}"
case "$*" in *install*) grep -q update "{log}" || exit 100 ;; esac
"""


def _system_deps(tmp_path: Path, *, user_id: int, present: tuple[str, ...]):
    """`make system-deps` with only `present` installed; the result and the apt-get calls."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt-get.log"
    (bin_dir / "apt-get").write_text(FAKE_APT_GET.format(log=log))
    (bin_dir / "apt-get").chmod(0o755)
    paths = {"postgresql": tmp_path / "initdb", "chromium": tmp_path / "chromium"}
    for name in present:
        paths[name].touch()
    result = subprocess.run(
        ["make", "--no-print-directory", "system-deps", f"USER_ID={user_id}",
         f"POSTGRES_INITDB={paths['postgresql']}", f"CHROMIUM={paths['chromium']}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
        timeout=60,
    )  # fmt: skip
    return result, log.read_text().splitlines() if log.exists() else []


def test_as_root_a_missing_browser_is_installed_updating_the_lists_only_when_needed(tmp_path):
    result, apt_calls = _system_deps(tmp_path, user_id=0, present=("postgresql",))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "installing chromium for the test suite (apt-get)\n"
    assert apt_calls == ["install -y -qq chromium", "update -qq", "install -y -qq chromium"]


def test_without_root_one_line_says_what_to_install_and_apt_get_is_not_run(tmp_path):
    result, apt_calls = _system_deps(tmp_path, user_id=1000, present=())
    assert result.returncode == 0  # the suite still runs; the tests needing them fail
    assert result.stderr.splitlines() == [
        "make test: missing system packages: postgresql chromium; install them (sudo apt-get "
        "install postgresql chromium), else the tests that need them fail"
    ]
    assert apt_calls == []


def test_with_everything_installed_it_does_nothing(tmp_path):
    result, apt_calls = _system_deps(tmp_path, user_id=0, present=("postgresql", "chromium"))
    assert (result.returncode, result.stdout, result.stderr, apt_calls) == (0, "", "", [])
