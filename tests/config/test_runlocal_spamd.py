"""`make run` starts a spamd for the checklist when one is installed and SPAMD_URL is not
set, and hands its address to the web process; without spamd it says so and goes on."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess

import pytest

from config.management.commands import runlocal
from config.spamd_server import spamd_binary


def _by_name(services):
    return {s.name: s for s in services}


def test_spamd_starts_before_the_web_process_which_gets_its_address(settings, tmp_path,
                                                                     monkeypatch):
    monkeypatch.delenv("SPAMD_URL", raising=False)
    settings.DATA_DIR = tmp_path
    assert spamd_binary(), "spamd is not installed: apt-get install spamassassin spamd"
    services = runlocal.services()
    names = [s.name for s in services]
    assert names.index("spamd") < names.index("web")
    spamd, web = _by_name(services)["spamd"], _by_name(services)["web"]
    url = web.env["SPAMD_URL"]
    port = int(url.rpartition(":")[2])
    assert url == f"spamd://127.0.0.1:{port}"
    command = " ".join(spamd.command)
    assert f"--listen=127.0.0.1:{port}" in command and "--max-children=1" in command
    assert f"--pidfile={tmp_path / 'spamd' / 'spamd.pid'}" in command
    assert f"--syslog={tmp_path / 'spamd' / 'spamd.log'}" in command
    # The command really starts a spamd that answers (as the supervisor would run it).
    process = subprocess.Popen(spamd.command, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        spamd.ready()
        import aiospamc

        answer = asyncio.run(aiospamc.ping(host="127.0.0.1", port=port))
        assert answer.message == "PONG"
        assert (tmp_path / "spamd" / "spamd.pid").read_text().strip().isdigit()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(15)


def test_a_given_spamd_url_starts_none(settings, monkeypatch):
    monkeypatch.setenv("SPAMD_URL", "spamd://10.0.0.5:783")
    services = _by_name(runlocal.services())
    assert "spamd" not in services and "SPAMD_URL" not in services["web"].env


def test_no_spamd_installed_is_one_line_and_the_rest_starts(monkeypatch):
    monkeypatch.delenv("SPAMD_URL", raising=False)
    monkeypatch.setattr(runlocal, "spamd_binary", lambda: None)
    out = io.StringIO()
    assert runlocal.spamd_service(out) is None
    assert out.getvalue().count("\n") == 1 and "apt-get install spamassassin spamd" in \
        out.getvalue()


@pytest.mark.parametrize("url", ["http://x", "spamd://", "unix://"])
def test_a_malformed_spamd_url_is_refused(url):
    from newsletter.spam_score import spamd_address

    with pytest.raises(ValueError):
        spamd_address(url)
