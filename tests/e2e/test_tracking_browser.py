"""A real bulk send with click and open tracking, then Chromium reads and clicks the mail.

Real parts: the Django live server, Celery workers (maintenance: the start-due job
and the tracking drain; bulk: the sending engine), an aiosmtpd sink standing in
for the relays, Debian's Chromium driven by Playwright. The one stand-in is the
link target on the internet (``https://shop.example/...``), which Playwright
answers itself: the machine has no route out.

About time, honestly: a reader does not open a mail the second it arrives, and
a hit that close to delivery is judged a gateway's prefetch. The test moves the
deliveries' ``sent_at`` ten minutes back before Chromium reads the mail, as if
the reader came back to their inbox later.

Screenshots (the report at desktop and phone width, the archive on a phone) land
in $ARTIFACTS_DIR/tracking-browser (default <project>/artifacts).
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from django.utils import timezone

from newsletter.models import (
    Campaign,
    MailingList,
    Subscriber,
    Subscription,
    TrackedLink,
    TrackingCount,
    TrackingEvent,
    TrackingUnique,
)
from sending.models import Delivery
from sending.sink import sink_messages
from tests.e2e.browser import artifacts_folder, browser_page
from tests.helpers import wait_until
from tests.sending.conftest import sending_env  # noqa: F401 - fixture

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Headless Chromium says "HeadlessChrome" in its agent, which the rules judge a scanner;
# the reader's browser says what a desktop Chrome says.
READER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/124.0.0.0 Safari/537.36")
TARGET = "https://shop.example/spring"


def test_tracked_bulk_send_clicked_in_chromium(live_server, settings, smtp_sink,
                                               celery_worker_factory, monkeypatch, tmp_path,
                                               sending_env):  # noqa: F811
    _run(live_server, settings, smtp_sink, celery_worker_factory, monkeypatch)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _fetch(url: str, agent: str) -> int:
    """One GET that does not follow redirects (what a link scanner does), its status."""
    request = urllib.request.Request(url, headers={"User-Agent": agent})
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as answer:
        return answer.code


def _subscribe(mailing_list, email, name):
    subscriber = Subscriber.objects.create(email=email, name=name)
    return Subscription.objects.create(subscriber=subscriber, mailing_list=mailing_list,
                                       status="confirmed")


def _run(live_server, settings, smtp_sink, celery_worker_factory, monkeypatch):
    from django.contrib.auth import get_user_model
    from django.db import connections

    from newsletter.campaigns import campaign_schedule, layout_default
    from newsletter.tasks import campaigns_start_due, tracking_drain
    from newsletter.tracking import link_cache_clear

    settings.SITE_URL = live_server.url
    link_cache_clear()  # the live server runs in this process; ids repeat across tests
    artifacts = artifacts_folder("tracking-browser")
    news = MailingList.objects.create(name="Shop News", slug="shop-news",
                                      from_name="Shop News", from_email="news@shop.example",
                                      track_clicks=True, archive_public=True,
                                      personalisation_defaults={"name": "reader"})
    ann = _subscribe(news, "ann@example.org", "Ann Example")
    bob = _subscribe(news, "bob@example.net", "Bob Example")
    layout = layout_default()
    layout.postal_address = "Shop GmbH, Hauptstrasse 1, 10115 Berlin"
    layout.save()
    campaign = Campaign.objects.create(
        name="Spring", subject="Spring news for {{ subscriber.name }}", layout=layout,
        body="# Hello {{ subscriber.name|default:\"friend\" }}!\n\n"
             f"[See the spring collection]({TARGET}) · "
             "[Read the blog](https://blog.shop.example/spring) · "
             "[Opening hours](https://shop.example/hours)",
        track_opens=True, archive_public=True)  # clicks: the list's default
    campaign.lists.add(news)
    get_user_model().objects.create_superuser("root", "root@shop.example", "s3cret-pw")
    celery_worker_factory("transactional,maintenance", name="ops", SITE_URL=live_server.url)
    celery_worker_factory("bulk", name="bulk", SITE_URL=live_server.url)

    # 1. A real bulk send: the start-due job (maintenance worker), the engine (bulk worker).
    campaign_schedule(campaign, timezone.now())
    campaigns_start_due.delay()
    mails = wait_until(lambda: (lambda found: found if len(found) == 2 else None)(
        sink_messages(smtp_sink.directory)), timeout=60)
    campaign.refresh_from_db()
    assert campaign.track_clicks is True and campaign.tracking_privacy == "counts"
    by_rcpt = {m.rcpt_to: m for m in mails}
    ann_mail = by_rcpt["ann@example.org"]
    tracked = re.findall(rf'href="({re.escape(live_server.url)}/c/[^"]+)"', ann_mail.html)
    assert len(tracked) == 3 and TARGET not in ann_mail.html
    assert "/c/" in ann_mail.text  # the plain-text part is tracked too
    # Unsubscribe and preference links are never tracked: straight to their pages.
    assert re.search(rf'href="{re.escape(live_server.url)}/u/[^"]+"', ann_mail.html)
    assert re.search(rf'href="{re.escape(live_server.url)}/p/[^"]+"', ann_mail.html)
    assert "/c/" not in ann_mail.message["List-Unsubscribe"]
    Delivery.objects.filter(mailing=campaign.mailing).update(
        sent_at=timezone.now() - timedelta(minutes=10))  # read later (see the docstring)

    with browser_page(monkeypatch, timeout_ms=20_000, viewport=DESKTOP,
                      user_agent=READER_AGENT) as page:
        try:
            # 2. The reader opens the mail (the pixel loads) and clicks the first link.
            page.route("https://shop.example/**", lambda route: route.fulfill(
                status=200, content_type="text/html",
                body="<!doctype html><title>Spring</title><h1>The spring collection</h1>"))
            page.route("https://blog.shop.example/**", lambda route: route.abort())
            page.set_content(ann_mail.html)
            page.get_by_role("link", name="See the spring collection").click()
            page.wait_for_url(TARGET)
            assert page.locator("h1").inner_text() == "The spring collection"

            # 3. A forged and an altered token: an error page, never a redirect.
            good = tracked[0].rsplit("/c/", 1)[1].rstrip("/")
            value, _, signature = good.rpartition(":")
            other = "A" if signature[0] != "A" else "B"
            for token in (f"{value}:{other}{signature[1:]}",
                          value.replace(f".{ann.id}", f".{bob.id}") + f":{signature}",
                          "1.0.1:forged-signature"):
                answer = page.goto(f"{live_server.url}/c/{token}/")
                assert answer.status == 404
                assert page.url == f"{live_server.url}/c/{token}/"
                assert "This link does not work" in page.locator("h1").inner_text()

            # 4. Bob's mail passes a link scanner: every link within a second.
            bob_links = re.findall(rf'href="({re.escape(live_server.url)}/c/[^"]+)"',
                                   by_rcpt["bob@example.net"].html)
            started = time.monotonic()
            assert [_fetch(url, READER_AGENT) for url in bob_links] == [302, 302, 302]
            assert time.monotonic() - started < 1.0

            # 5. The drain (the beat job, run by the maintenance worker) counts them.
            def counted():
                tracking_drain.delay()
                found: dict[str, int] = {}
                for reason, n in TrackingCount.objects.filter(
                        campaign=campaign, kind="click").values_list("machine_reason", "count"):
                    found[reason or "human"] = found.get(reason or "human", 0) + n
                return found if found == {"human": 1, "burst": 3} else None

            wait_until(counted, timeout=40, interval=1.0)
            opens = TrackingCount.objects.filter(campaign=campaign, kind="open", machine_reason="")
            assert sum(o.count for o in opens) == 1  # Ann's mail client loaded the pixel
            human = TrackingCount.objects.get(campaign=campaign, kind="click", machine_reason="")
            assert TrackedLink.objects.get(campaign=campaign, index=human.link_index).url == TARGET
            unique = TrackingUnique.objects.get(campaign=campaign, kind="click", provider="")
            assert unique.count == 1
            # Counts only (the list's default): no hit is linked to a subscriber.
            assert not TrackingEvent.objects.exists()

            # 6. The report, at desktop and phone width.
            page.goto(f"{live_server.url}/admin/login/?next=/admin/newsletter/campaign/"
                      f"{campaign.id}/report/")
            page.fill("#id_username", "root")
            page.fill("#id_password", "s3cret-pw")
            page.get_by_role("button", name="Log in").click()
            page.locator("#report-links").wait_for()
            assert page.locator("#n-clicks strong").inner_text() == "1"
            assert page.locator("#n-clicks-machine strong").inner_text() == "3"
            assert page.locator("#n-clickers strong").inner_text() == "1"
            assert page.locator("#n-ctr strong").inner_text() == "50.0 %"
            assert page.locator("#n-opens-human strong").inner_text() == "1"
            assert "click-through" in page.locator("#report-providers").inner_text().lower()
            assert page.locator("#report-timeline rect").count() >= 1
            _shot(page, artifacts / "report-desktop.png", DESKTOP)
            page.set_viewport_size(PHONE)
            page.reload()
            page.locator("#report-links").wait_for()
            _shot(page, artifacts / "report-phone.png", PHONE)

            # 7. The public archive on a phone: the campaign, and no one's data.
            page.goto(f"{live_server.url}/archive/shop-news/")
            page.get_by_role("link", name="Spring news for reader").click()
            page.get_by_role("heading", name="Hello reader!").wait_for()
            body = page.content()
            for person in ("Ann", "Bob", "ann@example.org", "bob@example.net"):
                assert person not in body
            assert f'href="{TARGET}"' in body and "/c/" not in body and "/o/" not in body
            _shot(page, artifacts / "archive-phone.png", PHONE)
        finally:
            # ORM calls in this block ran in Playwright's context, on its own connection.
            connections.close_all()

    assert {p.name for p in artifacts.glob("*.png")} >= {"report-desktop.png",
                                                         "report-phone.png",
                                                         "archive-phone.png"}


def _shot(page, path, viewport) -> None:
    """A whole-page screenshot: the viewport made as tall as the page, then put back."""
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": viewport["width"], "height": max(height, 200)})
    page.wait_for_timeout(200)
    page.screenshot(path=path)
    page.set_viewport_size(viewport)
