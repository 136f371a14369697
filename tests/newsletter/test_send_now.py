"""Send now: a confirmation with recipients, lists, sender and open warnings (pre-flight,
paused providers), then a start at once through the task queue, not the next beat tick."""

from __future__ import annotations

import re
import time

import pytest

from deliverability.breaker.engine import Breaker
from newsletter.campaign_send import campaign_full_checklist, in_words, send_summary
from newsletter.models import Campaign
from sending.models import RelayPool
from tests.newsletter.test_campaign_admin import (  # noqa: F401 - fixtures
    Browser,
    _user,
    editor,
    quiet,
    setup,
)
from tests.newsletter.test_campaigns import dns_for_shop  # noqa: F401 - fixture
from tests.sending.conftest import sending_env  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db
OUTLOOK = ("550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact "
           "your Internet service provider since part of their network is on our block list "
           "(S3150).")


@pytest.fixture(autouse=True)
def fresh_redis(redis_client):
    """Empty breaker state and pre-flight cache (redis_client flushes the database)."""


@pytest.fixture
def outlook_paused(redis_client, db):
    RelayPool.objects.get_or_create(name="bulk", defaults={"purpose": "bulk"})
    breaker = Breaker(redis=redis_client, time_scale=1.0)
    breaker.pause("microsoft_consumer", "bulk", seconds=4 * 3600, actor="ops",
                  note="S3150 block list")
    return breaker


def test_in_words():
    assert in_words(14390) == "in 3 h 59 min"
    assert in_words(4 * 3600) == "in 4 h"
    assert in_words(30) == "in less than a minute"
    assert in_words(26 * 3600) == "in 1 d 2 h"
    assert in_words(125) == "in 2 min"


def test_the_checklist_names_a_paused_provider_and_when_its_mail_goes(setup, outlook_paused):  # noqa: F811
    checks = campaign_full_checklist(setup["campaign"])
    paused = [c for c in checks if c.name.endswith("is paused")]
    assert len(paused) == 1 and not paused[0].blocking
    assert "Outlook" in paused[0].name or "Microsoft" in paused[0].name
    assert "in 3 h 59 min" in paused[0].detail or "in 4 h" in paused[0].detail


def test_the_checklist_shows_preflight_failures_in_warn_mode(setup, dns_for_shop,  # noqa: F811
                                                             monkeypatch):
    from newsletter import conf

    monkeypatch.setattr(conf, "PREFLIGHT_BEFORE_START", "warn")
    checks = campaign_full_checklist(setup["campaign"])
    dmarc = [c for c in checks if c.name.startswith("Pre-flight: DMARC")]
    assert dmarc and not dmarc[0].ok and not dmarc[0].blocking
    monkeypatch.setattr(conf, "PREFLIGHT_BEFORE_START", "block")
    blocking = [c for c in campaign_full_checklist(setup["campaign"]) if c.level == "error"]
    assert any(c.name.startswith("Pre-flight: DMARC") for c in blocking)


def test_the_confirmation_shows_count_lists_sender_and_warnings(editor, setup,  # noqa: F811
                                                                outlook_paused, mailing_list):
    campaign = setup["campaign"]
    page = editor.get(f"/admin/newsletter/campaign/{campaign.pk}/change/").content.decode()
    assert f'href="/admin/newsletter/campaign/{campaign.pk}/send-now/"' in page
    assert "is paused" in page  # in the checklist too
    page = editor.get(f"/admin/newsletter/campaign/{campaign.pk}/send-now/").content.decode()
    assert 'id="send-now-count">1 recipient<' in page
    assert "Shop News" in page and "news@shop.example" in page
    assert "is paused" in page and "DKIM key configured" in page
    assert "Send now to 1 recipient" in page and 'href="/admin/breakers/"' in page
    summary = send_summary(campaign)
    assert summary.recipients == 1 and summary.lists == ["Shop News"]
    assert Campaign.objects.get(pk=campaign.pk).state == "draft"  # nothing happened yet


def test_the_old_send_now_button_goes_to_the_confirmation(editor, setup):  # noqa: F811
    campaign = setup["campaign"]
    response = editor.post(f"/admin/newsletter/campaign/{campaign.pk}/action/",
                           {"action": "schedule", "now": "1", "timezone": "UTC"})
    assert response.status_code == 302
    assert response["Location"].endswith(f"/{campaign.pk}/send-now/")
    assert Campaign.objects.get(pk=campaign.pk).state == "draft"


def test_a_changed_audience_must_be_confirmed_again(editor, setup):  # noqa: F811
    campaign = setup["campaign"]
    response = editor.post(f"/admin/newsletter/campaign/{campaign.pk}/action/",
                           {"action": "send_now", "recipients": "7", "timezone": "UTC"},
                           follow=True)
    assert "changed to 1 recipients since you confirmed 7" in response.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).state == "draft"


def test_send_now_needs_the_schedule_permission(setup):  # noqa: F811
    writer = Browser(_user("wendy", group=False, perms=("view_campaign", "change_campaign")))
    campaign = setup["campaign"]
    assert writer.get(f"/admin/newsletter/campaign/{campaign.pk}/send-now/").status_code == 403
    response = writer.post(f"/admin/newsletter/campaign/{campaign.pk}/action/",
                           {"action": "send_now", "recipients": "1"})
    assert response.status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).state == "draft"


@pytest.mark.django_db(transaction=True)
def test_send_now_starts_at_once_through_the_worker(setup, smtp_sink,  # noqa: F811
                                                    celery_worker_factory, tmp_path):
    campaign = setup["campaign"]
    editor_browser = Browser(_user("edna"))
    celery_worker_factory("maintenance", name="ops")
    asked = time.monotonic()
    response = editor_browser.post(f"/admin/newsletter/campaign/{campaign.pk}/action/",
                                   {"action": "send_now", "recipients": "1",
                                    "timezone": "UTC"})
    assert response.status_code == 302
    while time.monotonic() - asked < 30:
        campaign.refresh_from_db()
        if campaign.state != "scheduled":
            break
        time.sleep(0.2)
    assert campaign.state == "sending" and campaign.mailing.recipients == 1
    log = b"".join(p.read_bytes() for p in tmp_path.glob("worker-ops-*.log"))
    assert re.search(rb"newsletter\.campaign_start_now\[[^\]]+\] succeeded", log)
    assert not re.search(rb"newsletter\.campaigns_start_due\[", log)  # not the beat job


def test_a_started_campaign_says_when_it_started_not_when_it_starts(editor, setup):  # noqa: F811
    from django.utils import timezone

    from newsletter.campaigns import campaign_schedule, campaign_start

    campaign = setup["campaign"]
    campaign_schedule(campaign, timezone.now())
    campaign = campaign_start(campaign.id)
    Campaign.objects.filter(pk=campaign.pk).update(
        last_error="Pre-flight warnings (sent anyway): dmarc shop.example: no record")
    page = editor.get(f"/admin/newsletter/campaign/{campaign.pk}/change/").content.decode()
    state = page.split('id="campaign-state"')[1].split("</p>")[0]
    assert "started" in state and "starts" not in state
    assert "At its start: Pre-flight warnings (sent anyway)" in page
    assert "Not started:" not in page
