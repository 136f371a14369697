"""Transactional rows a dead worker left in ``sending``: queued again or marked review."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from sending.models import TransactionalEmail
from sending.sink import sink_messages
from sending.transactional import (
    _in_flight_key,
    transactional_email_deliver,
    transactional_email_due_ids,
    transactional_email_reap,
)

pytestmark = pytest.mark.django_db(transaction=True)
T = TransactionalEmail.State


def _stuck(to: str, minutes_ago: int = 30) -> TransactionalEmail:
    """A row as a worker killed mid-send leaves it."""
    return TransactionalEmail.objects.create(
        to=to, subject="Please confirm", body_text="Click.\n", from_email="news@example.org",
        state=T.SENDING, attempts=0, claimed_at=timezone.now() - timedelta(minutes=minutes_ago),
        next_attempt_at=timezone.now() - timedelta(minutes=minutes_ago))


def test_a_sent_mail_leaves_no_in_flight_marker(smtp_sink, redis_client):
    email = TransactionalEmail.objects.create(to="a@example.org", subject="s", body_text="t",
                                              from_email="news@example.org")
    assert transactional_email_deliver(email.id) == "sent"
    assert redis_client.get(_in_flight_key(email.id)) is None


def test_stuck_rows_go_back_to_the_queue_or_to_review_by_their_marker(smtp_sink, redis_client):
    never_on_wire = _stuck("before@example.org")
    on_wire = _stuck("during@example.org")
    redis_client.set(_in_flight_key(on_wire.id), "1")
    fresh = _stuck("alive@example.org", minutes_ago=1)  # its worker may still be at it

    assert transactional_email_reap() == {"requeued": 1, "review": 1}
    states = dict(TransactionalEmail.objects.values_list("to", "state"))
    assert states == {"before@example.org": T.QUEUED, "during@example.org": T.REVIEW,
                      "alive@example.org": T.SENDING}
    assert redis_client.get(_in_flight_key(on_wire.id)) is None
    assert transactional_email_reap() == {"requeued": 0, "review": 0}  # nothing twice

    # The retry job hands the queued one to a worker; the review one is never resent.
    due = transactional_email_due_ids()
    assert due == [never_on_wire.id]
    for email_id in due:
        transactional_email_deliver(email_id)
    assert [m.rcpt_to for m in sink_messages(smtp_sink.directory)] == ["before@example.org"]
    assert TransactionalEmail.objects.get(id=fresh.id).state == T.SENDING


def test_a_queued_row_whose_task_was_lost_is_picked_up(smtp_sink):
    email = TransactionalEmail.objects.create(
        to="lost@example.org", subject="s", body_text="t", from_email="news@example.org",
        next_attempt_at=timezone.now() - timedelta(minutes=5))
    just_queued = TransactionalEmail.objects.create(
        to="new@example.org", subject="s", body_text="t", from_email="news@example.org",
        next_attempt_at=timezone.now())
    assert transactional_email_due_ids() == [email.id]  # not the one whose task is coming
    assert just_queued.state == T.QUEUED


def test_a_transactional_relay_at_its_connection_limit_defers_briefly(relay_factory,
                                                                      redis_client):
    import threading
    import time

    from sending.models import Relay as RelayRow
    from sending.models import RelayPool
    from sending.transactional import close_sessions

    relay = relay_factory()
    pool = RelayPool.objects.create(name="tx", purpose=RelayPool.Purpose.TRANSACTIONAL)
    RelayRow.objects.create(pool=pool, name="one", host="127.0.0.1", port=relay.port,
                            tls_mode="none", max_connections=1)
    first, second = (TransactionalEmail.objects.create(
        to=to, subject="s", body_text="t", from_email="news@example.org")
        for to in ("a@example.org", "b@example.org"))
    # Another worker sends and keeps its session (and the relay's one slot).
    worker = threading.Thread(target=transactional_email_deliver, args=(first.id,))
    worker.start()
    worker.join()
    try:
        assert transactional_email_deliver(second.id) == T.DEFERRED
        second.refresh_from_db()
        assert second.attempts == 0 and "connection limit" in second.last_reply
        assert len(relay.messages) == 1
    finally:
        close_sessions()  # every session closes and gives its slot back
    time.sleep(2.1)
    assert transactional_email_deliver(second.id) == T.SENT
    assert [rcpts for _, rcpts, _ in relay.messages] == [["a@example.org"], ["b@example.org"]]
