"""Headless Chromium: an operator logs in and looks at the report and breaker pages.

Screenshots land in $ARTIFACTS_DIR/operator-pages (default <project>/artifacts).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User

from deliverability.breaker.engine import Breaker
from tests.e2e.browser import artifacts_folder, browser_page
from tests.sending.test_report import DAY, traffic  # noqa: F401 - fixture

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SWISSCOM = "5.7.1 Swisscom AG IP: 94.130.34.42, You are not allowed to send us mail"


@pytest.fixture
def artifacts() -> Path:
    return artifacts_folder("operator-pages")


@pytest.fixture
def page(monkeypatch):
    with browser_page(monkeypatch, viewport={"width": 1280, "height": 900}) as page:
        yield page


def test_operator_reads_the_report_and_pauses_a_provider(live_server, page, artifacts,
                                                         traffic, redis_client):  # noqa: F811
    User.objects.create_superuser("ops", "ops@example.org", "a-long-password-1")
    Breaker(redis=redis_client).record(provider="swisscom", pool="bulk", code=554, text=SWISSCOM)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", "a-long-password-1")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/report/?day={DAY}")
    assert page.locator("#history-chart .pw-track").count() == 14
    assert "Swisscom (Bluewin)" in page.inner_text("#report-rows")
    assert "warn" in page.inner_text("#complaint-rate")
    page.screenshot(path=str(artifacts / "report.png"), full_page=True)
    page.goto(f"{live_server.url}/admin/breakers/")
    # Swisscom's block needs its delisting form: stopped for the operator, with the link.
    row = page.locator("tr.breaker-manual")
    assert "Swisscom" in row.inner_text() and "not allowed to send us mail" in row.inner_text()
    assert row.locator("a.breaker-action-link").get_attribute("href") == (
        "https://postmaster.bluewin.ch/")
    page.screenshot(path=str(artifacts / "breakers.png"), full_page=True)
    page.fill("input[name=provider]:not([type=hidden])", "google")
    page.click("form:has(input[name=note]) button[value=pause]")
    assert page.locator("tr.breaker-paused").count() == 1
    assert page.locator("tr.breaker-manual").count() == 1
    page.screenshot(path=str(artifacts / "breakers-after-pause.png"), full_page=True)
