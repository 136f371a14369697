"""Blocks reported later by a DSN count against the egress IP the message left from,
like blocks answered at SMTP time (sending.services.breaker_pool)."""

from __future__ import annotations

import pytest

from deliverability.intake import ingest
from deliverability.models import BounceEvent
from sending.models import Mailing, Relay, RelayPool
from sending.relays import relay_config
from tests.deliverability.intake_support import bounce_for, make_delivery


@pytest.fixture
def run_on_commit(transactional_db):
    yield


def two_ip_pool():
    pool = RelayPool.objects.create(name="news", purpose=RelayPool.Purpose.BULK)
    first = Relay.objects.create(pool=pool, name="a", host="127.0.0.1", port=2525,
                                 source_address="192.0.2.10")
    second = Relay.objects.create(pool=pool, name="b", host="127.0.0.1", port=2526,
                                  source_address="192.0.2.11")
    return pool, first, second


def test_a_dsn_block_counts_against_the_ip_the_message_left_from(run_on_commit, redis_client):
    pool, _, second = two_ip_pool()
    mailing = Mailing.objects.create(reference="campaign:9", pool=pool, from_email="n@x.org",
                                     subject_template="s", text_template="t",
                                     state=Mailing.State.SENDING)
    delivery = make_delivery("reader@hotmail.com", provider="microsoft_consumer",
                             mailing=mailing)
    delivery.relay = relay_config(second).label
    delivery.save()

    event = ingest(bounce_for("microsoft_s3150_block", delivery), source="smtp").events.get()

    assert event.kind == "block"
    assert (event.action, event.action_detail) == (BounceEvent.Action.BREAKER,
                                                    "microsoft_consumer/news@192.0.2.11")
    keys = {k.decode() for k in redis_client.keys("deliverability:breaker*")}
    counted = {k for k in keys if "microsoft_consumer" in k}  # the hits (not "seen" markers)
    assert counted and all(":news@192.0.2.11:microsoft_consumer" in k for k in counted), keys
    assert not any(":news:" in k for k in keys), keys  # nothing under the bare pool key


def test_a_relay_without_its_own_address_keeps_the_pool_key(run_on_commit, redis_client):
    pool = RelayPool.objects.create(name="plain", purpose=RelayPool.Purpose.BULK)
    relay = Relay.objects.create(pool=pool, name="a", host="127.0.0.1", port=2525)
    mailing = Mailing.objects.create(reference="campaign:9", pool=pool, from_email="n@x.org",
                                     subject_template="s", text_template="t",
                                     state=Mailing.State.SENDING)
    delivery = make_delivery("reader@hotmail.com", provider="microsoft_consumer",
                             mailing=mailing)
    delivery.relay = relay_config(relay).label
    delivery.save()
    event = ingest(bounce_for("microsoft_s3150_block", delivery), source="smtp").events.get()
    assert event.action_detail == "microsoft_consumer/plain"
