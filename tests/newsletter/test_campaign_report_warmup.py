"""The campaign report shows the warm-up plans its mail is sent under."""

from __future__ import annotations

import pytest
from django.utils import timezone

from newsletter.campaign_report import campaign_report
from newsletter.campaigns import campaign_schedule, campaign_start, layout_default
from newsletter.models import Campaign, Subscriber, Subscription
from sending.models import WarmupPlan
from tests.sending.conftest import sending_env  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def test_the_report_lists_the_campaigns_warmup_plans(mailing_list, sending_env,  # noqa: F811
                                                     admin_client, settings):
    settings.DEFAULT_FROM_EMAIL = "news@news.example.org"
    layout = layout_default()
    layout.postal_address = "ACME Shop, Hauptstrasse 1, 10115 Berlin"
    layout.save()
    for i in range(3):
        Subscription.objects.create(
            subscriber=Subscriber.objects.create(email=f"r{i}@gmail.com"),
            mailing_list=mailing_list, status="confirmed")
    campaign = Campaign.objects.create(name="Spring", subject="Hello", layout=layout,
                                       body="Hi", from_email="news@news.example.org")
    campaign.lists.add(mailing_list)
    WarmupPlan.objects.create(kind="domain", target="news.example.org",
                              started_on=timezone.now().date())
    WarmupPlan.objects.create(kind="domain", target="other.example.org",
                              started_on=timezone.now().date())
    campaign_schedule(campaign, timezone.now())
    campaign = campaign_start(campaign.id)

    report = campaign_report(campaign)
    assert [(r["target"], r["cap"]) for r in report.warmup] == [("news.example.org", 100)]
    assert report.warmup[0]["providers"][0]["provider"] == "google"
    page = admin_client.get(f"/admin/newsletter/campaign/{campaign.pk}/report/")
    text = page.content.decode()
    assert "Warm-up plans this campaign sends under" in text and "domain news.example.org" in text


def test_the_report_shows_the_canary_slice_and_its_results(mailing_list, sending_env,  # noqa: F811
                                                           admin_client):
    sending_env(CANARY_MIN_RECIPIENTS="2", CANARY_MIN_SLICE="1")
    layout = layout_default()
    layout.postal_address = "ACME Shop, Hauptstrasse 1, 10115 Berlin"
    layout.save()
    for i in range(3):
        Subscription.objects.create(
            subscriber=Subscriber.objects.create(email=f"r{i}@gmail.com"),
            mailing_list=mailing_list, status="confirmed", confirmed_at=timezone.now())
    campaign = Campaign.objects.create(name="Spring", subject="Hello", layout=layout, body="Hi")
    campaign.lists.add(mailing_list)
    campaign_schedule(campaign, timezone.now())
    campaign = campaign_start(campaign.id)

    report = campaign_report(campaign)
    assert report.canary["released"] == 1 and report.canary["held"] == 2
    text = admin_client.get(f"/admin/newsletter/campaign/{campaign.pk}/report/").content.decode()
    assert 'id="report-canary"' in text and "1 released, 2 waiting for their slice" in text


@pytest.mark.parametrize(("choice", "expected"), [("on", True), ("off", False),
                                                    ("auto", False)])
def test_the_campaign_chooses_its_canary(mailing_list, sending_env, choice,  # noqa: F811
                                         expected):
    from sending.models import CanaryRun

    sending_env(CANARY_MIN_SLICE="1")
    layout = layout_default()
    layout.postal_address = "ACME Shop, Hauptstrasse 1, 10115 Berlin"
    layout.save()
    for i in range(3):  # below CANARY_MIN_RECIPIENTS: "auto" sends to everyone at once
        Subscription.objects.create(
            subscriber=Subscriber.objects.create(email=f"r{i}@gmail.com"),
            mailing_list=mailing_list, status="confirmed", confirmed_at=timezone.now())
    campaign = Campaign.objects.create(name="Spring", subject="Hello", layout=layout,
                                       body="Hi", canary=choice)
    campaign.lists.add(mailing_list)
    campaign_schedule(campaign, timezone.now())
    campaign = campaign_start(campaign.id)
    assert CanaryRun.objects.filter(mailing=campaign.mailing).exists() is expected
