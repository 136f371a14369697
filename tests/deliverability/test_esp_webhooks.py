"""ESP event webhooks: verified as each provider documents it, then intake as for a DSN."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from deliverability.esp import conf, ses
from deliverability.models import BounceEvent, InboundMessage, Suppression
from newsletter.models import MailingList, Subscriber, Subscription
from sending.models import Delivery
from tests.deliverability import esp_support as pay
from tests.deliverability.intake_support import make_delivery

PROVIDERS = ["ses", "sendgrid", "mailgun", "postmark"]


@pytest.fixture
def hooks(monkeypatch, redis_client):
    """Every provider configured with keys made for this test."""
    sns = pay.LocalSns()
    ses.set_sns_client(sns)
    keys = pay.SendGridKeys()
    monkeypatch.setattr(conf, "SES_SNS_TOPIC_ARNS", [pay.TOPIC])
    monkeypatch.setattr(conf, "SENDGRID_WEBHOOK_PUBLIC_KEY", keys.public_b64)
    monkeypatch.setattr(conf, "MAILGUN_WEBHOOK_SIGNING_KEY", pay.MAILGUN_KEY)
    monkeypatch.setattr(conf, "POSTMARK_WEBHOOK_USER", pay.POSTMARK_USER)
    monkeypatch.setattr(conf, "POSTMARK_WEBHOOK_PASSWORD", pay.POSTMARK_PASSWORD)
    yield type("Hooks", (), {"sns": sns, "sendgrid": keys})
    ses.set_sns_client(None)


def post(hooks, provider: str, kind: str, delivery, *, tamper: bool = False):
    """POST one event of ``kind`` (hard, block, complaint) about ``delivery``, signed."""
    client = Client()
    if provider == "ses":
        envelope = pay.ses_envelope(hooks.sns, pay.ses_notification(kind, delivery))
        if tamper:
            envelope["Message"] = envelope["Message"].replace(delivery.address,
                                                              "other@example.org")
        return client.post("/hooks/ses/", json.dumps(envelope), content_type="text/plain")
    if provider == "sendgrid":
        body = json.dumps(pay.sendgrid_events(kind, delivery)).encode()
        headers = hooks.sendgrid.headers(body)
        if tamper:
            body = body.replace(b"bounce", b"delivered")
        return client.post("/hooks/sendgrid/", body, content_type="application/json", **headers)
    if provider == "mailgun":
        payload = pay.mailgun_payload(kind, delivery)
        if tamper:
            payload["signature"]["token"] = "0" * 50
        return client.post("/hooks/mailgun/", json.dumps(payload),
                           content_type="application/json")
    event = pay.postmark_event(kind, delivery)
    auth = pay.postmark_auth(password="wrong") if tamper else pay.postmark_auth()
    return client.post("/hooks/postmark/", json.dumps(event), content_type="application/json",
                       **auth)


@pytest.fixture
def subscribed(transactional_db):
    """A confirmed subscriber and a delivery to them."""
    mailing_list = MailingList.objects.create(name="News", slug="news")
    subscriber = Subscriber.objects.create(email="reader@example.org")
    Subscription.objects.create(subscriber=subscriber, mailing_list=mailing_list,
                                status=Subscription.Status.CONFIRMED)
    return make_delivery("reader@example.org", provider="example")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_bounce_is_accepted_and_suppresses(hooks, provider, subscribed):
    response = post(hooks, provider, "hard", subscribed)
    assert response.status_code == 200, response.content
    event = BounceEvent.objects.get()
    assert event.message.source == provider
    assert (event.kind, event.reason) == ("hard", "userunknown")
    assert event.delivery_id == subscribed.id and event.mailing_id == subscribed.mailing_id
    assert event.action == BounceEvent.Action.SUPPRESSED
    entry = Suppression.objects.get(address="reader@example.org")
    assert (entry.reason, entry.source) == ("hard_bounce", f"bounce:{provider}")
    subscribed.refresh_from_db()
    assert subscribed.state == Delivery.State.BOUNCED


@pytest.mark.parametrize("provider", PROVIDERS)
def test_complaint_unsubscribes(hooks, provider, subscribed):
    assert post(hooks, provider, "complaint", subscribed).status_code == 200
    event = BounceEvent.objects.get()
    assert event.kind == "complaint" and event.action == BounceEvent.Action.COMPLAINT
    assert Subscription.objects.get().status == Subscription.Status.UNSUBSCRIBED
    assert Suppression.objects.get().reason == "complaint"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_block_reaches_the_breaker_and_suppresses_nobody(hooks, provider, transactional_db,
                                                         redis_client):
    delivery = make_delivery("reader@hotmail.com", provider="microsoft_consumer")
    # Every provider calls it a bounce; the remote answer says block (S3150), as a DSN would.
    assert post(hooks, provider, "block", delivery).status_code == 200
    event = BounceEvent.objects.get()
    assert event.kind == "block" and event.provider == "microsoft_consumer"
    assert (event.action, event.action_detail) == (BounceEvent.Action.BREAKER,
                                                    "microsoft_consumer/bulk")
    assert not Suppression.objects.exists()
    assert redis_client.keys("deliverability:breaker*:bulk:microsoft_consumer*")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_bad_signature_is_refused_and_nothing_recorded(hooks, provider, subscribed):
    response = post(hooks, provider, "hard", subscribed, tamper=True)
    assert response.status_code == 403
    assert not InboundMessage.objects.exists() and not Suppression.objects.exists()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unsigned_post_is_refused(hooks, provider, db):
    response = Client().post(f"/hooks/{provider}/", "[]" if provider == "sendgrid" else "{}",
                             content_type="application/json")
    assert response.status_code in (400, 403)
    assert not InboundMessage.objects.exists()
    assert Client().get(f"/hooks/{provider}/").status_code == 405


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unconfigured_provider_refuses_everything(hooks, provider, subscribed, monkeypatch):
    for name in ("SES_SNS_TOPIC_ARNS", "SENDGRID_WEBHOOK_PUBLIC_KEY",
                 "MAILGUN_WEBHOOK_SIGNING_KEY", "POSTMARK_WEBHOOK_PASSWORD"):
        monkeypatch.setattr(conf, name, [] if name.endswith("ARNS") else "")
    assert post(hooks, provider, "hard", subscribed).status_code == 403
    assert not InboundMessage.objects.exists()


def test_sendgrid_replayed_signature_is_refused(hooks, subscribed):
    body = json.dumps(pay.sendgrid_events("hard", subscribed)).encode()
    headers = hooks.sendgrid.headers(body)
    client = Client()
    assert client.post("/hooks/sendgrid/", body, content_type="application/json",
                       **headers).status_code == 200
    assert client.post("/hooks/sendgrid/", body, content_type="application/json",
                       **headers).status_code == 403
    assert BounceEvent.objects.count() == 1


def test_sendgrid_old_timestamp_is_refused(hooks, subscribed):
    body = json.dumps(pay.sendgrid_events("hard", subscribed)).encode()
    headers = hooks.sendgrid.headers(body, timestamp=int(time.time()) - 26 * 3600)
    assert Client().post("/hooks/sendgrid/", body, content_type="application/json",
                         **headers).status_code == 403
    assert not InboundMessage.objects.exists()


def test_mailgun_replayed_token_and_old_timestamp_are_refused(hooks, subscribed):
    client = Client()
    signature = pay.mailgun_signature()
    first = pay.mailgun_payload("hard", subscribed, signature)
    assert client.post("/hooks/mailgun/", json.dumps(first),
                       content_type="application/json").status_code == 200
    # The same signed token on another (even different) event: refused.
    again = pay.mailgun_payload("complaint", subscribed, dict(signature))
    assert client.post("/hooks/mailgun/", json.dumps(again),
                       content_type="application/json").status_code == 403
    old = pay.mailgun_payload("hard", subscribed,
                              pay.mailgun_signature(timestamp=int(time.time()) - 3600))
    assert client.post("/hooks/mailgun/", json.dumps(old),
                       content_type="application/json").status_code == 403
    assert BounceEvent.objects.count() == 1


def test_mailgun_wrong_key_is_refused(hooks, subscribed):
    payload = pay.mailgun_payload("hard", subscribed, pay.mailgun_signature(key="key-other"))
    assert Client().post("/hooks/mailgun/", json.dumps(payload),
                         content_type="application/json").status_code == 403
    assert not InboundMessage.objects.exists()


@pytest.mark.parametrize("provider", ["ses", "postmark"])
def test_redelivered_event_changes_nothing(hooks, provider, subscribed):
    """SNS and Postmark retry with the same event: stored once, acted on once."""
    client = Client()
    if provider == "ses":
        body = json.dumps(pay.ses_envelope(hooks.sns, pay.ses_notification("hard", subscribed)))
        send = lambda: client.post("/hooks/ses/", body, content_type="text/plain")  # noqa: E731
    else:
        body = json.dumps(pay.postmark_event("hard", subscribed))
        send = lambda: client.post("/hooks/postmark/", body,  # noqa: E731
                                   content_type="application/json", **pay.postmark_auth())
    assert send().status_code == 200 and send().status_code == 200
    assert InboundMessage.objects.count() == 1 and BounceEvent.objects.count() == 1


def test_event_not_tied_to_our_delivery_is_recorded_only(hooks, subscribed):
    other = make_delivery("someone@example.org", provider="example")
    events = pay.sendgrid_events("hard", subscribed)
    events[1]["smtp-id"] = pay.message_id(other)  # names a delivery to another address
    body = json.dumps(events).encode()
    assert Client().post("/hooks/sendgrid/", body, content_type="application/json",
                         **hooks.sendgrid.headers(body)).status_code == 200
    event = BounceEvent.objects.get()
    assert event.delivery_id is None and event.action == BounceEvent.Action.NONE
    assert "not tied" in event.action_detail
    assert not Suppression.objects.exists()


def test_ses_signature_version_2_and_subscription_confirmation(hooks, subscribed):
    client = Client()
    envelope = pay.ses_envelope(hooks.sns, pay.ses_notification("hard", subscribed))
    v2 = hooks.sns.sign({k: v for k, v in envelope.items()
                         if k not in ("Signature", "SignatureVersion")}, version="2")
    assert client.post("/hooks/ses/", json.dumps(v2), content_type="text/plain"
                       ).status_code == 200
    confirm_url = "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=t"
    confirmation = hooks.sns.sign({
        "Type": "SubscriptionConfirmation", "MessageId": "m-1", "Token": "t",
        "TopicArn": pay.TOPIC, "Message": "You have chosen to subscribe to the topic.",
        "SubscribeURL": confirm_url, "Timestamp": "2026-12-04T10:00:00.000Z"})
    assert client.post("/hooks/ses/", json.dumps(confirmation),
                       content_type="text/plain").status_code == 200
    assert hooks.sns.confirmed == [confirm_url]


@pytest.mark.parametrize("change", [
    {"SigningCertURL": "https://sns.eu-west-1.amazonaws.com.evil.example/c.pem"},
    {"SigningCertURL": "http://sns.eu-west-1.amazonaws.com/c.pem"},
    {"SigningCertURL": "https://evil.example/sns.eu-west-1.amazonaws.com/c.pem"},
    {"TopicArn": "arn:aws:sns:eu-west-1:999999999999:someone-else"},
    {"SignatureVersion": "3"},
    {"Signature": "not base64!"},
])
def test_ses_refuses_foreign_certificates_topics_and_signatures(hooks, subscribed, change):
    envelope = {**pay.ses_envelope(hooks.sns, pay.ses_notification("hard", subscribed)),
                **change}
    assert Client().post("/hooks/ses/", json.dumps(envelope),
                         content_type="text/plain").status_code == 403
    assert not InboundMessage.objects.exists()
    # The certificate is only ever fetched from an AWS host over https.
    assert all(url == pay.CERT_URL for url in hooks.sns.fetched)


def test_ses_confirmation_to_a_foreign_url_is_not_fetched(hooks, db):
    confirmation = hooks.sns.sign({
        "Type": "SubscriptionConfirmation", "MessageId": "m-1", "Token": "t",
        "TopicArn": pay.TOPIC, "Message": "subscribe",
        "SubscribeURL": "https://evil.example/confirm", "Timestamp": "2026-12-04T10:00:00Z"})
    assert Client().post("/hooks/ses/", json.dumps(confirmation),
                         content_type="text/plain").status_code == 403
    assert hooks.sns.confirmed == []


def test_postmark_bounce_types_follow_the_smtp_answer_when_given(hooks, subscribed):
    """A Postmark 'SoftBounce' without an SMTP answer is soft; Details with a 5.1.1 is hard."""
    event = pay.postmark_event("hard", subscribed)
    soft = {**event, "Type": "SoftBounce", "TypeCode": 4096, "Details": "Mailbox busy"}
    client = Client()
    assert client.post("/hooks/postmark/", json.dumps(soft), content_type="application/json",
                       **pay.postmark_auth()).status_code == 200
    assert BounceEvent.objects.get().kind == "soft"
    assert not Suppression.objects.exists()


@pytest.mark.parametrize("provider", ["ses", "mailgun"])
def test_esp_bounces_and_complaints_feed_the_guardrails(hooks, provider, subscribed,
                                                        monkeypatch):
    from sending.lifecycle import guardrail_reason

    monkeypatch.setenv("GUARDRAIL_MIN_SAMPLE", "1")
    assert guardrail_reason(subscribed.mailing) is None
    assert post(hooks, provider, "hard", subscribed).status_code == 200
    assert "hard bounces" in guardrail_reason(subscribed.mailing)


@pytest.mark.parametrize("provider", ["sendgrid", "mailgun"])
def test_a_post_that_failed_in_intake_is_taken_when_retried(hooks, provider, subscribed,
                                                            monkeypatch):
    """The one-time token/signature is given back when storing fails (the provider retries
    the same post on a 5xx): the retry is not a replay."""
    from deliverability.esp import base

    real = base.ingest_reported
    calls = []

    def failing_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(base, "ingest_reported", failing_once)
    client = Client(raise_request_exception=False)
    if provider == "sendgrid":
        body = json.dumps(pay.sendgrid_events("hard", subscribed)[1:]).encode()
        headers = hooks.sendgrid.headers(body)
        send = lambda: client.post("/hooks/sendgrid/", body,  # noqa: E731
                                   content_type="application/json", **headers)
    else:
        body = json.dumps(pay.mailgun_payload("hard", subscribed))
        send = lambda: client.post("/hooks/mailgun/", body,  # noqa: E731
                                   content_type="application/json")
    assert send().status_code == 500
    assert send().status_code == 200
    assert BounceEvent.objects.get().action == BounceEvent.Action.SUPPRESSED
