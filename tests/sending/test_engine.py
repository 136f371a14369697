"""The bulk engine in-process against a real aiosmtpd relay, real Redis and the test DB."""

from __future__ import annotations

import email
import email.policy
import time

import pytest

from deliverability import verp
from deliverability.models import Suppression
from deliverability.suppression import suppress
from sending.models import Delivery, DeliveryAttempt, Mailing
from sending.services import deliveries_dispatch, deliveries_send, deliveries_sweep, mailing_start
from tests.sending.conftest import add_relay, delivery_ids, make_mailing

pytestmark = pytest.mark.django_db(transaction=True)
S = Delivery.State


def parsed(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_mailing_is_sent_once_with_headers_and_verp(sending_env, relay_factory, bulk_pool):
    relay = relay_factory()
    add_relay(bulk_pool, relay, name="a")
    mailing = make_mailing(bulk_pool, [f"reader{i}@example.net" for i in range(12)])
    ids = delivery_ids(mailing)

    result = deliveries_send(ids)
    assert result["claimed"] == 12 and result[S.SENT] == 12
    assert deliveries_send(ids) == {"claimed": 0}  # a redelivered task sends nothing
    assert len(relay.messages) == 12
    assert relay.handler.commands.count("RSET") == 11  # one session, RSET between messages

    by_id = {}
    for mail_from, rcpts, raw in relay.messages:
        assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
        delivery_id = verp.decode(mail_from)
        assert delivery_id is not None and mail_from.endswith("@bounce.example.org")
        by_id[delivery_id] = (rcpts, parsed(raw))
    assert sorted(by_id) == ids
    for delivery in Delivery.objects.filter(mailing=mailing):
        rcpts, message = by_id[delivery.id]
        assert rcpts == [delivery.address]
        assert delivery.state == S.SENT and delivery.attempts == 1
        assert delivery.message_id == message["Message-ID"]
        assert delivery.last_code == 250 and "queued as" in delivery.last_reply
        assert message["List-Id"] == "<news.example.org>"
        assert message["Subject"] == "Hello reader"
        assert message["Feedback-ID"].startswith(f"{mailing.id}:bulk-test:")
        assert message["Date"]
    assert len({m["Message-ID"] for _, m in by_id.values()}) == 12
    assert DeliveryAttempt.objects.filter(delivery__mailing=mailing, outcome=S.SENT).count() == 12


def test_ledger_skips_duplicates_and_suppressed_and_restart_adds_nothing(
        sending_env, bulk_pool):
    suppress(address="gone@Example.NET", reason="hard_bounce")
    recipients = [(1, "a@example.net"), (2, "a@EXAMPLE.NET"), (3, "gone@example.net"),
                  (4, "b@gmail.com"), (5, "not-an-address")]
    mailing = make_mailing(bulk_pool, [])
    mailing.state = Mailing.State.DRAFT
    mailing.save()
    assert mailing_start(mailing=mailing, recipients=recipients, dispatch=False) == 2
    rows = dict(mailing.deliveries.values_list("address", "provider"))
    assert rows == {"a@example.net": "example.net", "b@gmail.com": "google"}
    with pytest.raises(ValueError, match="not startable"):
        mailing_start(mailing=mailing, recipients=recipients, dispatch=False)
    assert mailing.deliveries.count() == 2


@pytest.mark.parametrize("pipelining", [True, False])
def test_answers_bounce_suppress_defer_block(sending_env, relay_factory, bulk_pool, pipelining):
    relay = relay_factory(pipelining=pipelining)
    add_relay(bulk_pool, relay, name="a")
    mailing = make_mailing(bulk_pool, ["unknown1@example.net", "blocked1@example.net",
                                       "later1@example.net", "fine@example.net"])
    deliveries_send(delivery_ids(mailing))
    state = {d.address: d for d in mailing.deliveries.all()}
    assert state["fine@example.net"].state == S.SENT
    hard = state["unknown1@example.net"]
    assert hard.state == S.BOUNCED and hard.last_code == 550
    assert Suppression.objects.filter(address="unknown1@example.net").exists()
    block = state["blocked1@example.net"]
    assert block.state == S.DEFERRED and block.last_code == 554  # a block never bounces
    assert not Suppression.objects.filter(address="blocked1@example.net").exists()
    later = state["later1@example.net"]
    assert later.state == S.DEFERRED and later.attempts == 1
    assert later.next_attempt_at.timestamp() > time.time() + 60
    kinds = dict(DeliveryAttempt.objects.filter(delivery__mailing=mailing)
                 .values_list("delivery__address", "kind"))
    assert kinds["blocked1@example.net"] == "block"
    assert kinds["unknown1@example.net"] == "hard"


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_refused_sender_defers_and_the_session_goes_on(sending_env, relay_factory, bulk_pool,
                                                         pipelining):
    relay = relay_factory(pipelining=pipelining)
    add_relay(bulk_pool, relay, name="a")
    relay.handler.refuse_mail.append("451 4.3.0 Sender check failed, try later")
    mailing = make_mailing(bulk_pool, ["first@example.net", "second@example.net"])
    deliveries_send(delivery_ids(mailing))
    state = {d.address: d for d in mailing.deliveries.all()}
    assert state["first@example.net"].state == S.DEFERRED
    assert state["first@example.net"].last_code == 451
    assert state["second@example.net"].state == S.SENT  # same session, reset cleanly
    assert [rcpts for _, rcpts, _ in relay.messages] == [["second@example.net"]]
    # Pipelined, RCPT and DATA went out with MAIL, before its answer.
    ahead = relay.handler.commands[1]
    assert ahead.startswith("... ")
    assert ("RCPT TO:<first@example.net>\r\nDATA\r\n" in ahead) is pipelining


def test_a_session_that_fails_its_rset_is_replaced_and_the_message_goes(
        sending_env, relay_factory, bulk_pool):
    relay = relay_factory()
    add_relay(bulk_pool, relay, name="a")
    mailing = make_mailing(bulk_pool, ["one@example.net", "two@example.net"])
    ids = delivery_ids(mailing)
    deliveries_send(ids[:1])
    relay.handler.refuse_rset.append("421 4.3.2 Service shutting down")
    deliveries_send(ids[1:])
    assert mailing.deliveries.filter(state=S.SENT).count() == 2
    assert [rcpts for _, rcpts, _ in relay.messages] == [["one@example.net"],
                                                          ["two@example.net"]]
    assert relay.handler.commands.count("RSET") == 1  # the new session needs none


def test_deferred_past_max_age_expires_not_bounces(sending_env, relay_factory, bulk_pool):
    relay = relay_factory()
    add_relay(bulk_pool, relay, name="a")
    mailing = make_mailing(bulk_pool, ["later2@example.net"], max_age_hours=1)
    deliveries_send(delivery_ids(mailing))
    assert mailing.deliveries.get().state == S.DEFERRED
    Mailing.objects.filter(id=mailing.id).update(
        started_at=mailing.started_at - __import__("datetime").timedelta(hours=2))
    assert deliveries_sweep()["expired"] == 1
    delivery = mailing.deliveries.get()
    assert delivery.state == S.EXPIRED
    assert not Suppression.objects.filter(address="later2@example.net").exists()


def test_relay_down_mid_mailing_fails_over(sending_env, relay_factory, bulk_pool):
    first, second = relay_factory(), relay_factory()
    add_relay(bulk_pool, first, name="first", priority=1)
    add_relay(bulk_pool, second, name="second", priority=2)
    mailing = make_mailing(bulk_pool, [f"r{i}@example.net" for i in range(20)])
    ids = delivery_ids(mailing)
    deliveries_send(ids[:10])
    first.stop()
    deliveries_send(ids[10:])
    assert len(first.messages) == 10 and len(second.messages) == 10
    relays = dict(mailing.deliveries.values_list("id", "relay"))
    assert all("first" in relays[i] for i in ids[:10])
    assert all("second" in relays[i] for i in ids[10:])
    assert set(mailing.deliveries.values_list("state", flat=True)) == {S.SENT}


def test_all_relays_down_defers_then_sends_when_one_returns(sending_env, relay_factory,
                                                            bulk_pool, monkeypatch):
    from sending import tasks

    queued: list[list[int]] = []
    monkeypatch.setattr(tasks.deliveries_send_batch, "delay", lambda ids: queued.append(ids))
    monkeypatch.setattr(tasks.deliveries_send_batch, "apply_async",
                        lambda args, countdown: queued.append(args[0]))
    sending_env(SENDING_RELAY_DOWN_SECONDS="1")
    relay = relay_factory(start=False)
    add_relay(bulk_pool, relay, name="only")
    mailing = make_mailing(bulk_pool, [f"w{i}@example.net" for i in range(5)])
    deliveries_send(delivery_ids(mailing))
    rows = list(mailing.deliveries.all())
    assert {d.state for d in rows} == {S.DEFERRED}
    assert all("relays" in d.last_reply and d.attempts == 0 for d in rows)
    assert not relay.messages

    relay.start()
    time.sleep(1.1)  # the relay-down mark and the deferral end
    deliveries_dispatch(mailing_id=mailing.id)
    while queued:
        deliveries_send(queued.pop(0))
    assert {d.state for d in mailing.deliveries.all()} == {S.SENT}
    assert sorted(r[0] for _, r, _ in relay.messages) == sorted(d.address for d in rows)


def test_paused_provider_defers_without_charging(sending_env, relay_factory, bulk_pool,
                                                 redis_client):
    relay = relay_factory()
    add_relay(bulk_pool, relay, name="a")
    redis_client.hset("deliverability:breaker:bulk-test:google", mapping={
        "state": "paused", "until": time.time() + 600, "reason": "554 from gmail"})
    mailing = make_mailing(bulk_pool, ["x@gmail.com", "y@example.net"])
    deliveries_send(delivery_ids(mailing))
    held = mailing.deliveries.get(address="x@gmail.com")
    assert held.state == S.DEFERRED and held.attempts == 0
    assert "554 from gmail" in held.last_reply
    assert held.next_attempt_at.timestamp() > time.time() + 500
    assert mailing.deliveries.get(address="y@example.net").state == S.SENT
    assert len(relay.messages) == 1


def test_provider_throttle_is_shared_and_sends_nothing_twice(sending_env, relay_factory,
                                                             bulk_pool):
    sending_env(SENDING_PROVIDER_RATE_PER_S="4")
    relay = relay_factory()
    add_relay(bulk_pool, relay, name="a")
    mailing = make_mailing(bulk_pool, [f"t{i}@example.net" for i in range(12)])
    ids = delivery_ids(mailing)
    from sending import tasks

    requeued = []
    original = tasks.deliveries_send_batch.apply_async
    tasks.deliveries_send_batch.apply_async = lambda args, countdown: requeued.append(
        (args[0], countdown))
    try:
        first = deliveries_send(ids)
        assert first[S.SENT] == 4 and first[S.QUEUED] == 8  # one second's burst
        assert requeued and 0 < requeued[0][1] < 2
        time.sleep(1.0)
        second = deliveries_send(requeued[0][0])
        assert 3 <= second[S.SENT] <= 5
    finally:
        tasks.deliveries_send_batch.apply_async = original
    addresses = [r[0] for _, r, _ in relay.messages]
    assert len(addresses) == len(set(addresses)) == first[S.SENT] + second[S.SENT]


def test_suppressed_after_fan_out_is_not_sent(sending_env, relay_factory, bulk_pool):
    relay = relay_factory()
    add_relay(bulk_pool, relay, name="a")
    mailing = make_mailing(bulk_pool, ["keep@example.net", "drop@example.net"])
    suppress(address="drop@example.net", reason="complaint")
    deliveries_send(delivery_ids(mailing))
    assert mailing.deliveries.get(address="drop@example.net").state == S.SUPPRESSED
    assert [r for _, r, _ in relay.messages] == [["keep@example.net"]]


def test_a_block_that_pauses_the_provider_retries_when_the_breaker_reopens(
        sending_env, relay_factory, bulk_pool, redis_client):
    from deliverability import gate
    from deliverability.breaker.engine import Breaker

    gate.forget()
    relay = relay_factory()
    add_relay(bulk_pool, relay, name="a")
    # The generic DNSBL rule trips after two blocks: the second pauses example.net.
    mailing = make_mailing(bulk_pool, ["blocked1@example.net", "blocked2@example.net",
                                       "blocked3@example.net"])
    deliveries_send(delivery_ids(mailing))
    status = Breaker(redis=redis_client).status("example.net", bulk_pool.name)
    assert status["state"] == "paused"
    reopens = float(status["until"])
    rows = {d.address: d for d in mailing.deliveries.all()}
    assert rows["blocked1@example.net"].next_attempt_at.timestamp() < reopens  # before the trip
    # Retried when the breaker reopens (hours away), not at the usual retry: the same
    # instant, give or take a loaded machine.
    assert abs(rows["blocked2@example.net"].next_attempt_at.timestamp() - reopens) < 10
    held = rows["blocked3@example.net"]  # never tried: held by the gate, no attempt counted
    assert held.attempts == 0 and "provider paused" in held.last_reply
    assert len(relay.messages) == 0 and not Suppression.objects.exists()


def test_the_breaker_keys_by_egress_ip_where_the_relay_has_its_own(
        sending_env, relay_factory, bulk_pool, redis_client):
    from deliverability import gate
    from deliverability.breaker.engine import Breaker

    gate.forget()
    relay = relay_factory()
    row = add_relay(bulk_pool, relay, name="a")
    row.source_address = "127.0.0.2"  # its own egress address (any loopback one binds here)
    row.save()
    mailing = make_mailing(bulk_pool, ["blocked1@example.net", "blocked2@example.net"])
    deliveries_send(delivery_ids(mailing))
    breaker = Breaker(redis=redis_client)
    assert breaker.status("example.net", f"{bulk_pool.name}@127.0.0.2")["state"] == "paused"
    assert breaker.status("example.net", bulk_pool.name)["state"] == "ok"


def test_a_throttled_provider_gets_one_message_at_a_time(sending_env, relay_factory,
                                                         bulk_pool, redis_client):
    """While another worker holds the provider's single connection, nothing else goes."""
    from deliverability import gate
    from deliverability.breaker.engine import Breaker

    gate.forget()
    relay = relay_factory()
    add_relay(bulk_pool, relay, name="a")
    breaker = Breaker(redis=redis_client)
    for _ in range(3):  # Gmail's rate-limit reply, three times: throttled, one connection
        breaker.record(provider="google", pool=bulk_pool.name, code=421,
                       text="4.7.28 Our system has detected an unusual rate of unsolicited mail "
                            "originating from your IP address. Mail has been temporarily rate "
                            "limited.")
    mailing = make_mailing(bulk_pool, ["a@gmail.com"])
    other_worker = redis_client.lock(f"sending:single:{bulk_pool.name}:google", timeout=30)
    assert other_worker.acquire(blocking=False)
    deliveries_send(delivery_ids(mailing))
    held = mailing.deliveries.get()
    assert held.state == S.QUEUED and "one connection" in held.last_reply
    assert relay.messages == []
    other_worker.release()
    held.next_attempt_at = held.next_attempt_at.replace(year=2000)
    held.save()
    deliveries_send(delivery_ids(mailing))
    assert mailing.deliveries.get().state == S.SENT and len(relay.messages) == 1


def test_deleting_a_mailing_still_removes_its_deliveries(sending_env, relay_factory, bulk_pool):
    """The ledger's mailing link has no database constraint (fan-out speed): the ORM cascades."""
    relay = relay_factory()
    add_relay(bulk_pool, relay, name="a")
    mailing = make_mailing(bulk_pool, ["a@example.net", "b@example.net"])
    deliveries_send(delivery_ids(mailing))
    assert DeliveryAttempt.objects.count() == 2
    mailing.delete()
    assert not Delivery.objects.exists() and not DeliveryAttempt.objects.exists()
