"""Headless Chromium at a phone's width: the searchable time zone and the test send's subscriber.

The browser runs in Tokyo time: with no zone chosen before, the field offers and
holds Asia/Tokyo; a zone typed in lower case becomes its name; once scheduled, the
saved zone stays. Screenshots land in $ARTIFACTS_DIR/schedule-send.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User

from newsletter.campaigns import layout_default
from newsletter.models import Campaign, MailingList, Subscriber, Subscription
from sending.models import TransactionalEmail
from tests.e2e.browser import artifacts_folder, browser_page

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def campaign(db):
    layout = layout_default()
    layout.postal_address = "ACME Shop, Hauptstrasse 1, 10115 Berlin"
    layout.save()
    shop = MailingList.objects.create(name="Shop News", slug="shop-news",
                                      from_email="news@shop.example")
    for email, name in (("ann@example.org", "Ann"), ("bob@example.net", "Bob")):
        Subscription.objects.create(
            subscriber=Subscriber.objects.create(email=email, name=name),
            mailing_list=shop, status="confirmed")
    campaign = Campaign.objects.create(name="Spring", subject="Hello {{ subscriber.name }}",
                                       body="Hi {{ subscriber.name }}", layout=layout)
    campaign.lists.add(shop)
    return campaign


def test_the_zone_is_the_browsers_searchable_and_kept_and_a_test_goes_as_bob(
        live_server, monkeypatch, campaign):
    from deliverability import conf

    monkeypatch.setattr(conf, "PROVIDER_MX_LOOKUP", False)
    User.objects.create_superuser("edna", "edna@shop.example", "a-long-password-1")
    folder = artifacts_folder("schedule-send")
    with browser_page(monkeypatch, viewport={"width": 390, "height": 844},
                      timezone_id="Asia/Tokyo") as page:
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "edna")
        page.fill("#id_password", "a-long-password-1")
        page.click("input[type=submit]")
        change = f"{live_server.url}/admin/newsletter/campaign/{campaign.pk}/change/"
        page.goto(change)
        field = page.locator("#schedule-timezone")
        assert field.input_value() == "Asia/Tokyo"
        first = page.locator("#schedule-timezones option").first
        assert first.get_attribute("value") == "Asia/Tokyo"
        assert "your browser" in first.get_attribute("label")
        assert page.evaluate("document.documentElement.scrollWidth") <= 391
        page.locator("#schedule").screenshot(path=str(folder / "schedule.png"))

        page.select_option("#test-as", label="Bob <bob@example.net>")
        page.fill("#test-addresses", "qa@shop.example")
        page.click("button[name=send-test]")
        assert "personalised as Bob <bob@example.net>" in page.inner_text("ul.messagelist")
        assert TransactionalEmail.objects.get().subject == "[TEST] Hello Bob"

        field.fill("america/new_york")
        field.blur()
        assert field.input_value() == "America/New_York"
        page.fill("#schedule-when", "2031-07-01T09:15")
        page.click("#schedule button.default")
        assert "Scheduled for 2031-07-01 09:15 America/New_York" in page.inner_text(
            "ul.messagelist")
        campaign.refresh_from_db()
        assert campaign.scheduled_at == datetime(2031, 7, 1, 13, 15, tzinfo=UTC)
        page.goto(change)
        assert page.locator("#schedule-timezone").input_value() == "America/New_York"
        page.screenshot(path=str(folder / "after-schedule.png"), full_page=True)
