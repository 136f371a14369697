"""Campaign services: the sandbox, validation, the checklist, scheduling across time zones,
starting (once, frozen), the lifecycle from every state, and the report numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from newsletter.campaigns import (
    CampaignError,
    campaign_cancel,
    campaign_checklist,
    campaign_errors,
    campaign_parts,
    campaign_pause,
    campaign_preview,
    campaign_resume,
    campaign_save,
    campaign_schedule,
    campaign_start,
    campaign_unschedule,
    campaigns_start_due,
    layout_default,
    layout_validate,
    parse_local_time,
)
from newsletter.models import Campaign, Layout, MailingList, Subscriber, Subscription
from sending.models import Delivery, Mailing
from tests.sending.conftest import sending_env  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db
ADDRESS = "ACME Shop GmbH, Hauptstrasse 1, 10115 Berlin"


@pytest.fixture(autouse=True)
def no_mx_lookups(monkeypatch, sending_env):  # noqa: F811 - fixture imported above
    """Provider grouping by MX would ask public DNS; the ledger needs no network here."""
    from deliverability import conf

    monkeypatch.setattr(conf, "PROVIDER_MX_LOOKUP", False)


@pytest.fixture
def layout(db):
    layout = layout_default()
    layout.postal_address = ADDRESS
    layout.save()
    return layout


def subscribe(mailing_list, email, name="", status="confirmed", **attributes):
    subscriber, _ = Subscriber.objects.get_or_create(
        email=email, defaults={"name": name, "attributes": attributes})
    return Subscription.objects.create(subscriber=subscriber, mailing_list=mailing_list,
                                       status=status)


@pytest.fixture
def audience(mailing_list):
    return {
        "ann": subscribe(mailing_list, "ann@example.org", "Ann", city="Berlin"),
        "bob": subscribe(mailing_list, "bob@example.net", "Bob", city="Hamburg"),
        "pending": subscribe(mailing_list, "pat@example.org", "Pat", status="pending"),
        "gone": subscribe(mailing_list, "una@example.org", "Una", status="unsubscribed"),
    }


def make_campaign(mailing_list, layout, **fields) -> Campaign:
    values = {"name": "Spring", "subject": "Hello {{ subscriber.name|default:\"reader\" }}",
              "body": "# Hi {{ subscriber.name|default:\"reader\" }}\n\nNews from "
                      "{{ subscriber.attributes.city }}.", "layout": layout}
    values.update(fields)
    campaign = Campaign.objects.create(**values)
    campaign.lists.add(mailing_list)
    return campaign


@pytest.fixture
def campaign(mailing_list, layout, audience):
    return make_campaign(mailing_list, layout)


@pytest.fixture
def dkim_key(sending_env, tmp_path):  # noqa: F811 - fixture imported above
    from sending import dkim

    dkim.generate_rsa_key(tmp_path / "dkim", "shop.example", "pw1", bits=1024)


# --------------------------------------------------------------------------- the sandbox
@pytest.mark.parametrize("tag", [
    "{{ settings.SECRET_KEY }}", "{{ request.user }}", "{{ campaign.mailing }}",
    "{{ subscriber.__class__ }}x{{ os.environ }}", "{{ subscriber.name.__init__() }}",
    "{% load static %}{{ Subscriber }}",
])
def test_sandbox_refuses_names_outside_the_subscriber_fields(campaign, tag):
    campaign.body = f"Hi {tag}"
    errors = campaign_errors(campaign)
    assert "body" in errors and "Personalisation" in errors["body"]
    with pytest.raises(CampaignError, match="Fix the campaign first"):
        from newsletter.campaigns import campaign_test_send

        campaign_test_send(campaign, ["ann@example.org"])


def test_sandbox_walks_only_dictionary_keys(campaign, audience, settings):
    settings.SECRET_KEY = "top-secret-value-1234"
    campaign.body = ("A{{ subscriber.email.upper }}B{{ subscriber.attributes.__class__ }}"
                     "C{{ subscriber.name.__doc__ }}D")
    assert campaign_errors(campaign) == {}
    preview = campaign_preview(campaign, audience["ann"].id)
    assert "ABCD" in preview.text.replace("\n", "")
    assert "top-secret" not in preview.html + preview.text
    assert "class" not in preview.text


def test_a_missing_field_renders_empty_and_the_default_fills_in(campaign, audience):
    bob = audience["bob"].subscriber
    bob.name, bob.attributes = "", {}
    bob.save()
    preview = campaign_preview(campaign, audience["bob"].id)
    assert preview.subject == "Hello reader"
    assert "News from ." in preview.text
    assert "<h1" in preview.html and "Hi reader" in preview.html


def test_personalised_values_are_escaped_in_html_and_plain_in_text(campaign, audience):
    ann = audience["ann"].subscriber
    ann.name = "<script>x</script> & Co"
    ann.save()
    preview = campaign_preview(campaign, audience["ann"].id)
    assert "&lt;script&gt;" in preview.html and "<script>x" not in preview.html
    assert "<script>x</script> & Co" in preview.text


def test_bad_tag_reports_its_position(campaign):
    campaign.subject = "Hi {{ subscriber.name|upper }}"
    assert "at character 3" in campaign_errors(campaign)["subject"]


# --------------------------------------------------------------------------- content
def test_body_goes_into_the_layout_with_inlined_css_and_a_generated_text_part(campaign):
    parts = campaign_parts(campaign)
    assert 'style="' in parts.html and "<h1" in parts.html
    assert "{{ unsubscribe_url }}" in parts.html and ADDRESS in parts.html
    assert parts.text.startswith('Hi {{ subscriber.name|default:"reader" }}')
    assert "Unsubscribe ({{ unsubscribe_url }})" in parts.text and ADDRESS in parts.text


def test_an_edited_text_part_is_kept(campaign):
    campaign.text_body = "Plain hello\nUnsubscribe: {{ unsubscribe_url }}"
    assert campaign_parts(campaign).text == "Plain hello\nUnsubscribe: {{ unsubscribe_url }}\n"


def test_html_body_is_used_as_written(campaign):
    campaign.body_format = Campaign.BodyFormat.HTML
    campaign.body = "<p class='x'>Dear {{ subscriber.name }}</p>"
    assert "Dear {{ subscriber.name }}</p>" in campaign_parts(campaign).html


@pytest.mark.parametrize(("html", "address", "problem"), [
    ("<p>no slot {{ unsubscribe_url }} {{ postal_address }}</p>", ADDRESS, "{{ content }}"),
    ("{{ content }}{{ content }}", ADDRESS, "exactly once"),
    ("{{ unsubscribe_url }}{{ content }}<p>{{ postal_address }}</p>", ADDRESS,
     "unsubscribe link"),
    ("{{ content }}<a href='{{ unsubscribe_url }}'>u</a>", ADDRESS, "postal address"),
    ("{{ content }}<a href='{{ unsubscribe_url }}'>u</a>{{ postal_address }}", "",
     "no postal address"),
])
def test_layout_footer_must_hold_unsubscribe_link_and_postal_address(html, address, problem):
    problems = layout_validate(Layout(name="x", html=html, postal_address=address))
    assert any(problem in p for p in problems), problems


def test_the_shipped_layout_is_valid_once_the_address_is_set(layout):
    assert layout_validate(layout) == []
    assert 'name="viewport"' in layout.html and "@media" in layout.html


# --------------------------------------------------------------------------- checklist
def test_checklist_passes_for_a_complete_campaign(campaign, dkim_key):
    checks = campaign_checklist(campaign)
    assert all(c.ok for c in checks), [(c.name, c.detail) for c in checks if not c.ok]
    assert any("2 confirmed subscribers" in c.detail for c in checks)


def test_checklist_warns_without_dkim_but_does_not_block(campaign):
    checks = campaign_checklist(campaign)
    dkim = next(c for c in checks if c.name.startswith("DKIM"))
    assert not dkim.ok and not dkim.blocking and dkim.level == "warning"
    assert "shop.example" in dkim.name
    campaign_schedule(campaign, timezone.now() + timedelta(hours=1))  # allowed


def test_checklist_blocks_missing_subject_unsubscribe_link_and_empty_audience(
        campaign, mailing_list, layout):
    campaign.subject = ""
    campaign.text_body = "Plain text without the link"
    campaign.save()
    campaign.lists.set([MailingList.objects.create(name="Empty", slug="empty")])
    failing = {c.name for c in campaign_checklist(campaign) if not c.ok and c.blocking}
    assert failing == {"Subject is not empty", "Unsubscribe link present (HTML and text)",
                       "Audience is not empty"}
    with pytest.raises(CampaignError, match=r"Subject is not empty.*Audience is not empty"):
        campaign_schedule(campaign, timezone.now() + timedelta(hours=1))
    assert Campaign.objects.get(pk=campaign.pk).state == "draft"


def test_checklist_blocks_a_layout_without_postal_address(campaign, layout):
    layout.postal_address = ""
    layout.save()
    failing = [c for c in campaign_checklist(campaign) if not c.ok and c.blocking]
    assert [c.name for c in failing] == [
        "Layout “Default (responsive)” has the unsubscribe link and postal address"]


# --------------------------------------------------------------------------- audience + start
def test_start_snapshots_confirmed_subscribers_once_and_freezes_the_audience(
        campaign, mailing_list, audience):
    campaign_schedule(campaign, timezone.now())
    started = campaign_start(campaign.id)
    assert started.state == "sending" and started.mailing.state == "sending"
    assert campaign_start(campaign.id) is None  # a second beat finds nothing to claim
    assert campaigns_start_due() == 0
    assert set(Delivery.objects.values_list("address", flat=True)) == {
        "ann@example.org", "bob@example.net"}
    mailing = started.mailing
    assert mailing.reference == f"campaign:{campaign.id}"
    assert mailing.from_email == "news@shop.example"
    assert "{{ unsubscribe_url }}" in mailing.html_template
    assert mailing.subject_template == campaign.subject
    subscribe(mailing_list, "late@example.org", "Late")
    assert Delivery.objects.filter(mailing=mailing).count() == 2  # frozen at start


def test_segment_attribute_filter_exclusion_list_and_dates(campaign, mailing_list, audience):
    vip = MailingList.objects.create(name="VIP", slug="vip")
    subscribe(vip, "bob@example.net")
    campaign.exclude_lists.add(vip)
    from newsletter.campaigns import campaign_audience

    assert set(campaign_audience(campaign).values_list("subscriber__email", flat=True)) == {
        "ann@example.org"}
    campaign.exclude_lists.clear()
    campaign.segment_attributes = {"city": "Hamburg"}
    assert set(campaign_audience(campaign).values_list("subscriber__email", flat=True)) == {
        "bob@example.net"}
    campaign.segment_attributes = {}
    Subscription.objects.filter(pk=audience["ann"].pk).update(
        created_at=datetime(2024, 1, 1, tzinfo=UTC))
    campaign.subscribed_after = datetime(2025, 1, 1, tzinfo=UTC)
    assert set(campaign_audience(campaign).values_list("subscriber__email", flat=True)) == {
        "bob@example.net"}
    campaign.subscribed_after, campaign.subscribed_before = None, datetime(2025, 1, 1,
                                                                           tzinfo=UTC)
    assert set(campaign_audience(campaign).values_list("subscriber__email", flat=True)) == {
        "ann@example.org"}


def test_start_with_segment_builds_the_ledger_from_the_filtered_query(campaign):
    campaign.segment_attributes = {"city": "Berlin"}
    campaign.save()
    campaign_schedule(campaign, timezone.now())
    campaign_start(campaign.id)
    assert list(Delivery.objects.values_list("address", flat=True)) == ["ann@example.org"]


def test_a_campaign_that_fails_its_checklist_at_start_goes_back_to_draft(campaign, audience):
    campaign_schedule(campaign, timezone.now())
    Subscription.objects.update(status="unsubscribed")  # everyone left meanwhile
    result = campaign_start(campaign.id)
    assert result.state == "draft" and result.mailing is None
    assert "Audience is not empty" in result.last_error
    assert not Mailing.objects.exists()


# --------------------------------------------------------------------------- time zones
def test_schedule_in_new_york_starts_at_that_instant_in_utc(campaign):
    when = parse_local_time("2031-03-31T09:00", "America/New_York")  # EDT, UTC-4
    assert when == datetime(2031, 3, 31, 13, 0, tzinfo=UTC)
    campaign_schedule(campaign, when, "America/New_York")
    campaign.refresh_from_db()
    assert campaign.scheduled_at == datetime(2031, 3, 31, 13, 0, tzinfo=UTC)
    assert campaign.schedule_timezone == "America/New_York"
    assert campaigns_start_due(now=datetime(2031, 3, 31, 12, 59, 59, tzinfo=UTC)) == 0
    assert Campaign.objects.get(pk=campaign.pk).state == "scheduled"
    assert campaigns_start_due(now=datetime(2031, 3, 31, 13, 0, tzinfo=UTC)) == 1
    assert Campaign.objects.get(pk=campaign.pk).state == "sending"


def test_schedule_in_tokyo_and_in_winter_time(campaign):
    assert parse_local_time("2031-01-15T08:30", "Asia/Tokyo") == datetime(
        2031, 1, 14, 23, 30, tzinfo=UTC)
    assert parse_local_time("2031-01-15T08:30", "Europe/Berlin") == datetime(
        2031, 1, 15, 7, 30, tzinfo=UTC)


def test_a_time_skipped_by_daylight_saving_or_an_unknown_zone_is_refused():
    with pytest.raises(CampaignError, match="does not exist"):
        parse_local_time("2031-03-30T02:30", "Europe/Berlin")
    with pytest.raises(CampaignError, match="Unknown time zone"):
        parse_local_time("2031-03-30T10:00", "Mars/Olympus")
    with pytest.raises(CampaignError, match="YYYY-MM-DD"):
        parse_local_time("tomorrow", "UTC")


def test_a_time_in_the_past_is_refused(campaign):
    with pytest.raises(CampaignError, match="has passed"):
        campaign_schedule(campaign, timezone.now() - timedelta(hours=1))


# --------------------------------------------------------------------------- lifecycle
def _in_state(campaign, state):
    if state == "draft":
        return campaign
    if state == "cancelled":
        return campaign_cancel(campaign)
    if state == "scheduled":
        return campaign_schedule(campaign, timezone.now() + timedelta(hours=2))
    campaign_schedule(campaign, timezone.now())
    campaign = campaign_start(campaign.id)
    if state == "paused":
        campaign = campaign_pause(campaign)
    elif state == "sent":
        Delivery.objects.update(state="sent")
        from sending.services import mailings_finish

        mailings_finish()
        from newsletter.campaigns import campaign_sync

        campaign = campaign_sync(campaign)
    assert campaign.state == state
    return campaign


LIFECYCLE = {
    # (state, action): resulting state, or the start of the refusal
    ("draft", "pause"): "cannot be paused: it has not started",
    ("draft", "resume"): "cannot be resumed: only a paused campaign",
    ("draft", "cancel"): "cancelled",
    ("scheduled", "pause"): "cannot be paused: it has not started; unschedule",
    ("scheduled", "resume"): "cannot be resumed: it is scheduled",
    ("scheduled", "cancel"): "cancelled",
    ("sending", "pause"): "paused",
    ("sending", "resume"): "cannot be resumed: it is sending already",
    ("sending", "cancel"): "cancelled",
    ("paused", "pause"): "cannot be paused: it is already paused",
    ("paused", "resume"): "sending",
    ("paused", "cancel"): "cancelled",
    ("sent", "pause"): "cannot be paused: only a sending campaign",
    ("sent", "resume"): "cannot be resumed: only a paused campaign",
    ("sent", "cancel"): "cannot be cancelled: everything has been sent",
    ("cancelled", "pause"): "cannot be paused",
    ("cancelled", "resume"): "cannot be resumed",
    ("cancelled", "cancel"): "cannot be cancelled: it is already cancelled",
}


@pytest.mark.parametrize(("state", "action"), list(LIFECYCLE))
def test_pause_resume_cancel_from_each_state(campaign, state, action):
    campaign = _in_state(campaign, state)
    verb = {"pause": campaign_pause, "resume": campaign_resume, "cancel": campaign_cancel}
    expected = LIFECYCLE[(state, action)]
    if " " not in expected:
        result = verb[action](campaign)
        assert result.state == expected
        if result.mailing_id:
            assert Mailing.objects.get(pk=result.mailing_id).state == {
                "paused": "paused", "sending": "sending", "cancelled": "cancelled"}[expected]
        if expected == "cancelled" and result.mailing_id:
            assert set(Delivery.objects.values_list("state", flat=True)) == {"cancelled"}
    else:
        with pytest.raises(CampaignError, match=expected):
            verb[action](campaign)
        assert Campaign.objects.get(pk=campaign.pk).state == state


def test_a_guardrail_pause_shows_on_the_campaign(campaign):
    campaign = _in_state(campaign, "sending")
    from sending.lifecycle import mailing_pause

    mailing_pause(campaign.mailing, reason="paused by the guardrail: 9 complaints")
    campaigns_start_due()
    assert Campaign.objects.get(pk=campaign.pk).state == "paused"


def test_unschedule_makes_a_draft_again(campaign):
    campaign = _in_state(campaign, "scheduled")
    assert campaign_unschedule(campaign).state == "draft"
    with pytest.raises(CampaignError, match="not scheduled"):
        campaign_unschedule(campaign)


# --------------------------------------------------------------------------- editing
@pytest.mark.parametrize("state", ["sending", "paused"])
def test_editing_is_refused_while_sending(campaign, state):
    campaign = _in_state(campaign, state)
    campaign.subject = "Changed"
    with pytest.raises(CampaignError, match="can no longer be edited: what it sends was fixed"):
        campaign_save(campaign)
    assert Campaign.objects.get(pk=campaign.pk).subject != "Changed"


def test_a_draft_and_a_scheduled_campaign_can_be_edited(campaign):
    campaign.subject = "Changed"
    campaign_save(campaign)
    campaign = _in_state(campaign, "scheduled")
    campaign.subject = "Changed again"
    campaign_save(campaign)
    assert Campaign.objects.get(pk=campaign.pk).subject == "Changed again"


# --------------------------------------------------------------------------- pre-flight
@pytest.fixture
def dns_for_shop(monkeypatch):
    """A local DNS server where the sending domain has SPF but no DMARC record."""
    from tests.dns_server import LocalDNS

    with LocalDNS(['shop.example. 60 IN TXT "v=spf1 -all"']) as server:
        monkeypatch.setattr("deliverability.conf.DNS_SERVERS", [server.address])
        yield


def test_preflight_warns_but_starts_by_default(campaign, audience, dns_for_shop, monkeypatch):
    from newsletter import conf

    monkeypatch.setattr(conf, "PREFLIGHT_BEFORE_START", "warn")
    campaign_schedule(campaign, timezone.now())
    result = campaign_start(campaign.id)
    assert result.state == "sending" and result.mailing is not None
    assert result.last_error.startswith("Pre-flight warnings (sent anyway)")
    assert "dmarc" in result.last_error


def test_preflight_in_block_mode_keeps_the_campaign_from_starting(campaign, audience,
                                                                  dns_for_shop, monkeypatch):
    from newsletter import conf

    monkeypatch.setattr(conf, "PREFLIGHT_BEFORE_START", "block")
    campaign_schedule(campaign, timezone.now())
    result = campaign_start(campaign.id)
    assert result.state == "draft" and result.mailing is None
    assert "pre-flight checks failed" in result.last_error and "DMARC" in result.last_error
    assert not Mailing.objects.exists()
