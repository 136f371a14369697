"""The engine feeds the catch-all failure rate: accepted messages and refusals of one
provider through a real relay, and the provider is paused whatever its texts say."""

from __future__ import annotations

import pytest

from deliverability import gate
from deliverability.breaker.engine import Breaker
from sending.models import Delivery
from sending.services import deliveries_send
from tests.sending import conftest
from tests.sending.conftest import add_relay, delivery_ids, make_mailing

pytestmark = pytest.mark.django_db(transaction=True)
S = Delivery.State


def test_a_provider_refusing_30_percent_with_a_new_text_is_paused(
        sending_env, relay_factory, bulk_pool, redis_client, monkeypatch):
    # An unknown 5xx: no rule knows the wording, no classifier reason maps to a class.
    monkeypatch.setitem(conftest.RULES, "frob",
                        "554 5.0.0 Frobnicator error 7731")
    gate.forget()
    relay = relay_factory()
    add_relay(bulk_pool, relay, name="a")
    addresses = [f"{'frob' if i % 10 in (3, 6, 9) else 'reader'}{i}@frobnicator.example"
                 for i in range(300)]
    mailing = make_mailing(bulk_pool, addresses)
    deliveries_send(delivery_ids(mailing))

    status = Breaker(redis=redis_client).status("frobnicator.example", bulk_pool.name)
    assert status["state"] == "paused" and status["class"] == "failure_rate"
    assert "catch-all" in status["reason"]
    held = mailing.deliveries.filter(attempts=0, state=S.DEFERRED)
    assert held.exists() and "provider paused" in held.first().last_reply
    sent = mailing.deliveries.filter(state=S.SENT).count()
    assert 30 <= sent <= 60  # paused after the minimum sample, not at the end


def test_a_provider_refusing_a_few_recipients_is_not_paused(
        sending_env, relay_factory, bulk_pool, redis_client):
    gate.forget()
    relay = relay_factory()
    add_relay(bulk_pool, relay, name="a")
    # "unknown" local parts get 550 5.1.1 user unknown from the scripted relay.
    addresses = [f"{'unknown' if i % 3 == 0 else 'reader'}{i}@frobnicator.example"
                 for i in range(150)]
    mailing = make_mailing(bulk_pool, addresses)
    deliveries_send(delivery_ids(mailing))
    status = Breaker(redis=redis_client).status("frobnicator.example", bulk_pool.name)
    assert status["state"] == "ok"
    assert mailing.deliveries.filter(state=S.SENT).count() == 100


def test_a_block_that_needs_the_delisting_form_is_retried_with_the_held_ones(
        sending_env, relay_factory, bulk_pool, redis_client, monkeypatch):
    """Manual keys have no cool-down: the blocked message is re-asked about like the
    deliveries the gate holds (each minute), so it goes with the probes once the
    operator acknowledged, not hours later on the recipient retry schedule."""
    import time

    monkeypatch.setitem(conftest.RULES, "swiss",
                        "554 5.7.1 Swisscom AG IP: 127.0.0.1, You are not allowed to send us mail")
    gate.forget()
    relay = relay_factory()
    add_relay(bulk_pool, relay, name="a")
    mailing = make_mailing(bulk_pool, ["swiss1@bluewin.ch", "swiss2@bluewin.ch"])
    deliveries_send(delivery_ids(mailing))
    assert Breaker(redis=redis_client).status("swisscom", bulk_pool.name)["state"] == "manual"
    blocked, held = mailing.deliveries.order_by("id")
    assert blocked.attempts == 1 and held.attempts == 0
    for row in (blocked, held):
        assert row.state == S.DEFERRED
        assert 55 <= row.next_attempt_at.timestamp() - time.time() <= 61
