"""Headless Chromium: an editor composes, previews, tests, schedules and follows a campaign.

Real parts throughout: the Django live server and its admin (login, CSRF), a
Celery worker on the transactional and maintenance queues (the test send; the
"start due campaigns" job and the mailing's dispatch), a Celery worker on the
bulk queue (the sending engine), an aiosmtpd sink standing in for the relays,
and Debian's Chromium driven by Playwright.

About the scheduler, honestly: no ``celery beat`` process runs here (it would
make the test wait up to a minute for its tick). Beat's only job is to enqueue
``newsletter.campaigns_start_due`` every minute, so the test enqueues that same
task itself, into the real maintenance worker: once right after scheduling
(the campaign is not due yet and must stay scheduled), then after moving the
scheduled time to now (as if the minute had passed), when it must start.
Screenshots land in $ARTIFACTS_DIR/campaign-browser (default <project>/artifacts).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from newsletter.models import Campaign, MailingList, Subscriber, Subscription
from sending.sink import sink_messages
from tests.e2e.browser import artifacts_folder, browser_page
from tests.helpers import wait_until
from tests.sending.conftest import sending_env  # noqa: F401 - fixture

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 900}
ZONE = "America/New_York"


@pytest.fixture
def artifacts() -> Path:
    return artifacts_folder("campaign-browser")


@pytest.fixture
def page(monkeypatch):
    with browser_page(monkeypatch, timeout_ms=20_000, viewport=DESKTOP, locale="en-GB") as page:
        yield page


def test_editor_composes_previews_tests_schedules_and_sends_a_campaign(
        live_server, settings, smtp_sink, celery_worker_factory, page, artifacts, tmp_path,
        sending_env, monkeypatch):  # noqa: F811 - fixture imported above
    from django.db import connections

    try:
        _campaign(live_server, settings, smtp_sink, celery_worker_factory, page, artifacts,
                  tmp_path, sending_env, monkeypatch)
    finally:
        # Playwright's sync API runs this body with its own database connection: close it,
        # or PostgreSQL's test database cannot be dropped.
        connections.close_all()


def _shot(page, path: Path) -> None:
    """A whole-page screenshot with the preview frames painted.

    Chromium leaves iframes below the first screen blank in ``full_page`` shots, so the
    viewport is made as tall as the page for the picture, then put back.
    """
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": DESKTOP["width"], "height": height})
    for frame_id in ("#preview-desktop", "#preview-phone", "#live-frame"):
        if page.locator(frame_id).count():
            page.frame_locator(frame_id).locator("h1").wait_for()
    page.wait_for_timeout(300)
    page.screenshot(path=path)
    page.set_viewport_size(DESKTOP)


def _job_runs(folder: Path) -> int:
    """How many runs of the start-due job the ops worker has finished (from its log)."""
    log = b"".join(p.read_bytes() for p in folder.glob("worker-ops-*.log"))
    return len(re.findall(rb"newsletter\.campaigns_start_due\[[^\]]+\] succeeded", log))


def _subscribe(mailing_list, email, name, status, **attributes):
    subscriber = Subscriber.objects.create(email=email, name=name, attributes=attributes)
    return Subscription.objects.create(subscriber=subscriber, mailing_list=mailing_list,
                                       status=status)


def _campaign(live_server, settings, smtp_sink, celery_worker_factory, page, artifacts,
              tmp_path, sending_env, monkeypatch):  # noqa: F811
    from django.contrib.auth import get_user_model

    from newsletter.campaign_roles import editor_group_ensure
    from newsletter.campaigns import layout_default
    from newsletter.tasks import campaigns_start_due
    from sending import dkim

    # The operator's part: a list with its sender, subscribers, the layout's postal
    # address, a DKIM key for the From domain, and an editor account.
    settings.SITE_URL = live_server.url
    dkim.generate_rsa_key(tmp_path / "dkim", "shop.example", "pw1", bits=1024)
    monkeypatch.setenv("PROVIDER_MX_LOOKUP", "false")  # no public DNS from the workers
    from deliverability import conf as deliverability_conf

    monkeypatch.setattr(deliverability_conf, "PROVIDER_MX_LOOKUP", False)
    news = MailingList.objects.create(name="Shop News", slug="shop-news",
                                      from_name="Shop News", from_email="news@shop.example")
    ann = _subscribe(news, "ann@example.org", "Ann", "confirmed", city="Berlin")
    bob = _subscribe(news, "bob@example.net", "Bob", "confirmed", city="Hamburg")
    _subscribe(news, "pat@example.org", "Pat", "pending", city="Paris")
    _subscribe(news, "una@example.org", "Una", "unsubscribed", city="Oslo")
    layout = layout_default()
    layout.postal_address = "Shop GmbH, Hauptstrasse 1, 10115 Berlin"
    layout.save()
    editor = get_user_model().objects.create_user("edna", "edna@shop.example", "s3cret-pw",
                                                  is_staff=True)
    editor.groups.add(editor_group_ensure())
    celery_worker_factory("transactional,maintenance", name="ops", SITE_URL=live_server.url)
    celery_worker_factory("bulk", name="bulk", SITE_URL=live_server.url)

    # 1. Log in as the editor and compose.
    page.goto(f"{live_server.url}/admin/login/?next=/admin/newsletter/campaign/add/")
    page.fill("#id_username", "edna")
    page.fill("#id_password", "s3cret-pw")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/newsletter/campaign/add/")
    page.fill("#id_name", "Spring 2031")
    page.fill("#id_subject", 'Spring news for {{ subscriber.name|default:"you" }}')
    page.fill("#id_preheader", "Our new season is here")
    # The body's toolbar editor (EasyMDE): pasted in, as from a draft elsewhere.
    page.locator(".EasyMDEContainer .CodeMirror").click()
    page.keyboard.insert_text("# Hello {{ subscriber.name|default:\"friend\" }}!\n\n"
                              "The spring collection has reached "
                              "{{ subscriber.attributes.city|default:\"your town\" }}.\n\n"
                              "[See it](https://shop.example/spring)")
    page.frame_locator("#live-frame").get_by_role("heading", name="Hello Sample Reader!") \
        .wait_for()  # the live preview, before anything is saved
    page.get_by_label("Shop News").first.check()
    page.fill("#id_tags", "spring, season")
    page.get_by_role("button", name="Save and continue editing").click()
    page.locator("#checklist").wait_for()
    campaign = Campaign.objects.get(name="Spring 2031")
    assert campaign.created_by == editor
    checklist = page.locator("#checklist").inner_text()
    assert "2 confirmed subscribers" in checklist
    assert page.locator(".pw-check-error").count() == 0
    assert page.locator(".pw-check-warning").count() == 0  # DKIM key found
    _shot(page, artifacts / "1-compose.png")

    # 2. Preview as Ann, at desktop and phone width.
    page.get_by_role("link", name="Preview", exact=True).click()
    page.select_option("#preview_as", str(ann.id))
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(rf"preview_as={ann.id}(&|$)"))
    assert page.locator("#preview-subject").inner_text() == "Spring news for Ann"
    for frame_id in ("#preview-desktop", "#preview-phone"):
        frame = page.frame_locator(frame_id)
        frame.get_by_role("heading", name="Hello Ann!").wait_for()
        assert "reached Berlin." in frame.locator("body").inner_text()
    assert page.locator("#preview-phone").get_attribute("width") == "390"
    assert "Unsubscribe (" in page.locator("#preview-text").inner_text()
    _shot(page, artifacts / "2-preview.png")

    # 3. A test, personalised as Ann, to the sink through the transactional worker.
    page.goto(f"{live_server.url}/admin/newsletter/campaign/{campaign.id}/change/"
              f"?preview_as={ann.id}")
    page.fill("#test-addresses", "qa@shop.example")
    page.get_by_role("button", name="Send test").click()
    page.get_by_text("Test sent to 1 address").wait_for()
    test_mail = wait_until(lambda: [m for m in sink_messages(smtp_sink.directory)
                                    if m.rcpt_to == "qa@shop.example"], timeout=30)[0]
    assert test_mail.subject == "[TEST] Spring news for Ann"
    assert "Hello Ann!" in test_mail.text and "reached Berlin." in test_mail.html
    assert "/t/" in test_mail.text and "/u/" not in test_mail.text  # test links never act

    # 4. Schedule a minute or two ahead (the form takes whole minutes), in New York time.
    ahead = (timezone.now() + timedelta(minutes=2)).astimezone(ZoneInfo(ZONE))
    page.fill("#schedule-when", ahead.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#schedule-timezone", ZONE)  # a searchable field (newsletter/timezone.js)
    page.get_by_role("button", name="Schedule", exact=True).click()
    page.get_by_text("Scheduled for").wait_for()
    campaign.refresh_from_db()
    assert campaign.state == "scheduled" and campaign.schedule_timezone == ZONE
    assert campaign.scheduled_at == ahead.replace(second=0, microsecond=0)
    assert f"{ahead:%Y-%m-%d %H:%M} {ZONE}" in page.locator("#campaign-state").inner_text()

    # 5. The scheduler's job, run by the maintenance worker: not due yet...
    campaigns_start_due.delay()
    wait_until(lambda: _job_runs(tmp_path) == 1, timeout=30)
    assert Campaign.objects.get(pk=campaign.pk).state == "scheduled"
    # ... then the minute has passed: the job starts it, the bulk worker sends.
    Campaign.objects.filter(pk=campaign.pk).update(scheduled_at=timezone.now())
    campaigns_start_due.delay()
    wait_until(lambda: Campaign.objects.get(pk=campaign.pk).state == "sending", timeout=30)
    campaign.refresh_from_db()
    assert campaign.mailing.recipients == 2
    bulk = wait_until(lambda: (lambda found: found if len(found) >= 2 else None)(
        [m for m in sink_messages(smtp_sink.directory) if m.rcpt_to != "qa@shop.example"]),
        timeout=60)

    # 6. One correctly personalised message per confirmed subscriber, none for the others.
    assert sorted(m.rcpt_to for m in bulk) == ["ann@example.org", "bob@example.net"]
    expected = {"ann@example.org": ("Ann", "Berlin", ann), "bob@example.net": ("Bob", "Hamburg",
                                                                              bob)}
    for message in bulk:
        name, city, subscription = expected[message.rcpt_to]
        assert message.subject == f"Spring news for {name}"
        assert f"Hello {name}!" in message.text and f"reached {city}." in message.text
        assert f"Hello {name}!" in message.html and 'style="' in message.html
        assert "Shop GmbH, Hauptstrasse 1" in message.text
        assert message.message["From"] == "Shop News <news@shop.example>"
        assert "/one-click/" in message.message["List-Unsubscribe"]
        assert "DKIM-Signature" in message.message
        from newsletter import links

        assert links.unsubscribe_url(subscription.id) in message.text
    assert not [m for m in sink_messages(smtp_sink.directory)
                if m.rcpt_to in ("pat@example.org", "una@example.org")]

    # 7. The report.
    page.goto(f"{live_server.url}/admin/newsletter/campaign/{campaign.id}/report/")
    assert page.locator("#n-audience strong").inner_text() == "2"
    wait_until(lambda: (page.reload(), page.locator("#n-sent strong").inner_text())[1] == "2",
               timeout=20, interval=0.5)
    assert re.search(r"example\.(org|net)", page.locator("#report-providers").inner_text())
    _shot(page, artifacts / "3-report.png")
    assert len(list(artifacts.glob("*.png"))) >= 3
