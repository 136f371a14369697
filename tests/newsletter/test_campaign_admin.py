"""The campaign admin as an editor uses it: roles, CSRF, the admin log, refusals, the report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.db.models import F
from django.test import Client
from django.utils import timezone

from deliverability.models import BounceEvent, InboundMessage
from newsletter.campaign_report import campaign_report
from newsletter.campaign_roles import editor_group_ensure
from newsletter.campaigns import campaign_schedule, campaign_start, layout_default
from newsletter.models import Campaign, ConsentRecord, Subscriber, Subscription
from sending.models import Delivery, DeliveryAttempt, Mailing, TransactionalEmail
from tests.sending.conftest import sending_env  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def quiet(monkeypatch, sending_env):  # noqa: F811 - fixture imported above
    from deliverability import conf

    monkeypatch.setattr(conf, "PROVIDER_MX_LOOKUP", False)


def _user(username, *, group=True, perms=()):
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user(username, f"{username}@shop.example", "pw",
                                                is_staff=True)
    if group:
        user.groups.add(editor_group_ensure())
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


class Browser:
    """A client that must send the CSRF token, as a real browser form does."""

    def __init__(self, user):
        self.client = Client(enforce_csrf_checks=True)
        self.client.force_login(user)

    def get(self, url, **kwargs):
        return self.client.get(url, **kwargs)

    def post(self, url, data, csrf=True, **kwargs):
        if csrf:
            self.client.get("/admin/")  # sets the CSRF cookie
            data = {**data, "csrfmiddlewaretoken": self.client.cookies["csrftoken"].value}
        return self.client.post(url, data, **kwargs)


@pytest.fixture
def editor(db):
    return Browser(_user("edna"))


@pytest.fixture
def setup(mailing_list):
    layout = layout_default()
    layout.postal_address = "ACME Shop, Hauptstrasse 1, 10115 Berlin"
    layout.save()
    ann = Subscriber.objects.create(email="ann@example.org", name="Ann",
                                    attributes={"city": "Berlin"})
    sub = Subscription.objects.create(subscriber=ann, mailing_list=mailing_list,
                                      status="confirmed")
    campaign = Campaign.objects.create(
        name="Spring", subject="Hello {{ subscriber.name }}", layout=layout,
        body="Greetings to {{ subscriber.attributes.city }}!")
    campaign.lists.add(mailing_list)
    return {"campaign": campaign, "subscription": sub, "layout": layout}


def _form(campaign_or_none, mailing_list, **changes):
    data = {"name": "Autumn", "subject": "Hi {{ subscriber.name }}", "preheader": "",
            "layout": layout_default().pk, "body_format": "markdown",
            "body": "Hello **{{ subscriber.name|default:\"you\" }}**", "text_body": "",
            "from_name": "", "from_email": "", "reply_to": "", "lists": [mailing_list.pk],
            "segment_attributes": "{}", "subscribed_after_0": "", "subscribed_after_1": "",
            "subscribed_before_0": "", "subscribed_before_1": "", "tags": "autumn, offers",
            "pool": "", "canary": "auto", "_continue": "1"}
    data.update(changes)
    return data


def test_editor_composes_a_campaign_and_the_addition_is_logged(editor, mailing_list, setup):
    page = editor.get("/admin/newsletter/campaign/add/")
    assert page.status_code == 200
    response = editor.post("/admin/newsletter/campaign/add/", _form(None, mailing_list))
    assert response.status_code == 302, response.content.decode()[:3000]
    campaign = Campaign.objects.get(name="Autumn")
    assert campaign.tag_list == ["autumn", "offers"] and campaign.created_by.username == "edna"
    assert LogEntry.objects.filter(object_id=str(campaign.pk), action_flag=ADDITION).exists()
    page = editor.get(f"/admin/newsletter/campaign/{campaign.pk}/change/")
    html = page.content.decode()
    assert 'id="checklist"' in html and 'id="live-phone"' in html
    assert 'data-phone-width="390"' in html and 'data-desktop-width="760"' in html
    assert "Send test" in html and "Schedule" in html


def test_a_bad_personalisation_tag_is_refused_with_its_position(editor, mailing_list, setup):
    response = editor.post("/admin/newsletter/campaign/add/", _form(
        None, mailing_list, body="Hi {{ settings.SECRET_KEY }}"))
    assert response.status_code == 200
    assert "unknown field &#x27;settings&#x27; at character 3" in response.content.decode()
    assert not Campaign.objects.filter(name="Autumn").exists()


def test_requests_without_the_csrf_token_are_refused(editor, setup):
    campaign = setup["campaign"]
    response = editor.post(f"/admin/newsletter/campaign/{campaign.pk}/action/",
                           {"action": "cancel"}, csrf=False)
    assert response.status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).state == "draft"


def test_preview_as_a_subscriber_in_a_same_origin_frame(editor, setup):
    campaign, sub = setup["campaign"], setup["subscription"]
    page = editor.get(f"/admin/newsletter/campaign/{campaign.pk}/preview/?preview_as={sub.id}")
    html = page.content.decode()
    assert "Hello Ann" in html and "Greetings to Berlin!" in html  # subject and text part
    frame = editor.get(f"/admin/newsletter/campaign/{campaign.pk}/preview/frame/"
                       f"?preview_as={sub.id}")
    assert frame["X-Frame-Options"] == "SAMEORIGIN" and "sandbox" in frame[
        "Content-Security-Policy"]
    assert "Greetings to Berlin!" in frame.content.decode()
    # A click in a preview never unsubscribes the person: test links, not theirs.
    assert "/u/" not in frame.content.decode() and "/t/" in frame.content.decode()
    live = editor.post("/admin/newsletter/campaign/live-preview/", {
        "campaign": campaign.pk, "subject": "Hi", "body": "[Leave]({{ unsubscribe_url }})",
        "body_format": "markdown", "preview_as": sub.id})
    assert live.status_code == 200, live.content
    assert "/t/" in live.json()["html"] and "/u/" not in live.json()["html"] + live.json()["text"]


def test_test_send_goes_through_the_transactional_pool_marked_test(editor, setup):
    campaign, sub = setup["campaign"], setup["subscription"]
    response = editor.post(f"/admin/newsletter/campaign/{campaign.pk}/action/",
                           {"action": "test", "addresses": "qa@shop.example",
                            "preview_as": sub.id})
    assert response.status_code == 302
    mail = TransactionalEmail.objects.get()
    assert mail.to == "qa@shop.example" and mail.subject == "[TEST] Hello Ann"
    assert mail.purpose == "test" and "Greetings to Berlin!" in mail.body_text
    assert LogEntry.objects.filter(change_message__startswith="[test]").exists()


def test_too_many_or_bad_test_addresses_are_refused(editor, setup):
    campaign = setup["campaign"]
    url = f"/admin/newsletter/campaign/{campaign.pk}/action/"
    response = editor.post(url, {"action": "test", "addresses": "not-an-address"},
                           follow=True)
    assert "is not a valid e-mail address" in response.content.decode()
    response = editor.post(url, {"action": "test",
                                 "addresses": ",".join(f"a{i}@x.org" for i in range(6))},
                           follow=True)
    assert "at most 5 addresses" in response.content.decode()
    assert not TransactionalEmail.objects.exists()


def test_schedule_in_the_editors_time_zone_is_stored_in_utc_and_logged(editor, setup):
    campaign = setup["campaign"]
    response = editor.post(f"/admin/newsletter/campaign/{campaign.pk}/action/",
                           {"action": "schedule", "when": "2031-07-01T09:15",
                            "timezone": "Europe/Berlin"}, follow=True)
    assert "Scheduled for 2031-07-01 09:15 Europe/Berlin" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.state == "scheduled"
    assert campaign.scheduled_at == datetime(2031, 7, 1, 7, 15, tzinfo=UTC)
    entry = LogEntry.objects.get(change_message__startswith="[schedule]")
    assert entry.action_flag == CHANGE and entry.user.username == "edna"


def test_pause_resume_and_cancel_buttons(editor, setup):
    campaign = setup["campaign"]
    url = f"/admin/newsletter/campaign/{campaign.pk}/action/"
    response = editor.post(url, {"action": "pause"}, follow=True)
    assert "A draft campaign cannot be paused" in response.content.decode()
    campaign_schedule(campaign, timezone.now())
    campaign_start(campaign.id)
    editor.post(url, {"action": "pause"})
    assert Campaign.objects.get(pk=campaign.pk).state == "paused"
    page = editor.get(f"/admin/newsletter/campaign/{campaign.pk}/change/").content.decode()
    assert "Paused: paused by edna" in page and 'value="resume"' in page
    editor.post(url, {"action": "resume"})
    assert Campaign.objects.get(pk=campaign.pk).state == "sending"
    editor.post(url, {"action": "cancel"})
    assert Campaign.objects.get(pk=campaign.pk).state == "cancelled"
    assert [e.change_message.split("]")[0] for e in LogEntry.objects.order_by("id")] == [
        "[pause", "[resume", "[cancel"]


def test_editing_a_sending_campaign_is_refused_with_a_clear_message(editor, mailing_list,
                                                                   setup):
    campaign = setup["campaign"]
    campaign_schedule(campaign, timezone.now())
    campaign_start(campaign.id)
    page = editor.get(f"/admin/newsletter/campaign/{campaign.pk}/change/").content.decode()
    assert "it can no longer be edited" in page
    response = editor.post(f"/admin/newsletter/campaign/{campaign.pk}/change/",
                           _form(campaign, mailing_list, subject="Changed"))
    assert Campaign.objects.get(pk=campaign.pk).subject == "Hello {{ subscriber.name }}"
    assert response.status_code == 200
    assert "This campaign is sending and can no longer be edited" in response.content.decode()


def test_editors_cannot_manage_relays_sender_settings_or_breakers(editor, mailing_list):
    for url in ("/admin/sending/relaypool/", "/admin/sending/relaypool/add/",
                "/admin/deliverability/breakerruleoverride/",
                "/admin/deliverability/suppression/"):
        assert editor.get(url).status_code == 403, url
    response = editor.post(f"/admin/newsletter/mailinglist/{mailing_list.pk}/change/",
                           {"name": "x", "slug": "x", "from_email": "evil@x.org"})
    assert response.status_code == 403
    assert editor.post("/admin/breakers/action/", {"action": "resume", "provider": "gmail",
                                                   "pool": "bulk"}).status_code == 403
    assert editor.get("/admin/newsletter/campaign/").status_code == 200


def test_scheduling_needs_the_schedule_permission(mailing_list, setup):
    writer = Browser(_user("wendy", group=False, perms=("view_campaign", "change_campaign")))
    campaign = setup["campaign"]
    response = writer.post(f"/admin/newsletter/campaign/{campaign.pk}/action/",
                           {"action": "schedule", "now": "1", "timezone": "UTC"})
    assert response.status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).state == "draft"


# --------------------------------------------------------------------------- the report
def test_report_numbers(editor, mailing_list, setup):
    campaign = setup["campaign"]
    for i in range(5):
        Subscription.objects.create(
            subscriber=Subscriber.objects.create(email=f"r{i}@gmail.com", name=f"R{i}"),
            mailing_list=mailing_list, status="confirmed")
    campaign_schedule(campaign, timezone.now())
    campaign = campaign_start(campaign.id)
    mailing = campaign.mailing
    assert mailing.recipients == 6
    rows = {d.address: d for d in Delivery.objects.filter(mailing=mailing)}
    now = timezone.now()

    def answer(address, state, kind="", code=250):
        delivery = rows[address]
        Delivery.objects.filter(pk=delivery.pk).update(state=state, attempts=F("attempts") + 1)
        DeliveryAttempt.objects.create(delivery=delivery, at=now, code=code, kind=kind,
                                       outcome=state)

    Delivery.objects.filter(mailing=mailing).update(provider="gmail")
    Delivery.objects.filter(address="ann@example.org").update(provider="example.org")
    answer("ann@example.org", "sent", "delivered")
    answer("r0@gmail.com", "sent", "delivered")
    answer("r1@gmail.com", "sent", "delivered")
    answer("r2@gmail.com", "bounced", "hard", 550)
    answer("r3@gmail.com", "deferred", "block", 421)
    answer("r3@gmail.com", "deferred", "block", 421)  # twice: still one delivery
    message = InboundMessage.objects.create(key="k1", raw_compressed=b"", source="smtp")
    BounceEvent.objects.create(message=message, position=0, mailing_id=mailing.id,
                               delivery_id=rows["r1@gmail.com"].id, kind="complaint",
                               provider="gmail")
    BounceEvent.objects.create(message=message, position=1, mailing_id=mailing.id,
                               delivery_id=rows["r0@gmail.com"].id, kind="soft",
                               provider="gmail")
    BounceEvent.objects.create(message=message, position=2, mailing_id=mailing.id + 1,
                               kind="complaint", provider="gmail")  # another mailing
    ConsentRecord.objects.create(event="unsubscribe", source="email_link",
                                 subscription_id=rows["r1@gmail.com"].subscription_id,
                                 address_sha256="x", created_at=now + timedelta(seconds=1))
    ConsentRecord.objects.create(event="unsubscribe", source="email_link",
                                 subscription_id=rows["r0@gmail.com"].subscription_id,
                                 address_sha256="x", created_at=now - timedelta(days=1))

    report = campaign_report(campaign)
    assert report.audience == 6 and report.sent == 3 and report.deferred == 1
    # waiting: not tried yet; deferred: tried, retried (sending.delivery_progress)
    assert report.states["queued"] == 1 and report.waiting == 1
    assert report.bounces == {"hard": 1, "soft": 1, "block": 1}
    assert report.complaints == 1 and report.unsubscribes == 1
    by_provider = {r.provider: r for r in report.providers}
    assert by_provider["gmail"].states["sent"] == 2 and by_provider["gmail"].total == 5
    assert by_provider["gmail"].bounces == {"hard": 1, "soft": 1, "block": 1}
    assert by_provider["gmail"].complaints == 1
    assert by_provider["example.org"].states["sent"] == 1
    assert report.percent_done == 67

    page = editor.get(f"/admin/newsletter/campaign/{campaign.pk}/report/").content.decode()
    assert 'http-equiv="refresh"' in page  # live while sending
    assert '<div class="pw-number" id="n-sent"><strong>3</strong>' in page
    assert '<div class="pw-number" id="n-complaints"><strong>1</strong>' in page
    Mailing.objects.filter(pk=mailing.pk).update(state="done")
    page = editor.get(f"/admin/newsletter/campaign/{campaign.pk}/report/").content.decode()
    assert 'http-equiv="refresh"' not in page and "Sent</span>" in page


def test_report_before_start_shows_the_audience_now(editor, setup):
    report = campaign_report(setup["campaign"])
    assert report.audience == 1 and not report.started and report.sent == 0


def test_the_beat_job_is_scheduled_every_minute():
    from config.celery_schedule import BEAT_SCHEDULE
    from newsletter.tasks import campaigns_start_due

    entry = BEAT_SCHEDULE["newsletter.campaigns-start-due"]
    assert entry["task"] == campaigns_start_due.name and entry["schedule"] == 60.0
    assert campaigns_start_due.queue == "maintenance"


def test_preview_as_any_subscriber_by_address(editor, mailing_list, setup):
    campaign = setup["campaign"]
    Subscription.objects.create(
        subscriber=Subscriber.objects.create(email="zed@example.org", name="Zed",
                                             attributes={"city": "Zurich"}),
        mailing_list=mailing_list, status="pending")
    page = editor.get(f"/admin/newsletter/campaign/{campaign.pk}/preview/"
                      "?preview_email=ZED@example.org").content.decode()
    assert "Hello Zed" in page and "Greetings to Zurich!" in page
    page = editor.get(f"/admin/newsletter/campaign/{campaign.pk}/change/"
                      "?preview_email=nobody@example.org").content.decode()
    assert "No subscriber with the address" in page


def test_a_started_campaign_is_duplicated_into_an_editable_draft(editor, setup):
    campaign = setup["campaign"]
    campaign_schedule(campaign, timezone.now())
    campaign_start(campaign.id)
    response = editor.post(f"/admin/newsletter/campaign/{campaign.pk}/action/",
                           {"action": "duplicate"})
    copy = Campaign.objects.get(name="Copy of Spring")
    assert response["Location"].endswith(f"/campaign/{copy.pk}/change/")
    assert copy.state == "draft" and copy.subject == campaign.subject and copy.mailing is None
    assert list(copy.lists.all()) == list(campaign.lists.all())
    assert LogEntry.objects.filter(object_id=str(copy.pk), action_flag=ADDITION).exists()
