"""Headless Chromium: the report, daily report, breaker page and home at 1440 and 390 px.

At a 390 px phone no page scrolls sideways (wide tables scroll inside their own
box). Screenshots land in $ARTIFACTS_DIR/report-pages (default <project>/artifacts).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from deliverability.breaker.engine import Breaker
from deliverability.providers import bounded_key
from newsletter.models import Campaign, MailingList, Subscriber, Subscription
from sending.models import Delivery, Mailing, RelayPool
from tests.e2e.browser import artifacts_folder, browser_page
from tests.sending.test_report import DAY, traffic  # noqa: F401 - fixture

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE, DESKTOP = 390, 1440
OUTLOOK = "Microsoft Outlook.com / Hotmail"


@pytest.fixture
def artifacts() -> Path:
    return artifacts_folder("report-pages")


@pytest.fixture
def page(monkeypatch):
    with browser_page(monkeypatch, viewport={"width": DESKTOP, "height": 900}) as page:
        yield page


@pytest.fixture
def campaign(traffic, redis_client):  # noqa: F811
    pool = RelayPool.objects.get(name="bulk")
    mailing = Mailing.objects.create(from_email="n@shop.example", subject_template="s",
                                     text_template="t", pool=pool, state="sending",
                                     recipients=40, started_at=timezone.now())
    news = MailingList.objects.create(name="Shop News with a rather long name", slug="news")
    for index in range(40):
        provider, state, attempts = (("microsoft_consumer", "deferred", 0) if index < 12 else
                                     ("google", "sent", 1) if index < 36 else
                                     (bounded_key("mx:mx1.a-long-hosting-company.example,"
                                                  "mx2.a-long-hosting-company.example"),
                                      "deferred", 1))
        Delivery.objects.create(mailing=mailing, address=f"p{index}@x.example",
                                provider=provider, state=state, attempts=attempts)
        Subscription.objects.create(
            subscriber=Subscriber.objects.create(email=f"p{index}@x.example"),
            mailing_list=news, status="confirmed", confirmed_at=timezone.now())
    Breaker(redis=redis_client).pause("microsoft_consumer", "bulk", seconds=14390, actor="ops",
                                      note="complaints from Outlook.com users")
    return Campaign.objects.create(name="Winter sale", subject="s", body="b", state="sending",
                                   mailing=mailing, started_at=mailing.started_at)


def _no_sideways_scroll(page, name: str, artifacts: Path) -> None:
    page.set_viewport_size({"width": DESKTOP, "height": 900})
    page.screenshot(path=str(artifacts / f"{name}-1440.png"), full_page=True)
    page.set_viewport_size({"width": PHONE, "height": 844})
    page.wait_for_timeout(100)
    width = page.evaluate("document.documentElement.scrollWidth")
    page.screenshot(path=str(artifacts / f"{name}-390.png"), full_page=True)
    assert width <= PHONE + 1, f"{name}: the page is {width} px wide at a {PHONE} px phone"


def test_report_pages_fit_a_phone(live_server, page, artifacts, campaign):
    User.objects.create_superuser("ops", "ops@example.org", "a-long-password-1")
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", "a-long-password-1")
    page.click("input[type=submit]")

    page.goto(f"{live_server.url}/admin/newsletter/campaign/{campaign.pk}/report/")
    line = page.locator("li.paused-provider")
    assert OUTLOOK in line.inner_text() and "in 4 h" in line.inner_text()
    assert line.locator("a.breaker-link").count() == 1
    assert page.inner_text("#n-waiting strong") == "12"
    assert page.inner_text("#n-deferred strong") == "4"
    _no_sideways_scroll(page, "campaign-report", artifacts)

    page.goto(f"{live_server.url}/admin/report/?day={DAY}")
    assert page.locator("#history-axis span").count() == 5
    assert "Swisscom (Bluewin)" in page.inner_text("#report-rows")
    _no_sideways_scroll(page, "daily-report", artifacts)

    page.goto(f"{live_server.url}/admin/report/")
    assert "Today, " in page.inner_text("#report-day")
    _no_sideways_scroll(page, "daily-report-today", artifacts)

    page.goto(f"{live_server.url}/admin/breakers/")
    assert OUTLOOK in page.inner_text("#breakers") and "in 4 h" in page.inner_text("#breakers")
    _no_sideways_scroll(page, "breakers", artifacts)

    page.goto(f"{live_server.url}/admin/")
    assert "Winter sale" in page.inner_text("#dash-campaigns")
    assert "40" in page.inner_text("#dash-lists")
    _no_sideways_scroll(page, "home", artifacts)
