# ruff: noqa: F811 - the fixtures imported from test_campaigns are parameters here
"""The engagement report (clicks per link, human vs machine, timeline, click-through per
provider), the public archive and its feeds, and the machine-hit rules data."""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta
from xml.etree import ElementTree

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from newsletter import tracking
from newsletter.campaign_report import campaign_report
from newsletter.models import Campaign, MailingList
from newsletter.tracking_rules import RULES_PATH, parse, rules
from sending.models import Delivery
from tests.newsletter.test_campaigns import (  # noqa: F401 - fixtures
    audience,
    layout,
    no_mx_lookups,
    subscribe,
)
from tests.newsletter.test_tracking import (
    BROWSER,
    click_urls,
    drain,
    path_of,
    rendered,
    sent_long_ago,
    site,  # noqa: F401 - fixture
    started,
)
from tests.sending.conftest import sending_env  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------- the report
def test_report_counts_clicks_per_link_people_apart_from_machines(
        client, mailing_list, layout, audience):
    campaign = started(mailing_list, layout, track_clicks=True, track_opens=True,
                       body="[a](https://shop.example/a) [b](https://shop.example/b) "
                            "[c](https://shop.example/c)")
    sent_long_ago(campaign)
    ann_html, _ = rendered(campaign, audience["ann"])
    client.get(path_of(click_urls(ann_html)[1]), HTTP_USER_AGENT=BROWSER)
    client.get(path_of(click_urls(ann_html)[1]), HTTP_USER_AGENT=BROWSER)  # again, later
    pixel = re.search(r'src="(http://testserver/o/[^"]+)"', ann_html).group(1)
    client.get(path_of(pixel), HTTP_USER_AGENT=BROWSER)
    bob_html, _ = rendered(campaign, audience["bob"])
    for url in click_urls(bob_html):  # a gateway following everything
        client.get(path_of(url), HTTP_USER_AGENT=BROWSER)
    client.get(path_of(re.search(r'src="(http://testserver/o/[^"]+)"', bob_html).group(1)),
               HTTP_USER_AGENT="Mozilla/5.0")
    drain()
    report = campaign_report(campaign)
    t = report.tracking
    assert (t.clicks_human, t.clicks_machine, t.unique_clickers) == (2, 3, 1)
    assert (t.opens_human, t.opens_machine, t.unique_openers) == (1, 1, 1)
    assert [(link.url, link.human, link.machine) for link in t.links] == [
        ("https://shop.example/b", 2, 1), ("https://shop.example/a", 0, 1),
        ("https://shop.example/c", 0, 1)]
    assert report.click_through == "50.0 %"  # one person of two recipients
    provider = Delivery.objects.get(subscription_id=audience["ann"].id).provider
    row = next(r for r in report.providers if r.provider == provider)
    assert row.clickers == 1
    # The timeline puts the hits in the hour after the start (now, since sent "long ago"
    # only moved the delivery times).
    hour = int((timezone.now() - campaign.mailing.started_at) / timedelta(hours=1))
    bar = report.tracking.bars[hour]
    assert (bar.human_clicks, bar.human_opens, bar.machine) == (2, 1, 4)
    assert dict((label, (o, c)) for label, o, c in t.reasons_table) == {
        "Apple Mail Privacy Protection": (1, 0),
        "every link within a second (link scanner)": (0, 3)}


def test_report_page_shows_engagement_to_editors(mailing_list, layout, audience):
    from newsletter.campaign_roles import editor_group_ensure

    campaign = started(mailing_list, layout, track_clicks=True)
    sent_long_ago(campaign)
    html, _ = rendered(campaign, audience["ann"])
    Client().get(path_of(click_urls(html)[0]), HTTP_USER_AGENT=BROWSER)
    drain()
    editor = get_user_model().objects.create_user("edna", "e@shop.example", "pw",
                                                  is_staff=True)
    editor.groups.add(editor_group_ensure())
    browser = Client()
    browser.force_login(editor)
    page = browser.get(f"/admin/newsletter/campaign/{campaign.id}/report/").content.decode()
    assert 'id="report-links"' in page and "https://shop.example/spring" in page
    assert 'id="report-timeline"' in page and "<rect" in page
    assert "Click-through" in page and "counts only" in page


def test_report_without_tracking_has_no_engagement_section(mailing_list, layout, audience):
    campaign = started(mailing_list, layout)
    report = campaign_report(campaign)
    assert not report.tracking.enabled and report.tracking.links == []
    admin = get_user_model().objects.create_superuser("root", "r@shop.example", "pw")
    browser = Client()
    browser.force_login(admin)
    page = browser.get(f"/admin/newsletter/campaign/{campaign.id}/report/").content.decode()
    assert "Engagement" not in page and "Click-through" not in page
    assert 'id="report-providers"' in page


# --------------------------------------------------------------------------- the archive
@pytest.fixture
def public_list(mailing_list):
    mailing_list.archive_public = True
    mailing_list.personalisation_defaults = {"name": "dear reader", "city": "your town"}
    mailing_list.save()
    return mailing_list


@pytest.mark.django_db(transaction=True)  # two starts, each committed (see test_tracking)
def test_archive_shows_public_campaigns_without_any_personal_data(
        client, public_list, layout, audience):
    campaign = started(public_list, layout, archive_public=True, track_clicks=True,
                       track_opens=True, subject="News for {{ subscriber.name }}",
                       body="# Hi {{ subscriber.name }} in {{ subscriber.attributes.city }}\n\n"
                            "Mail {{ subscriber.email }}. [Spring](https://shop.example/spring)")
    hidden = started(public_list, layout, name="Internal", subject="Internal memo")
    index = client.get(f"/archive/{public_list.slug}/")
    assert index.status_code == 200
    page = index.content.decode()
    assert "News for dear reader" in page and "Internal memo" not in page
    assert 'name="viewport"' in page  # the mobile-first base of the public pages
    issue = client.get(f"/archive/{public_list.slug}/{campaign.id}/")
    body = issue.content.decode()
    assert "Hi dear reader in your town" in body
    assert 'href="https://shop.example/spring"' in body  # straight to the target
    for subscription in audience.values():
        person = subscription.subscriber
        assert person.email not in body and person.name not in body
    assert "/c/" not in body and "/o/" not in body and "/u/" not in body and "/p/" not in body
    assert "sandbox" in issue["Content-Security-Policy"]
    assert client.get(f"/archive/{public_list.slug}/{hidden.id}/").status_code == 404


def test_archive_is_off_unless_the_list_has_it_and_is_public(client, mailing_list, layout,
                                                             audience):
    campaign = started(mailing_list, layout, archive_public=True)
    assert client.get(f"/archive/{mailing_list.slug}/").status_code == 404
    mailing_list.archive_public = True
    mailing_list.public = False
    mailing_list.save()
    assert client.get(f"/archive/{mailing_list.slug}/").status_code == 404
    assert client.get(f"/archive/{mailing_list.slug}/{campaign.id}/").status_code == 404
    other = MailingList.objects.create(name="Other", slug="other", archive_public=True)
    assert client.get(f"/archive/other/{campaign.id}/").status_code == 404  # not its list
    assert other.public


def test_a_draft_marked_public_is_not_in_the_archive(client, public_list, layout, audience):
    draft = Campaign.objects.create(name="Draft", subject="Not yet", body="x",
                                    archive_public=True, layout=layout)
    draft.lists.add(public_list)
    assert "Not yet" not in client.get(f"/archive/{public_list.slug}/").content.decode()
    assert client.get(f"/archive/{public_list.slug}/{draft.id}/").status_code == 404


@pytest.mark.parametrize("feed, item_tag", [("rss", "item"),
                                            ("atom", "{http://www.w3.org/2005/Atom}entry")])
def test_feeds_list_the_public_issues(client, public_list, layout, audience, feed, item_tag):
    campaign = started(public_list, layout, archive_public=True,
                       subject="Spring for {{ subscriber.name }}", preheader="Fresh things")
    response = client.get(f"/archive/{public_list.slug}/{feed}/")
    assert response.status_code == 200
    root = ElementTree.fromstring(response.content)
    items = list(root.iter(item_tag))
    assert len(items) == 1
    text = response.content.decode()
    assert "Spring for dear reader" in text and "Fresh things" in text
    assert f"/archive/{public_list.slug}/{campaign.id}/" in text
    assert "ann@example.org" not in text and "Ann" not in text


# --------------------------------------------------------------------------- rules data
def test_every_rule_has_a_source_and_compiles():
    data = tomllib.loads(RULES_PATH.read_text())
    assert data["version"] and data["timing"]["source"]
    for table in ("user_agent", "ip_range"):
        for rule in data[table]:
            assert rule["source"].strip(), rule["id"]
    compiled = rules()
    assert compiled.agents and compiled.ranges


def test_a_rule_without_a_source_is_refused():
    with pytest.raises(ValueError, match="no source"):
        parse({"user_agent": [{"id": "x", "pattern": "x", "reason": "scanner_ua"}]})


@pytest.mark.parametrize("agent, kind, expected", [
    ("Mozilla/5.0", "open", "apple_mpp"),
    ("Mozilla/5.0", "click", ""),
    ("", "click", "no_user_agent"),
    ("curl/8.4.0", "click", "scanner_ua"),
    ("Mozilla/5.0 (compatible; Barracuda Sentinel)", "click", "scanner_ua"),
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "click", "scanner_ua"),
    (BROWSER, "click", ""),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", "click", ""),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0 Safari/537.36 Edg/124.0", "open", ""),
])
def test_user_agents_are_judged_by_the_rules(agent, kind, expected):
    assert rules().judge(kind, agent, "198.51.100.7") == expected


def test_a_proxy_ranges_file_adds_ranges_for_opens(tmp_path, monkeypatch):
    from newsletter import conf

    csv = tmp_path / "egress.csv"
    csv.write_text("172.224.224.0/27,GB,GB-EN,London,\n2a02:26f7:b3c0:4000::/64,DE,,,\n")
    monkeypatch.setattr(conf, "TRACKING_PROXY_RANGES_FILE", str(csv))
    rules.cache_clear()
    try:
        assert rules().judge("open", BROWSER, "172.224.224.9") == "apple_mpp"
        assert rules().judge("open", BROWSER, "2a02:26f7:b3c0:4000::1") == "apple_mpp"
        assert rules().judge("click", BROWSER, "172.224.224.9") == ""
    finally:
        rules.cache_clear()


def test_hits_of_a_deleted_campaign_are_dropped(client, mailing_list, layout, audience,
                                                 redis_client):
    campaign = started(mailing_list, layout, track_clicks=True)
    html, _ = rendered(campaign, audience["ann"])
    client.get(path_of(click_urls(html)[0]), HTTP_USER_AGENT=BROWSER)
    Campaign.objects.filter(pk=campaign.pk).delete()
    assert drain() == 0
    assert redis_client.llen(tracking.HITS_KEY) == 0
