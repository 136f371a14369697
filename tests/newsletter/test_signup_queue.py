"""The production signup path: checked in the request, stored by a task on the transactional queue.

A burst runner captures what the request queues and runs it later, twice, as
a redelivering broker would. (The browser test runs the same path through a
real Celery worker.)
"""

from __future__ import annotations

import json

import pytest

from newsletter import conf
from newsletter.models import ConsentRecord, Subscriber, Subscription
from tests.newsletter.helpers import confirmation_mails

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch, redis_client):
    """Signups go through the Redis queue; Celery nudges are counted, not sent."""
    from newsletter.services.signup import SIGNUP_QUEUE, signup_process, signups_drain
    from newsletter.tasks import signups_drain as drain_task

    monkeypatch.setattr(conf, "SIGNUP_ASYNC", True)
    nudges: list[int] = []
    monkeypatch.setattr(drain_task, "delay", lambda: nudges.append(1))

    class Burst:
        def post(self, signup_post, **kwargs):
            return signup_post(**kwargs)

        @property
        def payloads(self) -> list[dict]:
            return [json.loads(raw) for raw in redis_client.lrange(SIGNUP_QUEUE, 0, -1)]

        def run(self, times: int = 1) -> list[str]:
            """Process every queued payload ``times`` times (a redelivering queue)."""
            payloads = self.payloads
            redis_client.delete(SIGNUP_QUEUE)
            return [signup_process(p).value for _ in range(times) for p in payloads]

        def drain(self) -> int:
            return signups_drain()

    burst = Burst()
    burst.nudges = nudges
    return burst


def test_request_only_checks_and_queues_and_the_task_stores(signup_post, queued):
    response = queued.post(signup_post, email="Ann@Example.ORG", name="Ann",
                           meta={"HTTP_ACCEPT_LANGUAGE": "de"})
    assert response.status_code == 302
    assert not Subscriber.objects.exists()  # nothing stored in the request
    (payload,) = queued.payloads
    assert payload["address"] == "ann@example.org" and payload["language"] == "de"
    assert queued.run(times=2) == ["requested", "duplicate"]  # redelivery does nothing
    assert Subscription.objects.get().status == "pending"
    record = ConsentRecord.objects.get()
    assert (record.ip, record.user_agent, record.source) == (
        "198.51.100.7", "Mozilla/5.0 (test)", "form")
    mail = confirmation_mails().get()
    assert mail.subject.startswith("Bitte bestätigen")  # in the signer's language


def test_consent_record_keeps_the_time_of_the_request(signup_post, queued):
    from django.utils import timezone

    queued.post(signup_post)
    sent_at = timezone.now()
    queued.run()
    assert ConsentRecord.objects.get().created_at <= sent_at


def test_bad_input_is_refused_in_the_request_and_nothing_is_queued(signup_post, queued):
    assert queued.post(signup_post, email="x@y\r\nBcc: z@q.org").status_code == 400
    assert queued.post(signup_post, name="N" * 10_240).status_code == 400
    assert queued.post(signup_post, website="bot").status_code == 302
    assert queued.payloads == []


def test_thousand_queued_signups_for_one_address_send_at_most_three_mails(
        signup_post, queued, monkeypatch):
    monkeypatch.setattr(conf, "SIGNUP_RATE_PER_IP", 10**6)
    monkeypatch.setattr(conf, "SIGNUP_RATE_PER_NETWORK", 10**6)
    monkeypatch.setattr(conf, "SIGNUP_RATE_PER_ADDRESS", 10**6)
    for i in range(1000):
        assert queued.post(signup_post, email="victim@example.org",
                           ip=f"10.3.{i // 250}.{i % 250}").status_code == 302
    outcomes = queued.run()
    assert outcomes.count("requested") == 3 and outcomes.count("mail_limited") == 997
    assert confirmation_mails("victim@example.org").count() == 3


def test_queued_signup_for_a_list_that_is_gone_is_dropped(signup_post, queued, redis_client):
    from newsletter.services.signup import SIGNUP_QUEUE

    queued.post(signup_post)
    payload = queued.payloads[0]
    payload["list_id"] = 10**9
    redis_client.delete(SIGNUP_QUEUE)
    redis_client.rpush(SIGNUP_QUEUE, json.dumps(payload))
    assert queued.run() == ["dropped"]
    assert not Subscriber.objects.exists()


def test_one_nudge_per_empty_queue_and_the_drain_stores_everything(signup_post, queued):
    for i in range(5):
        assert queued.post(signup_post, email=f"p{i}@example.org").status_code == 302
    assert queued.nudges == [1]  # Celery is told once, not per signup
    assert queued.drain() == 5 and queued.drain() == 0
    assert Subscription.objects.count() == 5 and confirmation_mails().count() == 5
    queued.post(signup_post, email="late@example.org")
    assert queued.nudges == [1, 1]  # the queue was empty again


def test_signup_left_by_a_crashed_worker_is_requeued_and_stored_once(
        signup_post, queued, redis_client):
    from newsletter.services.signup import SIGNUP_PROCESSING, SIGNUP_QUEUE, signups_requeue_stale

    queued.post(signup_post)
    redis_client.lmove(SIGNUP_QUEUE, SIGNUP_PROCESSING, "LEFT", "RIGHT")  # a worker took it
    assert signups_requeue_stale() == 0  # not stale yet: the worker may still be busy
    assert signups_requeue_stale(older_than_s=-600) == 1  # ten minutes on: it died
    assert queued.drain() == 1 and Subscription.objects.count() == 1
    assert redis_client.llen(SIGNUP_PROCESSING) == 0


def test_rate_limits_hold_on_the_queued_path(signup_post, queued, monkeypatch):
    monkeypatch.setattr(conf, "SIGNUP_RATE_PER_IP", 2)
    codes = [queued.post(signup_post, email=f"q{i}@example.org").status_code for i in range(4)]
    assert codes == [302, 302, 429, 429]
    assert len(queued.payloads) == 2  # refused signups are never queued


def test_a_list_with_consent_history_cannot_be_deleted(mailing_list, client):
    from django.db.models import ProtectedError

    client.get("/s/shop-news/")  # showing the form records the consent text version
    with pytest.raises(ProtectedError):
        mailing_list.delete()


def test_redis_down_gives_a_clear_try_later_page_and_stores_nothing(
        signup_post, queued, settings):
    from config.redis_server import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    response = signup_post()
    assert response.status_code == 503
    assert b"Nothing was stored" in response.content
    assert not Subscriber.objects.exists()


def test_a_drained_batch_follows_the_same_rules_as_single_signups(mailing_list, monkeypatch):
    import uuid

    from deliverability.suppression import suppress
    from newsletter.models import MailingList
    from newsletter.services import consent_text_current
    from newsletter.services.signup import signups_store

    monkeypatch.setattr(conf, "SIGNUP_RATE_PER_ADDRESS", 2)
    single = MailingList.objects.create(name="Open", slug="open", double_opt_in=False)
    other_text = consent_text_current(single)
    for email, status in (("c@example.org", "confirmed"), ("u@example.org", "unsubscribed")):
        Subscription.objects.create(subscriber=Subscriber.objects.create(email=email),
                                    mailing_list=mailing_list, status=status)
    suppress(address="s@example.org", reason="hard_bounce")

    def payload(address, list_id=mailing_list.id, **extra):
        return {"request_id": uuid.uuid4().hex, "list_id": list_id, "address": address,
                "name": "N", "consent_text_id": other_text.id, "ip": "192.0.2.1",
                "user_agent": "UA", "source": "form", "at": "2026-01-02T03:04:05+00:00",
                "language": "en", **extra}

    again = payload("a@example.org")
    outcomes = signups_store([
        payload("a@example.org"), again, again,
        payload("b@example.org"), payload("b@example.org"), payload("b@example.org"),
        payload("s@example.org"), payload("c@example.org"), payload("u@example.org"),
        payload("n@example.org", list_id=single.id), payload("x@example.org", list_id=10**9),
    ])
    assert outcomes == {"requested": 5, "duplicate": 1, "address_limited": 1,
                        "suppressed": 1, "already_confirmed": 1, "confirmed": 1, "dropped": 1}
    statuses = dict(Subscription.objects.values_list("subscriber__email", "status"))
    assert statuses == {"a@example.org": "pending", "b@example.org": "pending",
                        "c@example.org": "confirmed", "u@example.org": "pending",
                        "n@example.org": "confirmed"}
    events = sorted(ConsentRecord.objects.values_list("address", "event"))
    assert events == [("a@example.org", "signup"), ("a@example.org", "signup"),
                      ("b@example.org", "signup"), ("b@example.org", "signup"),
                      ("n@example.org", "signup"), ("u@example.org", "resubscribe")]
    record = ConsentRecord.objects.filter(address="u@example.org").get()
    assert record.consent_text.mailing_list_id == mailing_list.id  # not another list's text
    assert (record.ip, record.user_agent, record.created_at.year) == ("192.0.2.1", "UA", 2026)
    assert confirmation_mails().count() == 5
