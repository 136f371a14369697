"""Headless Chromium: from a newsletter's preference link, ask for a fresh link, erase.

The preference page offers only the lists the reader was on and mails a fresh
link for erasure; the link from the mail (read from the transactional mail
row) shows a confirmation page and erases on its button. Screenshots land in
$ARTIFACTS_DIR (default <project>/artifacts).
"""

from __future__ import annotations

import re

import pytest

from deliverability.suppression import is_suppressed
from newsletter import tokens
from newsletter.models import MailingList, Subscriber, Subscription
from sending.models import TransactionalEmail
from tests.e2e.browser import artifacts_folder, browser_page

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(monkeypatch):
    with browser_page(monkeypatch, viewport={"width": 390, "height": 844}, is_mobile=True,
                      locale="en-GB") as page:
        yield page


def test_erase_from_a_preference_link_needs_the_fresh_link(live_server, settings, page,
                                                           redis_client):
    from django.db import connections

    try:
        _erase(live_server, settings, page)
    finally:
        connections.close_all()  # Playwright's thread holds its own connection


def _erase(live_server, settings, page):
    settings.SITE_URL = live_server.url
    artifacts = artifacts_folder("privacy-browser")
    news = MailingList.objects.create(name="Shop News", slug="shop-news")
    MailingList.objects.create(name="Weekly", slug="weekly")
    reader = Subscriber.objects.create(email="reader@example.org", name="Rea")
    Subscription.objects.create(subscriber=reader, mailing_list=news, status="confirmed")

    page.goto(f"{live_server.url}/p/{tokens.preferences_token(reader.id)}/")
    assert page.get_by_role("checkbox").count() == 1  # Shop News only
    assert page.get_by_role("link", name="Weekly").get_attribute("href") == "/s/weekly/"
    page.screenshot(path=artifacts / "1-preferences.png", full_page=True)
    page.get_by_role("button", name="Mail me a link to erase my data").click()
    page.wait_for_load_state()
    assert "Check your inbox" in page.content()
    page.screenshot(path=artifacts / "2-link-sent.png", full_page=True)

    mail = TransactionalEmail.objects.get(purpose="privacy")
    assert mail.to == "reader@example.org"
    link = next(u for u in re.findall(r"https?://\S+", mail.body_text) if "/me/erase/" in u)
    page.goto(link)
    assert Subscriber.objects.filter(id=reader.id).exists()  # opening erases nothing
    page.screenshot(path=artifacts / "3-erase.png", full_page=True)
    page.get_by_role("button", name="Erase my data").click()
    page.wait_for_load_state()
    assert "Your data was erased" in page.content()
    page.screenshot(path=artifacts / "4-erased.png", full_page=True)
    assert not Subscriber.objects.exists()
    assert is_suppressed("reader@example.org")
