"""The breaker counts each delivery once, and late reports need several deliveries to trip."""

from __future__ import annotations

import pytest

from deliverability.breaker.engine import MANUAL, PAUSED, PROBING, Breaker
from deliverability.intake import ingest
from deliverability.models import BounceEvent
from sending.models import Delivery
from tests.deliverability.hostile_support import S3150, dsn
from tests.deliverability.intake_support import make_delivery, return_path

YAHOO_TSS09 = ("5.7.2 [TSS09] All messages from 192.0.2.25 will be permanently deferred; "
               "Retrying will NOT succeed.")  # a rule that trips on one SMTP answer


@pytest.fixture
def breaker(redis_client):
    return Breaker(redis=redis_client, clock=lambda: 1_000_000.0)


def _block(breaker, delivery_id, *, provider="microsoft_consumer", late=False, text=S3150):
    return breaker.record(provider=provider, pool="bulk", code=550, text=text,
                          delivery_id=delivery_id, late=late)


def test_one_delivery_counts_once_however_often_it_signals(db, breaker):
    for _ in range(10):
        assert _block(breaker, 7) is None
    assert breaker.status("microsoft_consumer", "bulk")["state"] == "ok"
    assert _block(breaker, 8) == PAUSED  # a second delivery: the trigger (2) is reached


def test_late_reports_need_several_distinct_deliveries_even_for_a_one_answer_rule(db, breaker):
    assert _block(breaker, 1, provider="yahoo", text=YAHOO_TSS09, late=True) is None
    assert _block(breaker, 2, provider="yahoo", text=YAHOO_TSS09, late=True) is None
    assert _block(breaker, 3, provider="yahoo", text=YAHOO_TSS09, late=True) == PAUSED


def test_an_smtp_answer_trips_a_one_answer_rule_at_once(db, breaker):
    assert _block(breaker, 4, provider="yahoo", text=YAHOO_TSS09) == PAUSED


def test_late_reports_never_judge_a_probe(db, breaker):
    breaker.acknowledge("microsoft_consumer", "bulk", actor="op")
    for delivery_id in range(10, 20):
        assert _block(breaker, delivery_id, late=True) is None
    assert breaker.status("microsoft_consumer", "bulk")["state"] == PROBING


def test_a_pool_wide_pause_needs_blocks_from_enough_deliveries(db, breaker):
    # Two providers paused by one delivery each (one-answer rules): two providers, but
    # blocks from only 2 deliveries, fewer than pool_wide_min_deliveries (3).
    assert _block(breaker, 1, provider="yahoo", text=YAHOO_TSS09) == PAUSED
    assert _block(breaker, 2, provider="t_online", text="554 (BL) blocked") in (PAUSED, MANUAL)
    assert breaker.status("*", "bulk")["state"] == "ok"
    # A third provider, two more deliveries: now the sender, not one provider.
    _block(breaker, 3)
    assert _block(breaker, 4) == PAUSED
    assert breaker.status("*", "bulk")["state"] == PAUSED


def test_a_dsn_about_a_delivery_never_sent_counts_nothing(transactional_db, redis_client):
    delivery = make_delivery("reader@hotmail.com", provider="microsoft_consumer")
    Delivery.objects.filter(id=delivery.id).update(state=Delivery.State.QUEUED, sent_at=None)

    message = ingest(dsn([delivery.address], status="5.7.1", diagnostic=S3150), source="smtp",
                     envelope_recipients=[return_path(delivery)])

    assert "never sent" in message.review_reason
    assert list(BounceEvent.objects.values_list("action", flat=True)) == ["none"]
    assert not redis_client.keys("deliverability:breaker*")
