"""Operators' view of intake: event log, raw message, reclassify, removal from suppression."""

from __future__ import annotations

from django.contrib.admin.models import DELETION, LogEntry
from django.urls import reverse

from deliverability.intake import ingest
from deliverability.models import BounceEvent, Suppression
from deliverability.suppression import suppress
from tests.deliverability.intake_support import bounce_for, make_delivery


def test_event_log_filters_by_kind_reason_provider_and_campaign(admin_client):
    hard = make_delivery("nobody@example.org", reference="campaign:1")
    block = make_delivery("reader@hotmail.com", provider="microsoft_consumer",
                          reference="campaign:2")
    ingest(bounce_for("rfc3464_user_unknown", hard), source="smtp")
    ingest(bounce_for("microsoft_s3150_block", block), source="smtp")
    url = reverse("admin:deliverability_bounceevent_changelist")

    def listed(**query) -> set[str]:
        response = admin_client.get(url, query)
        assert response.status_code == 200
        return {e.address for e in response.context["cl"].result_list}

    assert listed() == {"nobody@example.org", "reader@hotmail.com"}
    assert listed(kind="hard") == {"nobody@example.org"}
    assert listed(reason="blocked") == {"reader@hotmail.com"}
    assert listed(provider="microsoft_consumer") == {"reader@hotmail.com"}
    assert listed(campaign="campaign:1") == {"nobody@example.org"}
    assert listed(mailing_id=block.mailing_id) == {"reader@hotmail.com"}


def test_raw_message_is_shown_decompressed_and_escaped(admin_client):
    raw = (b"From: x@example.net\r\nSubject: hi\r\n\r\n<script>alert(1)</script> "
           b"\xff bytes\r\n")
    message = ingest(raw, source="pipe")

    page = admin_client.get(reverse("admin:deliverability_inboundmessage_change",
                                    args=[message.pk])).content.decode()

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert "Subject: hi" in page and "unknown" in page


def test_reclassify_action_keeps_actions_idempotent(admin_client):
    delivery = make_delivery("nobody@example.org")
    message = ingest(bounce_for("rfc3464_user_unknown", delivery), source="smtp")
    event = message.events.get()

    url = reverse("admin:deliverability_inboundmessage_changelist")
    response = admin_client.post(url, {"action": "reclassify_messages",
                                       "_selected_action": [message.pk]})

    assert response.status_code == 302
    assert list(BounceEvent.objects.values_list("id", "kind")) == [(event.id, "hard")]
    assert Suppression.objects.count() == 1


def test_bulk_removal_from_suppression_asks_for_a_reason_and_logs_it(admin_client, admin_user):
    kept = suppress(address="keep@example.org", reason="complaint")
    gone = [suppress(address=f"a{i}@example.org", reason="hard_bounce") for i in range(2)]
    url = reverse("admin:deliverability_suppression_changelist")
    selected = {"action": "remove_suppressions", "_selected_action": [s.pk for s in gone]}

    form = admin_client.post(url, selected)
    assert form.status_code == 200 and b"Why are these addresses removed?" in form.content
    assert Suppression.objects.count() == 3
    assert admin_client.post(url, {**selected, "reason": ""}).status_code == 200  # required
    assert Suppression.objects.count() == 3

    done = admin_client.post(url, {**selected, "reason": "mailbox fixed, confirmed by phone"})

    assert done.status_code == 302
    assert list(Suppression.objects.values_list("pk", flat=True)) == [kept.pk]
    logs = LogEntry.objects.filter(action_flag=DELETION, user=admin_user)
    assert {log.object_repr for log in logs} == {str(s) for s in gone}
    assert all("mailbox fixed" in log.change_message for log in logs)


def test_reports_tied_to_nothing_are_listed_for_review_with_the_reason(admin_client):
    from deliverability.models import InboundMessage
    from tests.deliverability.hostile_support import dsn

    delivery = make_delivery("nobody@example.org")
    untied = ingest(dsn(["nobody@example.org"]), source="imap")
    tied = ingest(bounce_for("rfc3464_user_unknown", delivery), source="imap")
    url = reverse("admin:deliverability_inboundmessage_changelist")

    listed = admin_client.get(url, {"review": "yes"})

    assert [m.pk for m in listed.context["cl"].result_list] == [untied.pk]
    assert "no VERP token in the envelope" in listed.content.decode()
    assert tied.review_reason == "" and Suppression.objects.count() == 1
    admin_client.post(url, {"action": "mark_reviewed", "_selected_action": [untied.pk]})
    assert not InboundMessage.objects.exclude(review_reason="").exists()
