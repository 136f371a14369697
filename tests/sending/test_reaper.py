"""The reaper: rows of a dead worker come back; the one in flight goes to review."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from sending.models import Delivery
from sending.services import deliveries_reap, deliveries_send
from sending.throttle import Journal
from tests.sending.conftest import delivery_ids, make_mailing

pytestmark = pytest.mark.django_db(transaction=True)
S = Delivery.State


def _dead_worker(redis_client, ids, *, sent_first: bool, lease_ago: int = 600):
    """What a killed worker leaves: rows claimed by its token and its Redis journal."""
    token = "deadbeef" * 4
    journal = Journal(redis_client, token)
    journal.open()
    Delivery.objects.filter(id__in=ids).update(
        state=S.CLAIMED, claimed_by=token,
        claimed_at=timezone.now() - timedelta(seconds=lease_ago))
    if sent_first:
        assert journal.take(ids[0], None, []) == 0
        outcome = {"id": ids[0], "st": "sent", "code": 250, "text": "2.0.0 queued as Q1",
                   "relay": "a", "at": time.time(), "mid": "<pw.1@x>", "att": 1}
        assert journal.take(ids[1], outcome, []) == 0  # second message on the wire: killed
    return token


def test_reaper_applies_journal_and_marks_only_the_in_flight_row(
        sending_env, bulk_pool, redis_client):
    mailing = make_mailing(bulk_pool, [f"r{i}@example.net" for i in range(5)])
    ids = delivery_ids(mailing)
    _dead_worker(redis_client, ids, sent_first=True)

    assert deliveries_reap() == 4  # 1 review + 3 requeued
    rows = {d.id: d for d in mailing.deliveries.all()}
    assert rows[ids[0]].state == S.SENT and rows[ids[0]].last_code == 250
    assert rows[ids[0]].message_id == "<pw.1@x>"
    assert rows[ids[1]].state == S.REVIEW and "in flight" in rows[ids[1]].last_reply
    assert {rows[i].state for i in ids[2:]} == {S.QUEUED}
    assert all(rows[i].claimed_by == "" for i in ids[2:])
    assert deliveries_reap() == 0


def test_live_claims_are_left_alone(sending_env, bulk_pool, redis_client):
    mailing = make_mailing(bulk_pool, ["a@example.net", "b@example.net"])
    _dead_worker(redis_client, delivery_ids(mailing), sent_first=False, lease_ago=0)
    assert deliveries_reap() == 0
    assert set(mailing.deliveries.values_list("state", flat=True)) == {S.CLAIMED}
    assert deliveries_send(delivery_ids(mailing)) == {"claimed": 0}  # not claimable twice


def test_lost_journal_sends_all_claimed_rows_to_review(sending_env, bulk_pool, redis_client):
    mailing = make_mailing(bulk_pool, ["a@example.net", "b@example.net"])
    _dead_worker(redis_client, delivery_ids(mailing), sent_first=True)
    redis_client.flushdb()  # Redis restarted and lost the journal of the dead worker
    assert deliveries_reap() == 2
    assert set(mailing.deliveries.values_list("state", flat=True)) == {S.REVIEW}


def test_the_journal_survives_a_redis_that_lost_its_scripts(redis_client):
    """After a Redis restart the script cache is empty: the next take loads it again."""
    from sending.throttle import Bucket, read_journal

    journal = Journal(redis_client, "script-flush")
    journal.open()
    assert journal.take(1, None, [Bucket.per_second("x", 0)]) == 0
    redis_client.script_flush()
    assert journal.take(2, {"id": 1, "st": "sent"}, [Bucket.per_second("x", 0)]) == 0
    meta, outcomes = read_journal(redis_client, "script-flush")
    assert meta["cur"] == "2" and outcomes == [{"id": 1, "st": "sent"}]
