"""A relay's max_connections counts the sessions of every worker, through Redis."""

from __future__ import annotations

import re
import threading
import time

import pytest

from sending import slots
from sending.models import Delivery
from sending.services import ALL_BUSY, deliveries_send, reset_process_state
from sending.slots import Slots
from tests.sending.conftest import add_relay, delivery_ids, make_mailing

pytestmark = pytest.mark.django_db(transaction=True)
S = Delivery.State


def test_slots_up_to_the_limit_renewed_given_back_and_expiring(redis_client, monkeypatch):
    pool = Slots(redis_client)
    first, second = pool.take("r", 2), pool.take("r", 2)
    assert first and second and pool.take("r", 2) is None
    assert pool.held("r") == 2
    pool.give_back(first)
    third = pool.take("r", 2)
    assert third is not None and pool.take("r", 2) is None
    assert pool.take("r", 0) is not None  # 0: no limit, nothing recorded
    assert pool.held("r") == 2

    # A dead worker's slot is free once its lease runs out; the living renew theirs.
    monkeypatch.setattr(slots, "LEASE_S", 1)
    monkeypatch.setattr(slots, "RENEW_AFTER_S", 0)
    assert pool.keep(third, 2)  # renewed with a one-second lease
    pool.give_back(second)
    short = pool.take("r", 2)
    time.sleep(1.2)
    assert pool.held("r") == 0
    assert pool.take("r", 2) is not None
    assert pool.keep(short, 2)  # expired, but a slot was free: taken again
    assert not pool.keep(third, 2)  # expired and the relay is full: lost


def _in_another_worker(ids):
    """Send from another thread: its session to the relay stays open afterwards."""
    thread = threading.Thread(target=deliveries_send, args=(ids,))
    thread.start()
    thread.join()


def _open_sessions_shown(admin_client, pool) -> list[str]:
    page = admin_client.get(f"/admin/sending/relaypool/{pool.id}/change/").content.decode()
    shown = re.findall(r'class="field-open_sessions">\s*<p>([^<]*)</p>', page)
    return shown[:-1]  # the last one is the blank form's


def test_a_relay_at_its_limit_sends_nothing_more_and_the_pool_fails_over(
        sending_env, relay_factory, bulk_pool, redis_client, admin_client):
    first, second = relay_factory(), relay_factory()
    for relay, name, priority in ((first, "first", 1), (second, "second", 2)):
        row = add_relay(bulk_pool, relay, name=name, priority=priority)
        row.max_connections = 1
        row.save()
    mailing = make_mailing(bulk_pool, [f"r{i}@example.net" for i in range(6)])
    ids = delivery_ids(mailing)

    _in_another_worker(ids[:2])  # holds the one connection "first" allows
    assert len(first.messages) == 2
    assert _open_sessions_shown(admin_client, bulk_pool) == ["1", "0"]
    deliveries_send(ids[2:4])  # this worker: "first" is full, "second" is free
    assert len(first.messages) == 2 and len(second.messages) == 2
    assert _open_sessions_shown(admin_client, bulk_pool) == ["1", "1"]

    _in_another_worker(ids[4:])  # a third worker: both relays are full
    rows = {d.id: d for d in mailing.deliveries.all()}
    for delivery_id in ids[4:]:
        assert rows[delivery_id].state == S.QUEUED
        assert rows[delivery_id].attempts == 0 and rows[delivery_id].last_reply == ALL_BUSY
    assert len(first.messages) + len(second.messages) == 4

    reset_process_state()  # every session closes and gives its slot back
    time.sleep(1.1)  # the released rows come due again after a second
    deliveries_send(ids[4:])
    assert mailing.deliveries.filter(state=S.SENT).count() == 6
    recipients = [r for _, rcpts, _ in first.messages + second.messages for r in rcpts]
    assert sorted(recipients) == sorted(f"r{i}@example.net" for i in range(6))
