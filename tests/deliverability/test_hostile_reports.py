"""Forged reports, sent as an attacker would: to the real listener and through the real pipe.

Issue 14: one valid VERP address (anyone who subscribes once gets one) must
not let a forged DSN suppress others, pause providers, or unsubscribe people.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from deliverability.breaker.engine import Breaker
from deliverability.mailbox import poll
from deliverability.models import BounceEvent, InboundMessage, Suppression
from newsletter import links
from newsletter.models import Subscription
from sending.lifecycle import guardrail_reason
from sending.models import Delivery
from tests.deliverability.hostile_support import (
    MAILTO_DOMAIN,
    S3150,
    arf,
    dsn,
    listener_process,
    send,
    subscribed,
    subscribed_delivery,
    unsubscribe_mail,
)
from tests.deliverability.intake_support import make_delivery, our_headers, return_path
from tests.deliverability.test_intake_paths import MemoryMailbox
from tests.helpers import ROOT, subprocess_env, wait_until

CONFIRMED = Subscription.Status.CONFIRMED


@pytest.fixture
def listener(transactional_db, redis_client, tmp_path):
    with listener_process(tmp_path) as (port, _process):
        yield port


def run_pipe(raw: bytes, *recipients: str) -> subprocess.CompletedProcess:
    args = [a for r in recipients for a in ("--recipient", r)]
    return subprocess.run([sys.executable, "manage.py", "ingest_bounce", *args], input=raw,
                          cwd=ROOT, env=subprocess_env(UNSUBSCRIBE_MAILTO_DOMAIN=MAILTO_DOMAIN),
                          capture_output=True, timeout=60)


def processed(count: int = 1) -> list[InboundMessage]:
    wait_until(lambda: InboundMessage.objects.exclude(processed_at=None).count() >= count)
    return list(InboundMessage.objects.order_by("id"))


def test_a_forged_dsn_naming_five_subscribers_suppresses_none_of_them(listener):
    _mine, attacker = subscribed_delivery("attacker@example.org")
    victims = [subscribed_delivery(f"victim{i}@example.net", mailing=attacker.mailing)
               for i in range(5)]
    names = [f"victim{i}@example.net" for i in range(5)] + ["attacker@example.org"]

    send(listener, return_path(attacker), dsn(names))

    message = processed()[0]
    assert message.events.count() == 6
    assert set(Suppression.objects.values_list("address", flat=True)) <= {"attacker@example.org"}
    for subscription, delivery in victims:
        subscription.refresh_from_db()
        delivery.refresh_from_db()
        assert subscription.status == CONFIRMED and delivery.state == Delivery.State.SENT
    others = message.events.exclude(address="attacker@example.org")
    assert {e.action for e in others} == {"none"} and {e.delivery_id for e in others} == {None}
    assert all("recorded only" in e.action_detail for e in others)


def test_ten_forged_block_dsns_to_one_token_count_once_and_pause_nothing(listener,
                                                                         redis_client):
    delivery = make_delivery("reader@hotmail.com", provider="microsoft_consumer")
    for nonce in range(10):  # ten different messages (not one message ten times)
        send(listener, return_path(delivery),
             dsn(["reader@hotmail.com"], status="5.7.1", diagnostic=S3150, nonce=str(nonce)))

    processed(10)
    events = BounceEvent.objects.filter(kind="block")
    assert events.count() == 10
    assert events.filter(action="breaker").count() == 1
    breaker = Breaker(redis=redis_client)
    wait_until(lambda: redis_client.keys("deliverability:breaker-hits:*"))
    assert {breaker.status(p, pool)["state"] for p, pool in breaker.keys()} <= {"ok"}
    hits = redis_client.keys("deliverability:breaker-hits:*")
    assert sum(redis_client.zcard(k) for k in hits) == 1
    assert not Suppression.objects.exists()


def test_a_forged_unsubscribe_mail_unsubscribes_nobody_and_is_no_complaint(listener):
    victim, _ = subscribed_delivery("victim@example.net")
    _mine, attacker = subscribed_delivery("attacker@example.org", mailing=None)

    send(listener, return_path(attacker),
         unsubscribe_mail("victim@example.net", to=return_path(attacker)))
    done = run_pipe(unsubscribe_mail("victim@example.net", to="bounces@x", nonce="2"))

    assert done.returncode == 0, done.stderr
    processed(2)
    victim.refresh_from_db()
    assert victim.status == CONFIRMED
    assert Subscription.objects.filter(status=CONFIRMED).count() == 2
    assert not Suppression.objects.exists()
    assert not BounceEvent.objects.filter(action="complaint").exists()
    assert guardrail_reason(attacker.mailing) is None


def test_the_pipe_without_a_token_acts_on_nothing_and_sends_it_to_review(transactional_db,
                                                                         redis_client):
    subscription, delivery = subscribed_delivery("nobody@example.org",
                                                 provider="microsoft_consumer")
    forged_to = return_path(delivery)  # a To: header anyone can write
    reports = [dsn(["nobody@example.org"], to=forged_to),
               dsn(["nobody@example.org"], status="5.7.1", diagnostic=S3150, to=forged_to),
               arf("nobody@example.org", to=forged_to)]

    for raw in reports:
        done = run_pipe(raw)
        assert done.returncode == 0 and b"review:" in done.stdout, done.stdout

    assert not Suppression.objects.exists()
    subscription.refresh_from_db()
    assert subscription.status == CONFIRMED
    assert not redis_client.keys("deliverability:breaker*")
    assert set(BounceEvent.objects.values_list("action", flat=True)) == {"none"}
    assert InboundMessage.objects.exclude(review_reason="").count() == 3
    assert Delivery.objects.get(id=delivery.id).state == Delivery.State.SENT


def test_imap_without_a_token_acts_on_nothing_and_files_it_for_review(transactional_db,
                                                                       redis_client):
    _subscription, delivery = subscribed_delivery("nobody@example.org")
    raw = dsn(["nobody@example.org"], to=return_path(delivery))
    mailbox = MemoryMailbox([raw])

    result = poll(mailbox, done_folder="Processed", review_folder="Review")

    assert (result.stored, result.review) == (1, 1) and mailbox.folders["Review"] == {"1": raw}
    assert not Suppression.objects.exists()
    message = InboundMessage.objects.get()
    assert "no VERP token in the envelope" in message.review_reason


def test_imap_with_our_returned_headers_acts_on_that_delivery_only(transactional_db,
                                                                   redis_client):
    _subscription, delivery = subscribed_delivery("nobody@example.org")
    _other, _ = subscribed_delivery("other@example.org")
    raw = dsn(["nobody@example.org", "other@example.org"],
              returned=our_headers(delivery).decode() + "\n")

    poll(MemoryMailbox([raw]), done_folder="Processed", review_folder="Review")

    assert list(Suppression.objects.values_list("address", flat=True)) == ["nobody@example.org"]
    assert InboundMessage.objects.get().review_reason == ""


def test_a_guessed_message_id_without_our_signed_header_ties_nothing(transactional_db):
    delivery = make_delivery("nobody@example.org")
    guessed = f"Message-ID: <pw.{delivery.mailing_id}.{delivery.id}@news.example.com>\n"

    done = run_pipe(dsn(["nobody@example.org"], returned=guessed))

    assert done.returncode == 0 and b"review:" in done.stdout
    assert not Suppression.objects.exists()


def test_mailto_unsubscribe_needs_the_token_and_ignores_the_from(listener):
    import smtplib

    victim = subscribed("victim@example.net")
    mine = subscribed("reader@example.org")
    address = links.unsubscribe_mailto(mine.id, MAILTO_DOMAIN)
    forged = address.replace(address.split("-")[-1].split("@")[0], "a" * 16)

    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send(listener, forged, b"Subject: unsubscribe\n\nplease")
    # From: names the victim; only the token decides, and it names the reader's subscription.
    send(listener, address, b"From: victim@example.net\nSubject: unsubscribe\n\nplease")

    wait_until(lambda: Subscription.objects.get(id=mine.id).status != CONFIRMED)
    victim.refresh_from_db()
    assert victim.status == CONFIRMED
    assert not Suppression.objects.exists()
    event = BounceEvent.objects.get()
    assert (event.kind, event.action) == ("unsubscribe", "unsubscribed")
