"""`make run` on embedded defaults: everything comes up, and SIGTERM leaves nothing behind."""

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from config.redis_server import free_port
from tests.helpers import ROOT

pytestmark = pytest.mark.e2e


def _processes_with(marker: str) -> list[int]:
    """Pids of processes whose environment contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _healthz(port: int, path: str = "/healthz/detail"):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     headers={"Authorization": "Bearer e2e-metrics-token"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except (urllib.error.URLError, OSError):
        return None, None


def test_make_run_starts_everything_and_stops_cleanly(tmp_path):
    port, sink_port = free_port(), free_port()
    environment = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "MAKEFLAGS")
    }
    environment.update({
        "DATA_DIR": str(tmp_path / "data"),  # also the marker that finds our processes
        "PORT": str(port),
        "LOCAL_REDIS_PORT": str(free_port()),
        "SINK_PORT": str(sink_port),
        "DEFAULT_RELAY_URL": f"smtp://127.0.0.1:{sink_port}",
        "ADMIN_PASSWORD": "a-test-password-123",
        "METRICS_TOKEN": "e2e-metrics-token",
    })
    log = open(tmp_path / "run.log", "wb")
    make = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=environment,
                            stdout=log, stderr=subprocess.STDOUT)
    marker = f"DATA_DIR={tmp_path / 'data'}"
    try:
        deadline = time.monotonic() + 180
        status, body = None, None
        while time.monotonic() < deadline and make.poll() is None:
            status, body = _healthz(port)
            if status == 200:
                break
            time.sleep(1)
        output = (tmp_path / "run.log").read_text()
        assert status == 200, f"healthz {status} {body}\n{output[-3000:]}"
        assert all(check["ok"] for check in body["checks"].values())
        assert len(body["checks"]["workers"]["detail"]) == 3  # one worker per queue group
        assert _healthz(port, "/healthz") == (200, {"ok": True})
        assert "a-test-password-123" not in output  # a given password is not echoed
        for prefix in ("web", "redis", "sink", "beat", "worker-bulk"):
            assert f"\n{prefix} " in output or output.startswith(prefix)
        assert len(_processes_with(marker)) >= 7
    finally:
        make.send_signal(signal.SIGTERM)
        make.wait(60)
        log.close()
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    leftovers = _processes_with(marker)
    assert leftovers == [], f"left running: {leftovers}"
    assert _healthz(port) == (None, None)
