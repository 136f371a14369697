"""The campaign report as issue 21 asked: provider names, one waiting/deferred, paused lines.

The breaker state is set through the breaker's own service functions on the
test's Redis; the deliveries are rows as the engine leaves them (a paused
provider's mail is released ``deferred`` without an attempt, a 421 answer is
``deferred`` with one).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from config.roles import EDITOR, OPERATOR, roles_ensure
from deliverability.breaker.engine import Breaker
from deliverability.paused import paused_providers
from newsletter.campaign_report import campaign_report
from newsletter.models import Campaign
from sending.delivery_progress import progress
from sending.models import Delivery, Mailing, RelayPool

pytestmark = pytest.mark.django_db

OUTLOOK = "Microsoft Outlook.com / Hotmail"


@pytest.fixture
def sending_campaign(db):
    pool = RelayPool.objects.get_or_create(name="bulk", defaults={"purpose": "bulk"})[0]
    mailing = Mailing.objects.create(from_email="n@shop.example", subject_template="s",
                                     text_template="t", pool=pool, state="sending",
                                     recipients=8, started_at=timezone.now())
    campaign = Campaign.objects.create(name="Winter", subject="s", body="b", state="sending",
                                       mailing=mailing, started_at=mailing.started_at)
    rows = ([("microsoft_consumer", "deferred", 0)] * 4     # held by the pause: never tried
            + [("google", "sent", 1)] * 2 + [("google", "deferred", 1)]  # a 421: retried
            + [("google", "queued", 0)])
    for index, (provider, state, attempts) in enumerate(rows):
        Delivery.objects.create(mailing=mailing, address=f"r{index}@x.example",
                                provider=provider, state=state, attempts=attempts)
    return campaign


def _client(role: str | None, *, superuser=False):
    roles_ensure()
    User = get_user_model()
    if superuser:
        user = User.objects.create_superuser("root", "root@x.example", "pw")
    else:
        user = User.objects.create_user(role, f"{role}@x.example", "pw", is_staff=True)
        user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def test_waiting_and_deferred_have_one_definition():
    assert progress("queued", False) == progress("claimed", False) == "waiting"
    assert progress("deferred", False) == "waiting"  # held before its first try
    assert progress("deferred", True) == progress("queued", True) == "deferred"
    assert progress("sent", True) == "sent" and progress("bounced", True) == "bounced"


def test_summary_and_rows_agree(sending_campaign, redis_client):
    report = campaign_report(sending_campaign)
    rows = {r.provider: r for r in report.providers}
    assert (report.waiting, report.deferred) == (5, 1)
    assert (rows["microsoft_consumer"].waiting, rows["microsoft_consumer"].deferred) == (4, 0)
    assert (rows["google"].waiting, rows["google"].deferred) == (1, 1)
    assert report.waiting == sum(r.waiting for r in report.providers)
    assert report.deferred == sum(r.deferred for r in report.providers)
    assert report.percent_done == 25  # 2 of 8 are final
    assert rows["microsoft_consumer"].name == OUTLOOK


def test_a_paused_provider_gets_a_line_with_when_its_mail_goes(sending_campaign, redis_client):
    breaker = Breaker(redis=redis_client)
    breaker.pause("microsoft_consumer", "bulk", seconds=14390, actor="ops", note="complaints")
    breaker.pause("yahoo", "bulk", seconds=600, actor="ops")  # nothing of this campaign
    breaker.pause("google", "transactional", seconds=600, actor="ops")  # another pool
    report = campaign_report(sending_campaign)
    [line] = report.paused
    assert (line.provider, line.name, line.state, line.waiting) == (
        "microsoft_consumer", OUTLOOK, "paused", 4)
    assert abs((line.until - timezone.now()).total_seconds() - 14390) < 5

    editor = _client(EDITOR).get(f"/admin/newsletter/campaign/{sending_campaign.pk}/report/")
    page = editor.content.decode()
    item = re.search(r'<li class="paused-provider".*?</li>', page, re.S).group(0)
    assert OUTLOOK in item and "4 messages wait" in item and "(<span class=\"pw-when\">in 4 h" \
        in item
    assert "breaker-link" not in item  # editors: plain text, no link to the operators' page
    assert "microsoft_consumer</td>" not in page and f">{OUTLOOK}</td>" in page
    assert '<td class="waiting">4</td><td class="deferred">0</td>' in page
    assert '<div class="pw-number" id="n-waiting" title="Not tried yet"><strong>5</strong>' in page

    root = _client(None, superuser=True)
    page = root.get(f"/admin/newsletter/campaign/{sending_campaign.pk}/report/").content.decode()
    assert 'class="breaker-link" href="/admin/breakers/"' in page


def test_probing_and_manual_keys_and_egress_pools(sending_campaign, redis_client):
    breaker = Breaker(redis=redis_client)
    breaker.pause("google", "bulk@192.0.2.7", seconds=60, actor="ops")
    breaker.acknowledge("google", "bulk@192.0.2.7", actor="ops")  # -> probing
    breaker.pause("microsoft_consumer", "bulk", seconds=60, actor="ops")
    redis_client.hset("deliverability:breaker:bulk:microsoft_consumer", "state", "manual")
    lines = {p.provider: p for p in campaign_report(sending_campaign).paused}
    assert lines["google"].state == "probing" and lines["google"].egress == "192.0.2.7"
    assert lines["google"].waiting == 2 and lines["google"].until is None
    assert lines["microsoft_consumer"].state == "manual"
    assert "operator" in lines["microsoft_consumer"].next_step
    # Resumed: no line any more.
    breaker.resume("google", "bulk@192.0.2.7", actor="ops")
    assert "google" not in {p.provider for p in campaign_report(sending_campaign).paused}


def test_a_pool_wide_pause_holds_everything_left(sending_campaign, redis_client):
    Breaker(redis=redis_client).pause("*", "bulk", seconds=3600, actor="ops")
    [line] = campaign_report(sending_campaign).paused
    assert line.name == "every provider" and line.waiting == 6


def test_a_finished_campaign_has_no_paused_line(sending_campaign, redis_client):
    Breaker(redis=redis_client).pause("microsoft_consumer", "bulk", seconds=600, actor="ops")
    Delivery.objects.filter(mailing=sending_campaign.mailing).update(state="sent", attempts=1)
    assert campaign_report(sending_campaign).paused == []


def test_redis_down_says_unknown_and_the_report_still_renders(sending_campaign, monkeypatch):
    def down(self):
        raise ConnectionError("no redis")

    monkeypatch.setattr(Breaker, "keys", down)
    assert paused_providers() is None
    page = _client(EDITOR).get(
        f"/admin/newsletter/campaign/{sending_campaign.pk}/report/").content.decode()
    assert 'id="paused-providers-unknown"' in page and 'id="n-sent"' in page


def test_the_breaker_page_says_durations_in_words_and_names(redis_client):
    Breaker(redis=redis_client).pause("microsoft_consumer", "bulk", seconds=14390, actor="ops")
    page = _client(OPERATOR).get("/admin/breakers/").content.decode()
    assert "in 14390 s" not in page and 'class="pw-when">in 4 h<' in page
    assert OUTLOOK in page
    transitions = re.search(r'<table id="transitions".*?</table>', page, re.S).group(0)
    assert f"{OUTLOOK} / bulk" in transitions


def test_before_the_start_every_paused_provider_of_the_pool_is_listed(redis_client):
    Breaker(redis=redis_client).pause("yahoo", "bulk", seconds=7200, actor="ops")
    campaign = Campaign.objects.create(name="Draft", subject="s", body="b")
    [line] = campaign_report(campaign).paused
    assert line.name == "Yahoo and AOL" and line.waiting is None
    assert timedelta(seconds=7190) < line.until - timezone.now() < timedelta(seconds=7210)
