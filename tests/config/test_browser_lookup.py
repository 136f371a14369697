"""The browser lookup of `make test` (tests/chromium.py), on machines with and without Chromium.

Each case runs the lookup, or the Makefile's step, in a child process whose PATH,
``$CHROMIUM`` and Playwright browser folder point at nothing or at stand-ins.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.e2e


def _stand_in(path: Path, script: str = "exit 0") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def bare_env(tmp_path):
    """No Chromium anywhere: an empty PATH folder and an empty Playwright browser folder."""
    empty = tmp_path / "bin"
    empty.mkdir()
    (tmp_path / "pw").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "CHROMIUM"}
    env.update(PATH=str(empty), PLAYWRIGHT_BROWSERS_PATH=str(tmp_path / "pw"))
    return env


def _lookup(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.chromium"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_nothing_installed_is_reported_as_none_found(bare_env):
    result = _lookup(bare_env)
    assert result.returncode == 1, result.stderr
    assert result.stdout == "" and "no Chromium found" in result.stderr


def test_chromium_on_the_path_is_found_under_each_name(bare_env, tmp_path):
    for name in ("google-chrome", "chromium-browser", "chromium"):  # the last one wins
        found = _stand_in(tmp_path / "bin" / name)
        assert _lookup(bare_env).stdout.strip() == str(found)


def test_chromium_variable_comes_first_and_a_wrong_one_is_an_error(bare_env, tmp_path):
    _stand_in(tmp_path / "bin" / "chromium")
    chosen = _stand_in(tmp_path / "elsewhere" / "my-chrome")
    assert _lookup({**bare_env, "CHROMIUM": str(chosen)}).stdout.strip() == str(chosen)
    assert _lookup({**bare_env, "CHROMIUM": "chromium"}).stdout.strip() == str(
        tmp_path / "bin" / "chromium")  # a name is looked up on the PATH

    wrong = _lookup({**bare_env, "CHROMIUM": str(tmp_path / "nothing-here")})
    assert wrong.returncode == 2 and "is not an executable" in wrong.stderr
    assert _lookup({**bare_env, "CHROMIUM": ""}).stdout.strip() == str(
        tmp_path / "bin" / "chromium")  # empty is unset


def test_playwrights_own_browser_is_found_last(bare_env):
    probe = subprocess.run(
        [sys.executable, "-c", "from playwright.sync_api import sync_playwright\n"
         "with sync_playwright() as p: print(p.chromium.executable_path)"],
        env=bare_env, capture_output=True, text=True, check=True, timeout=60)
    expected = Path(probe.stdout.strip())
    assert str(expected).startswith(bare_env["PLAYWRIGHT_BROWSERS_PATH"])
    assert _lookup(bare_env).returncode == 1
    _stand_in(expected)
    assert _lookup(bare_env).stdout.strip() == str(expected)


def _make_test(env: dict, tmp_path: Path) -> tuple[subprocess.CompletedProcess, str]:
    """`make test` without lint, with stand-ins for the installers and for pytest."""
    log = tmp_path / "calls.log"
    python = _stand_in(tmp_path / "tools" / "python", (
        f'if [ "$1 $2" = "-m tests.chromium" ]; then exec {sys.executable} "$@"; fi\n'
        f'echo "python $*" >> {log}'))
    (tmp_path / "bin" / "id").symlink_to(shutil.which("id"))
    _stand_in(tmp_path / "bin" / "apt-get", f'echo "apt-get $*" >> {log}')
    result = subprocess.run(
        [shutil.which("make"), "--no-print-directory", "-o", "lint", "test", f"PY={python}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    return result, log.read_text() if log.exists() else ""


def test_make_test_installs_a_browser_when_none_is_found(bare_env, tmp_path):
    result, calls = _make_test(bare_env, tmp_path)
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stdout.splitlines() if "no Chromium found" in line]
    assert len(said) == 1  # one line says what is installed
    if os.getuid() == 0:
        assert "installing Debian's (apt-get install chromium)" in said[0]
        assert "apt-get install -y -qq --no-install-recommends chromium" in calls
    else:
        assert "playwright install chromium" in said[0]
        assert "python -m playwright install chromium" in calls
    assert calls.rstrip().endswith("python -m pytest")  # then the tests run


def test_make_test_installs_nothing_when_a_browser_is_there(bare_env, tmp_path):
    _stand_in(tmp_path / "bin" / "chromium")
    result, calls = _make_test(bare_env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no Chromium found" not in result.stdout
    assert calls.strip() == "python -m pytest"


def test_make_test_stops_on_a_wrong_chromium_variable(bare_env, tmp_path):
    result, calls = _make_test({**bare_env, "CHROMIUM": str(tmp_path / "nothing")}, tmp_path)
    assert result.returncode != 0
    assert "is not an executable" in result.stderr
    assert calls == ""
