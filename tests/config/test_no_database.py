"""manage.py on a fresh install (a SQLite file, no tables): what works, and one line otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "bounces"


@pytest.fixture
def manage(tmp_path):
    database = tmp_path / "fresh.sqlite3"  # never migrated
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "DATA_DIR": str(tmp_path)}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    return run


def test_explain_headers_needs_no_database(manage, tmp_path):
    message = tmp_path / "message.eml"
    message.write_bytes(b"Received: from a.example (a.example [192.0.2.1]) by mx.example.net "
                        b"with ESMTP; Fri, 4 Dec 2026 10:00:00 +0000\r\nSubject: hi\r\n\r\nhi\r\n")
    result = manage("explain_headers", str(message))
    assert result.returncode == 0, result.stderr
    assert "IP 192.0.2.1" in result.stdout and "Verdict:" in result.stdout
    assert "Traceback" not in result.stderr


def test_classify_bounce_needs_no_database(manage):
    result = manage("classify_bounce", str(FIXTURES / "rfc3464_user_unknown.eml"))
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["results"] and line["results"][0]["kind"] == "hard"


@pytest.mark.parametrize("command", [["purge_unconfirmed"], ["ensure_admin"], ["prune_log"]])
def test_a_command_that_needs_the_database_says_to_migrate_in_one_line(manage, command):
    result = manage(*command)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{command[0]}: ") and lines[0].endswith("run make migrate first")
    assert "no such table" in lines[0]
