"""Bounce intake: record, then decide (deliverability.intake.ingest)."""

from __future__ import annotations

import zlib
from datetime import timedelta

import pytest
from django.utils import timezone

from deliverability import conf
from deliverability.intake import ingest, reclassify
from deliverability.models import BounceEvent, InboundMessage, Suppression
from deliverability.signals import address_suppressed, bounce_recorded, complaint_received
from newsletter.models import MailingList, Subscriber, Subscription
from sending.models import Delivery, DeliveryAttempt
from tests.deliverability.intake_support import bounce_for, make_delivery, return_path


@pytest.fixture
def run_on_commit(transactional_db):
    """Real commits (signals and breaker calls run after commit); records the announcements."""
    seen = []

    def record(sender, signal, **kwargs):
        seen.append((signal, kwargs))

    hooks = [(s, record) for s in (bounce_recorded, complaint_received, address_suppressed)]
    for signal, hook in hooks:
        signal.connect(hook, weak=False)
    yield seen
    for signal, hook in hooks:
        signal.disconnect(hook)


def test_hard_bounce_stores_first_marks_delivery_bounced_and_suppresses(run_on_commit):
    delivery = make_delivery("nobody@example.org")
    raw = bounce_for("rfc3464_user_unknown", delivery)

    message = ingest(raw, source="pipe")

    assert zlib.decompress(bytes(message.raw_compressed)) == raw == message.raw
    assert message.processed_at and message.outcome == "hard" and not message.error
    event = message.events.get()
    assert (event.kind, event.reason, event.status) == ("hard", "userunknown", "5.1.1")
    assert event.delivery_id == delivery.id and event.campaign == "campaign:7"
    assert event.mailing_id == delivery.mailing_id
    assert event.action == BounceEvent.Action.SUPPRESSED
    entry = Suppression.objects.get(address="nobody@example.org")
    assert (entry.reason, entry.source, entry.source_event_id) == (
        "hard_bounce", "bounce:pipe", event.id)
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.BOUNCED
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert (attempt.kind, attempt.outcome) == ("hard", "bounced")


def test_same_message_twice_changes_nothing(run_on_commit):
    delivery = make_delivery("nobody@example.org")
    raw = bounce_for("rfc3464_user_unknown", delivery)
    first = ingest(raw, source="smtp")
    counts = (InboundMessage.objects.count(), BounceEvent.objects.count(),
              Suppression.objects.count(), DeliveryAttempt.objects.count(), len(run_on_commit))

    second = ingest(raw, source="imap")

    assert second.pk == first.pk and second.source == "smtp"
    assert counts == (InboundMessage.objects.count(), BounceEvent.objects.count(),
                      Suppression.objects.count(), DeliveryAttempt.objects.count(),
                      len(run_on_commit))


def _subscribed(address: str, slug: str = "news") -> Subscription:
    mailing_list = MailingList.objects.create(name=slug.title(), slug=slug)
    subscriber, _ = Subscriber.objects.get_or_create(email=address)
    return Subscription.objects.create(subscriber=subscriber, mailing_list=mailing_list,
                                       status=Subscription.Status.CONFIRMED)


def test_arf_abuse_complaint_unsubscribes_and_suppresses_at_once(run_on_commit):
    subscription = _subscribed("reader@example.net")
    delivery = make_delivery("reader@example.net")
    raw = bounce_for("arf_abuse_rfc5965", delivery)

    message = ingest(raw, source="imap")  # no envelope: tied by the returned headers

    event = message.events.get()
    assert event.kind == "complaint" and event.delivery_id == delivery.id
    assert event.action == BounceEvent.Action.COMPLAINT
    assert Suppression.objects.get(address="reader@example.net").reason == "complaint"
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.UNSUBSCRIBED
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.SENT  # a complaint means it arrived


def test_arf_opt_out_ends_that_subscription_only_and_is_no_complaint(run_on_commit):
    # RFC 5965 / RFC 6650 Feedback-Type opt-out: the recipient asks to leave this list.
    subscription = _subscribed("subscriber@example.net")
    other = _subscribed("subscriber@example.net", slug="other")
    delivery = make_delivery("subscriber@example.net")
    delivery.subscription_id = subscription.id
    delivery.save()

    message = ingest(bounce_for("arf_optout_rcpt", delivery), source="smtp",
                     envelope_recipients=[return_path(delivery)])

    event = message.events.get()
    assert (event.kind, event.action) == ("complaint", BounceEvent.Action.UNSUBSCRIBED)
    subscription.refresh_from_db()
    other.refresh_from_db()
    assert subscription.status == Subscription.Status.UNSUBSCRIBED
    assert other.status == Subscription.Status.CONFIRMED
    assert not Suppression.objects.exists()
    assert not [s for s, _ in run_on_commit if s is complaint_received]


@pytest.mark.parametrize("feedback_type", ["auth-failure", "not-spam"])
def test_arf_reports_that_are_no_complaint_suppress_nobody(run_on_commit, feedback_type):
    # RFC 6591 auth-failure tells the domain owner a message failed SPF/DKIM/DMARC;
    # RFC 5965 not-spam says the opposite of a complaint. Neither is a recipient's
    # complaint, however well it is tied to our delivery.
    subscription = _subscribed("reader@example.net")
    delivery = make_delivery("reader@example.net")
    raw = bounce_for("arf_abuse_rfc5965", delivery).replace(
        b"Feedback-Type: abuse", f"Feedback-Type: {feedback_type}".encode())

    message = ingest(raw, source="smtp", envelope_recipients=[return_path(delivery)])

    event = message.events.get()
    assert event.action == BounceEvent.Action.NONE
    assert not Suppression.objects.exists()
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.CONFIRMED
    assert not [s for s, _ in run_on_commit if s is complaint_received]


def test_complaint_without_recipient_uses_the_delivery_address(run_on_commit):
    delivery = make_delivery("reader@example.net")
    raw = bounce_for("arf_abuse_rfc5965", delivery)

    message = ingest(raw, source="pipe", envelope_recipients=[return_path(delivery)])

    event = message.events.get()
    assert (event.kind, event.recipient, event.address) == (
        "complaint", "reader@example.net", "reader@example.net")
    assert Suppression.objects.filter(address="reader@example.net", reason="complaint").exists()


def test_block_suppresses_nobody_and_reaches_the_breaker(run_on_commit, redis_client):
    delivery = make_delivery("reader@hotmail.com", provider="microsoft_consumer")
    raw = bounce_for("microsoft_s3150_block", delivery)

    message = ingest(raw, source="smtp")

    event = message.events.get()
    assert event.kind == "block" and event.provider == "microsoft_consumer"
    assert (event.action, event.action_detail) == (BounceEvent.Action.BREAKER,
                                                    "microsoft_consumer/bulk")
    assert not Suppression.objects.exists()
    # The breaker counted it in Redis (a hit in its window, or a trip already).
    assert redis_client.keys("deliverability:breaker*:bulk:microsoft_consumer*")
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.BOUNCED


def test_auto_reply_does_nothing(run_on_commit):
    delivery = make_delivery("ada@example.org")
    raw = bounce_for("rfc3834_vacation", delivery)

    message = ingest(raw, source="smtp", envelope_recipients=[return_path(delivery)])

    event = message.events.get()
    assert (event.kind, event.action) == ("auto_reply", BounceEvent.Action.NONE)
    assert not Suppression.objects.exists()
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.SENT


def test_message_nobody_understands_is_kept_as_unknown(db):
    raw = (Path := __import__("pathlib").Path)(__file__).parent.parent.joinpath(
        "fixtures/bounces/not_a_bounce.eml").read_bytes()
    assert Path

    message = ingest(raw, source="imap")

    assert message.outcome == "unknown" and message.raw == raw
    event = message.events.get()
    assert (event.kind, event.action, event.delivery_id) == ("unknown", "none", None)


def test_forged_verp_address_matches_no_delivery(run_on_commit):
    delivery = make_delivery("nobody@example.org")
    raw = bounce_for("rfc3464_user_unknown", delivery)
    token = return_path(delivery).split("+")[1].split("@")[0]
    forged = raw.replace(token.encode(), token[:-1].encode() + (b"a" if token[-1] != "a" else b"b"))

    message = ingest(forged, source="pipe")

    event = message.events.get()
    assert event.delivery_id is None and event.kind == "hard"
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.SENT


@pytest.mark.parametrize("limit", [2, 3])
def test_soft_bounces_suppress_after_the_limit(run_on_commit, monkeypatch, limit):
    monkeypatch.setattr(conf, "SOFT_BOUNCE_LIMIT", limit)
    address = "full@example.org"
    for n in range(1, limit + 1):
        delivery = make_delivery(address, sent_at=timezone.now() - timedelta(days=limit - n + 1))
        ingest(bounce_for("mailbox_full", delivery, n=n), source="smtp")
        event = BounceEvent.objects.get(delivery_id=delivery.id)
        if n < limit:
            assert (event.action, event.action_detail) == ("soft_counted", f"{n} of {limit}")
            assert not Suppression.objects.exists()
    assert event.action == "suppressed"
    entry = Suppression.objects.get(address=address)
    assert (entry.reason, entry.source_event_id) == ("soft_bounces", event.id)


def test_repeated_notices_for_one_delivery_count_once(run_on_commit, monkeypatch):
    monkeypatch.setattr(conf, "SOFT_BOUNCE_LIMIT", 2)
    delivery = make_delivery("full@example.org")
    for n in range(3):  # three different notices about the same message
        ingest(bounce_for("mailbox_full", delivery, n=n), source="smtp")
    assert not Suppression.objects.exists()
    assert BounceEvent.objects.filter(kind="soft").count() == 3


def test_a_successful_delivery_in_between_resets_the_count(run_on_commit, monkeypatch):
    monkeypatch.setattr(conf, "SOFT_BOUNCE_LIMIT", 2)
    address = "full@example.org"
    first = make_delivery(address, sent_at=timezone.now() - timedelta(days=3))
    ingest(bounce_for("mailbox_full", first, n=1), source="smtp")
    # A later mailing reached the address (accepted, no bounce since).
    make_delivery(address)
    second = make_delivery(address)
    BounceEvent.objects.update(created_at=timezone.now() - timedelta(days=2))

    ingest(bounce_for("mailbox_full", second, n=2), source="smtp")

    assert not Suppression.objects.exists()
    assert BounceEvent.objects.get(delivery_id=second.id).action_detail == "1 of 2"


def test_reclassify_changes_nothing_when_the_result_is_the_same(run_on_commit):
    delivery = make_delivery("nobody@example.org")
    message = ingest(bounce_for("rfc3464_user_unknown", delivery), source="smtp")
    event = message.events.get()
    callbacks = len(run_on_commit)

    reclassify(message)

    assert list(message.events.values_list("id", "kind", "action")) == [
        (event.id, "hard", "suppressed")]
    assert Suppression.objects.count() == 1 and len(run_on_commit) == callbacks
    assert DeliveryAttempt.objects.count() == 1


def test_reclassify_acts_when_the_rules_changed_their_mind(run_on_commit, monkeypatch):
    delivery = make_delivery("nobody@example.org")
    import deliverability.classify as classify

    real = classify.classify_message
    monkeypatch.setattr(classify, "classify_message", lambda raw: [])
    message = ingest(bounce_for("rfc3464_user_unknown", delivery), source="smtp")
    assert message.outcome == "unknown" and not Suppression.objects.exists()

    monkeypatch.setattr(classify, "classify_message", real)
    reclassify(message)

    event = message.events.get()
    assert (event.kind, event.action) == ("hard", "suppressed")
    assert Suppression.objects.get().source_event_id == event.id
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.BOUNCED


def test_reclassify_leaves_a_pruned_message_alone(run_on_commit):
    from deliverability.retention import prune_raw_messages

    delivery = make_delivery("nobody@example.org")
    message = ingest(bounce_for("rfc3464_user_unknown", delivery), source="smtp")
    InboundMessage.objects.update(received_at=timezone.now() - timedelta(days=400))
    assert prune_raw_messages(days=30) == 1
    message.refresh_from_db()

    reclassify(message)

    assert list(message.events.values_list("kind", "action")) == [("hard", "suppressed")]


def test_a_delay_notice_does_not_mark_the_delivery_bounced(run_on_commit):
    """RFC 3464 'Action: delayed': the remote MTA is still trying; nothing failed yet."""
    delivery = make_delivery("slow@example.org")
    raw = (
        f"From: MAILER-DAEMON@mx.example.net\r\nTo: {return_path(delivery)}\r\n"
        "Subject: Delayed Mail (still being retried)\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nStill trying to deliver.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        "Final-Recipient: rfc822; slow@example.org\r\nAction: delayed\r\nStatus: 4.4.1\r\n"
        "Diagnostic-Code: smtp; 421 4.4.1 connection timed out\r\n\r\n--b--\r\n"
    ).encode()
    ingest(raw, source="pipe")
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.SENT
    assert not Suppression.objects.filter(address="slow@example.org").exists()
    event = BounceEvent.objects.get(address="slow@example.org")
    assert event.action == BounceEvent.Action.NONE and "delay notice" in event.action_detail
