"""Headless Chromium at phone width: sign up, confirm from the mail, unsubscribe from a later one.

Real parts throughout: the Django live server, a Celery worker on the
transactional queue that stores the signup (the production path,
SIGNUP_ASYNC) and sends the confirmation through the transactional pool to an
aiosmtpd sink, the bulk engine composing the later newsletter (with List-Unsubscribe
from our recipient contexts), and Debian's Chromium driven by Playwright.
Screenshots of every page land in $ARTIFACTS_DIR (default <project>/artifacts).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newsletter.models import ConsentRecord, MailingList, Subscription
from sending.sink import sink_messages
from tests.e2e.browser import artifacts_folder, browser_page
from tests.helpers import wait_until
from tests.sending.conftest import sending_env  # noqa: F401 - fixture

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def artifacts() -> Path:
    return artifacts_folder("signup-browser")


@pytest.fixture
def phone(monkeypatch):
    with browser_page(monkeypatch, viewport=PHONE, is_mobile=True, has_touch=True,
                      device_scale_factor=2, locale="en-GB") as page:
        yield page


def _fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def _link(text: str, marker: str) -> str:
    return next(u for u in re.findall(r"https?://[^\s<>\"']+", text) if marker in u)


def test_signup_confirm_and_unsubscribe_in_a_phone_browser(
        live_server, settings, smtp_sink, celery_worker_factory, phone, artifacts,
        sending_env):  # noqa: F811 - fixture imported above
    from django.db import connections

    try:
        _signup_confirm_unsubscribe(live_server, settings, smtp_sink, celery_worker_factory,
                                    phone, artifacts)
    finally:
        # Under Playwright's sync API this body runs in its own context, with its own
        # database connection: close it, or the test database cannot be dropped.
        connections.close_all()


def _signup_confirm_unsubscribe(live_server, settings, smtp_sink, celery_worker_factory,
                                phone, artifacts):
    settings.SITE_URL = live_server.url
    MailingList.objects.create(
        name="Shop News", slug="shop-news", description="Offers and news, twice a month.",
        from_email="news@shop.example")
    celery_worker_factory("transactional", name="transactional", SITE_URL=live_server.url)

    # 1. The signup page at phone width.
    phone.goto(f"{live_server.url}/s/shop-news/")
    assert _fits_the_screen(phone)
    phone.get_by_label("E-mail address").fill("reader@example.org")
    phone.get_by_label("Name (optional)").fill("Rea Der")
    phone.get_by_role("checkbox").check()
    phone.screenshot(path=artifacts / "1-signup.png", full_page=True)
    phone.get_by_role("button", name="Subscribe").click()
    phone.wait_for_url("**/check-inbox/")
    assert "Check your inbox" in phone.content()
    phone.screenshot(path=artifacts / "2-check-inbox.png", full_page=True)

    # 2. The confirmation mail, sent by the worker through the transactional pool.
    mails = wait_until(lambda: sink_messages(smtp_sink.directory), timeout=30)
    assert len(mails) == 1 and mails[0].rcpt_to == "reader@example.org"
    assert "Rea Der" not in mails[0].text
    confirm_url = _link(mails[0].text, "/confirm/")

    # 3. Opening the link shows a button; only pressing it confirms.
    phone.goto(confirm_url)
    assert _fits_the_screen(phone)
    phone.screenshot(path=artifacts / "3-confirm.png", full_page=True)
    assert Subscription.objects.get().status == "pending"
    phone.get_by_role("button", name="Yes, subscribe me").click()
    phone.get_by_role("heading", name="Subscription confirmed").wait_for()
    phone.screenshot(path=artifacts / "4-confirmed.png", full_page=True)
    subscription = Subscription.objects.get()
    assert subscription.status == "confirmed"
    confirmation = ConsentRecord.objects.get(event="confirmation")
    assert confirmation.ip == "127.0.0.1" and "HeadlessChrome" in confirmation.user_agent

    # 4. A later newsletter, composed by the bulk engine with our links.
    from sending.models import Relay, RelayPool
    from sending.services import deliveries_send, mailing_create, mailing_start

    pool = RelayPool.objects.create(name="bulk-e2e", purpose=RelayPool.Purpose.BULK)
    Relay.objects.create(pool=pool, name="sink", host="127.0.0.1", port=smtp_sink.port,
                         tls_mode="none", max_rate_per_s=0)
    mailing = mailing_create(
        from_email="Shop News <news@shop.example>", subject="Spring offers",
        text="Hello {{ subscriber.name }}!\nUnsubscribe: {{ unsubscribe_url }}\n",
        list_id="shop-news.example", pool=pool)
    mailing_start(mailing=mailing, recipients=[(subscription.id, "reader@example.org")],
                  dispatch=False)
    deliveries_send(list(mailing.deliveries.values_list("id", flat=True)))
    newsletter = wait_until(lambda: [m for m in sink_messages(smtp_sink.directory)
                                     if m.subject == "Spring offers"], timeout=20)[0]
    assert "Hello Rea Der!" in newsletter.text
    assert "/one-click/" in newsletter.message["List-Unsubscribe"]
    assert newsletter.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # 5. Unsubscribe from the link in that mail.
    phone.goto(_link(newsletter.text, "/u/"))
    assert _fits_the_screen(phone)
    phone.screenshot(path=artifacts / "5-unsubscribe.png", full_page=True)
    assert Subscription.objects.get().status == "confirmed"
    phone.get_by_role("button", name="Unsubscribe").click()
    phone.get_by_role("heading", name="You are unsubscribed").wait_for()
    phone.screenshot(path=artifacts / "6-unsubscribed.png", full_page=True)
    assert Subscription.objects.get().status == "unsubscribed"
    assert ConsentRecord.objects.filter(event="unsubscribe", source="email_link").count() == 1
    assert len(list(artifacts.glob("*.png"))) >= 6
