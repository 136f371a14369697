"""Headless Chromium: an operator logs in and looks at the report and breaker pages.

Screenshots land in $ARTIFACTS_DIR/operator-pages (default <project>/artifacts).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from deliverability.breaker.engine import Breaker
from tests.helpers import ROOT
from tests.sending.test_report import DAY, traffic  # noqa: F401 - fixture

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SWISSCOM = "5.7.1 Swisscom AG IP: 94.130.34.42, You are not allowed to send us mail"


@pytest.fixture
def artifacts() -> Path:
    folder = Path(os.environ.get("ARTIFACTS_DIR") or ROOT / "artifacts") / "operator-pages"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser_page(monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(15_000)
        yield page
        browser.close()


def test_operator_reads_the_report_and_pauses_a_provider(live_server, browser_page, artifacts,
                                                         traffic, redis_client):  # noqa: F811
    User.objects.create_superuser("ops", "ops@example.org", "a-long-password-1")
    Breaker(redis=redis_client).record(provider="swisscom", pool="bulk", code=554, text=SWISSCOM)
    page = browser_page
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", "a-long-password-1")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/report/?day={DAY}")
    assert page.locator("#history-chart rect").count() >= 28
    assert "swisscom" in page.inner_text("#report-rows")
    assert "warn" in page.inner_text("#complaint-rate")
    page.screenshot(path=str(artifacts / "report.png"), full_page=True)
    page.goto(f"{live_server.url}/admin/breakers/")
    row = page.locator("tr.breaker-paused")
    assert "Swisscom" in row.inner_text() and "not allowed to send us mail" in row.inner_text()
    page.screenshot(path=str(artifacts / "breakers.png"), full_page=True)
    page.fill("input[name=provider]:not([type=hidden])", "google")
    page.click("form:has(input[name=note]) button[value=pause]")
    assert page.locator("tr.breaker-paused").count() == 2
    page.screenshot(path=str(artifacts / "breakers-after-pause.png"), full_page=True)
