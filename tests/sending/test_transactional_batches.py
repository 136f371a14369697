"""Transactional mail in batches: rows claimed together, one pipelined session, one mail a row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from sending import transactional
from sending.models import Relay as RelayRow
from sending.models import RelayPool, TransactionalEmail
from sending.transactional import (
    _in_flight_key,
    close_sessions,
    transactional_email_reap,
    transactional_emails_deliver,
    transactional_emails_send,
)

pytestmark = pytest.mark.django_db(transaction=True)
T = TransactionalEmail.State


@pytest.fixture
def tx_relay(relay_factory, redis_client):
    relay = relay_factory()
    pool = RelayPool.objects.create(name="tx", purpose=RelayPool.Purpose.TRANSACTIONAL)
    RelayRow.objects.create(pool=pool, name="tx-relay", host="127.0.0.1", port=relay.port,
                            tls_mode="none")
    yield relay
    close_sessions()


@pytest.fixture
def tasks(monkeypatch):
    """The worker tasks the recording asks for, captured instead of sent to the broker."""
    from sending.tasks import transactional_deliver_batch

    calls: list[tuple[list[int], float | None]] = []
    monkeypatch.setattr(transactional_deliver_batch, "apply_async",
                        lambda args, countdown=None: calls.append((args[0], countdown)))
    return calls


def _record(addresses, **extra) -> list[int]:
    return [row.id for row in transactional_emails_send(
        {"to": a, "subject": "Please confirm", "body_text": "Click.\n",
         "from_email": "News <news@example.org>", **extra} for a in addresses)]


def test_recorded_in_bulk_and_handed_to_workers_a_batch_per_task(tasks, redis_client):
    ids = _record(f"r{i}@example.org" for i in range(250))
    assert TransactionalEmail.objects.filter(state=T.QUEUED).count() == 250
    batch = transactional.BATCH_SIZE
    assert [len(chunk) for chunk, _ in tasks] == [batch, batch, 250 - 2 * batch]
    assert [i for chunk, _ in tasks for i in chunk] == ids


def test_a_batch_goes_over_one_pipelined_session_one_mail_per_row(tx_relay, tasks):
    ids = _record(f"r{i}@example.org" for i in range(30))
    assert transactional_emails_deliver(ids) == {T.SENT: 30}
    assert transactional_emails_deliver(ids) == {}  # delivered twice: nothing sent again
    messages = tx_relay.messages
    assert sorted(rcpts[0] for _, rcpts, _ in messages) == sorted(
        f"r{i}@example.org" for i in range(30))
    assert {mail_from for mail_from, _, _ in messages} == {"news@example.org"}
    commands = tx_relay.handler.commands
    assert commands.count("RSET") == 29  # one session, RSET between messages
    # MAIL, RCPT and DATA went out in one write (RFC 2920), before MAIL's answer.
    pipelined = [line for line in commands if line.startswith("... ")]
    assert all("RCPT TO:<" in line and "DATA" in line for line in pipelined)
    rows = {row.message_id: row for row in TransactionalEmail.objects.all()}
    for _, _, data in messages:
        message_id = data.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()
        row = rows[message_id]
        assert row.state == T.SENT and row.attempts == 1 and row.sent_at is not None
        assert row.last_reply.startswith("250 ") and "tx-relay" in row.relay
        assert b"Auto-Submitted: auto-generated" in data
    assert len(tasks) == 1  # the recording's task; nothing handed back


def test_refusals_are_answered_per_row_and_the_session_goes_on(tx_relay, tasks):
    ids = _record(["a@example.org", "unknown1@example.org", "later1@example.org",
                   "b@example.org"])
    assert transactional_emails_deliver(ids) == {T.SENT: 2, T.FAILED: 1, T.DEFERRED: 1}
    rows = {row.to: row for row in TransactionalEmail.objects.all()}
    assert rows["unknown1@example.org"].last_reply.startswith("550 5.1.1")
    later = rows["later1@example.org"]
    assert later.attempts == 1 and later.next_attempt_at > timezone.now()
    assert [rcpts for _, rcpts, _ in tx_relay.messages] == [["a@example.org"],
                                                            ["b@example.org"]]


def test_a_session_the_relay_closed_between_batches_is_replaced_before_sending(tx_relay,
                                                                               tasks):
    assert transactional_emails_deliver(_record(["a@example.org"])) == {T.SENT: 1}
    tx_relay.handler.refuse_rset = ["421 4.4.2 idle too long, closing"]
    assert transactional_emails_deliver(_record(["b@example.org", "c@example.org"])) == {
        T.SENT: 2}
    assert [rcpts[0] for _, rcpts, _ in tx_relay.messages] == [
        "a@example.org", "b@example.org", "c@example.org"]  # each once


def test_a_batch_cut_short_leaves_its_rows_to_the_reaper_by_their_markers(
        tx_relay, tasks, monkeypatch, redis_client):
    ids = _record(["a@example.org", "b@example.org", "c@example.org"])
    answered = []

    def crash_after_the_first_answer(email, relay, code, text):
        answered.append(email.to)
        raise RuntimeError("worker dies here")

    monkeypatch.setattr(transactional, "_finish", crash_after_the_first_answer)
    with pytest.raises(RuntimeError):
        transactional_emails_deliver(ids)
    assert answered == ["a@example.org"] and len(tx_relay.messages) == 1
    assert set(TransactionalEmail.objects.values_list("state", flat=True)) == {T.SENDING}
    assert redis_client.get(_in_flight_key(ids[0])) is not None  # it was on the wire
    assert redis_client.get(_in_flight_key(ids[1])) is None

    later = timezone.now() + timedelta(hours=1)
    assert transactional_email_reap(now=later) == {"requeued": 2, "review": 1}
    assert TransactionalEmail.objects.get(id=ids[0]).state == T.REVIEW  # never resent blindly


def test_redis_down_mid_batch_defers_the_rest_without_counting_an_attempt(
        tx_relay, tasks, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    ids = _record(["a@example.org", "b@example.org"])
    real_transaction = transactional.smtp_transaction
    calls = []

    def redis_fails_on_the_second(session, mail_from, rcpt, data, before_data=None):
        calls.append(rcpt)
        if len(calls) == 2:
            def before_data():
                raise RedisConnectionError("gone")
        return real_transaction(session, mail_from, rcpt, data, before_data)

    monkeypatch.setattr(transactional, "smtp_transaction", redis_fails_on_the_second)
    assert transactional_emails_deliver(ids) == {T.SENT: 1, T.DEFERRED: 1}
    second = TransactionalEmail.objects.get(id=ids[1])
    assert second.attempts == 0 and "redis unavailable" in second.last_reply
    assert [rcpts for _, rcpts, _ in tx_relay.messages] == [["a@example.org"]]


def test_a_relay_that_runs_out_of_connections_mid_batch_hands_only_the_rest_on(
        tx_relay, relay_factory, tasks, monkeypatch):
    second = relay_factory()
    RelayRow.objects.create(pool=RelayPool.objects.get(name="tx"), name="second",
                            host="127.0.0.1", port=second.port, tls_mode="none", priority=200)
    real_session = transactional._session
    opened = []

    def first_relay_full_after_one(relay):
        opened.append(relay.name)
        if relay.name == "tx-relay" and opened.count("tx-relay") > 1:
            raise transactional._RelayBusy(relay.label)
        return real_session(relay)

    monkeypatch.setattr(transactional, "_session", first_relay_full_after_one)
    ids = _record(["a@example.org", "b@example.org", "c@example.org"])
    assert transactional_emails_deliver(ids) == {T.SENT: 3}
    assert [rcpts for _, rcpts, _ in tx_relay.messages] == [["a@example.org"]]
    assert [rcpts for _, rcpts, _ in second.messages] == [["b@example.org"],
                                                          ["c@example.org"]]


def test_a_row_given_a_final_state_before_the_batch_goes_out_is_written_not_sent(
        tx_relay, tasks, monkeypatch):
    """The place for a per-batch check (is the mail still wanted?): the batch's start."""
    real_init = transactional._Batch.__init__

    def drop_the_second(self, emails):
        real_init(self, emails)
        emails[1].state, emails[1].last_reply = T.FAILED, "no longer wanted"

    monkeypatch.setattr(transactional._Batch, "__init__", drop_the_second)
    ids = _record(["a@example.org", "b@example.org", "c@example.org"])
    assert transactional_emails_deliver(ids) == {T.SENT: 2, T.FAILED: 1}
    assert TransactionalEmail.objects.get(id=ids[1]).last_reply == "no longer wanted"
    assert [rcpts for _, rcpts, _ in tx_relay.messages] == [["a@example.org"],
                                                            ["c@example.org"]]


def test_a_confirmation_to_an_address_suppressed_since_is_not_sent(tx_relay, tasks):
    # The stop that always stops, for transactional mail a person asked for: suppressed
    # between the signup and the send (here by hash, as an erasure leaves it, and in
    # another spelling), the confirmation is not sent; an operator's alert still is.
    from deliverability.models import Suppression
    from deliverability.suppression import hashed

    Suppression.objects.create(address=hashed("gone@example.org"), reason="erased")
    Suppression.objects.create(address="bounced@example.org", reason="hard_bounce")
    ids = _record(["Gone@Example.org", "bounced@example.org", "fine@example.org"],
                  purpose="confirmation")
    alert = _record(["bounced@example.org"], purpose="alert")
    assert transactional_emails_deliver(ids + alert) == {T.SENT: 2, T.FAILED: 2}
    sent = TransactionalEmail.objects.filter(state=T.SENT)
    assert {(e.to, e.purpose) for e in sent} == {("fine@example.org", "confirmation"),
                                                 ("bounced@example.org", "alert")}
    assert sorted(rcpts[0] for _, rcpts, _ in tx_relay.messages) == [
        "bounced@example.org", "fine@example.org"]
    stopped = TransactionalEmail.objects.filter(state=T.FAILED)
    assert {e.to for e in stopped} == {"Gone@Example.org", "bounced@example.org"}
    assert all(e.purpose == "confirmation" and "suppressed" in e.last_reply and
               e.attempts == 0 for e in stopped)
