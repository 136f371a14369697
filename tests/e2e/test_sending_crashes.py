"""Whole-system: real Celery workers killed with SIGKILL, Redis restarted, a relay at the end.

Each test runs a mailing through real worker processes (``bulk`` queue) to a
real aiosmtpd relay in this process, drives the beat job (sweeper + reaper)
itself, and then checks the sink against the ledger: every ``sent`` delivery
has exactly one message, a ``review`` one (possibly sent) at most one, no
Message-ID arrives twice, and nothing is left waiting.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import Counter

import pytest

from sending.models import Delivery, RelayPool
from sending.services import deliveries_dispatch, deliveries_sweep
from tests.helpers import wait_until
from tests.sending import conftest as sending_fixtures
from tests.sending.conftest import Relay, ScriptedHandler, add_relay, make_mailing

# Fixtures shared with tests/sending.
relay_factory = sending_fixtures.relay_factory
sending_env = sending_fixtures.sending_env

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
S = Delivery.State

WORKER_ENV = {"SENDING_CLAIM_LEASE_SECONDS": "3", "SENDING_PROVIDER_RATE_PER_S": "0",
              "SENDING_RELAY_DOWN_SECONDS": "1", "LOG_LEVEL": "WARNING"}


class SlowHandler(ScriptedHandler):
    """Takes a while to answer DATA, so kills often land with a message in flight."""

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        await asyncio.sleep(0.02)
        return reply


def _env(sending_env):
    sending_env(SENDING_BATCH_SIZE="20", SENDING_REDISPATCH_SECONDS="2", **WORKER_ENV)


def _slow_relay(relay_factory):
    relay = relay_factory(start=False)
    relay.handler = SlowHandler()
    return relay.start()


def _drive_until_done(mailing, timeout: float):
    """Play beat: sweep (reap + dispatch) until no delivery is open."""
    def done():
        deliveries_sweep()
        return not mailing.deliveries.filter(state__in=Delivery.OPEN_STATES).exists()

    wait_until(done, timeout=timeout, interval=0.5)


def _check_exactly_once(mailing, relay: Relay) -> Counter:
    per_rcpt = Counter(r for _, rcpts, _ in relay.messages for r in rcpts)
    ids = Counter(raw.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0]
                  for _, _, raw in relay.messages)
    assert max(ids.values()) == 1, "a Message-ID arrived twice"
    states = Counter()
    for address, state in mailing.deliveries.values_list("address", "state"):
        states[state] += 1
        if state == S.SENT:
            assert per_rcpt[address] == 1, (address, per_rcpt[address])
        else:
            assert state == S.REVIEW, (address, state)
            assert per_rcpt[address] <= 1
    return states


def test_ten_kill9s_mid_mailing_send_every_message_once(
        sending_env, relay_factory, celery_worker_factory):
    _env(sending_env)
    relay = _slow_relay(relay_factory)
    pool = RelayPool.objects.create(name="bulk-e2e", purpose=RelayPool.Purpose.BULK)
    add_relay(pool, relay, name="sink")
    mailing = make_mailing(pool, [f"k{i}@example.net" for i in range(400)])
    deliveries_dispatch(mailing_id=mailing.id)

    rng = random.Random(5)
    kills = 0
    for number in range(10):
        worker = celery_worker_factory("bulk", name=f"kill{number}", **WORKER_ENV)
        time.sleep(rng.uniform(0.2, 1.2))
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait()
        kills += 1
        deliveries_sweep()
    sent_before_restart = len(relay.messages)
    celery_worker_factory("bulk", name="survivor", **WORKER_ENV)
    _drive_until_done(mailing, timeout=120)

    states = _check_exactly_once(mailing, relay)
    assert states[S.REVIEW] <= kills  # at most one per killed connection
    assert states[S.SENT] + states[S.REVIEW] == 400
    assert 0 < sent_before_restart < 400  # the kills really landed mid-mailing


def test_redis_restart_mid_mailing_sends_every_message_once(
        sending_env, relay_factory, celery_worker_factory, private_redis):
    _env(sending_env)
    relay = _slow_relay(relay_factory)
    pool = RelayPool.objects.create(name="bulk-redis", purpose=RelayPool.Purpose.BULK)
    add_relay(pool, relay, name="sink")
    mailing = make_mailing(pool, [f"r{i}@example.net" for i in range(300)])
    celery_worker_factory("bulk", name="through-restart", **WORKER_ENV)
    deliveries_dispatch(mailing_id=mailing.id)

    wait_until(lambda: deliveries_sweep() and len(relay.messages) >= 40, timeout=60,
               interval=0.2)
    private_redis.stop()
    time.sleep(1.0)
    private_redis.start()
    sent_at_restart = len(relay.messages)
    _drive_until_done(mailing, timeout=120)

    states = _check_exactly_once(mailing, relay)
    assert states[S.SENT] == 300 and states[S.REVIEW] == 0
    assert sent_at_restart < 300


class HoldingHandler(ScriptedHandler):
    """Keeps the DATA answer back long enough to kill the sender in between."""

    def __init__(self):
        super().__init__()
        self.data_seen = 0

    async def handle_DATA(self, server, session, envelope):
        self.data_seen += 1
        await asyncio.sleep(5)
        return await super().handle_DATA(server, session, envelope)


def test_a_transactional_worker_killed_mid_data_leaves_its_mail_for_review(
        relay_factory, celery_worker_factory, redis_client):
    from datetime import timedelta

    from django.utils import timezone

    from sending.models import Relay as RelayRow
    from sending.models import TransactionalEmail
    from sending.transactional import (
        transactional_email_due_ids,
        transactional_email_reap,
        transactional_email_send,
    )

    relay = relay_factory(start=False)
    relay.handler = HoldingHandler()
    relay.start()
    pool = RelayPool.objects.create(name="tx-e2e", purpose=RelayPool.Purpose.TRANSACTIONAL)
    RelayRow.objects.create(pool=pool, name="holding", host="127.0.0.1", port=relay.port,
                            tls_mode="none")
    worker = celery_worker_factory("transactional", name="tx-killed")
    email = transactional_email_send(to="ann@example.org", subject="Please confirm",
                                     body_text="Click.\n")
    wait_until(lambda: relay.handler.data_seen == 1, timeout=20)
    os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait()
    email.refresh_from_db()
    assert email.state == TransactionalEmail.State.SENDING

    later = timezone.now() + timedelta(hours=1)  # past the claim lease
    assert transactional_email_reap(now=later) == {"requeued": 0, "review": 1}
    email.refresh_from_db()
    assert email.state == TransactionalEmail.State.REVIEW
    assert "possibly sent" in email.last_reply
    assert email.id not in transactional_email_due_ids()  # never resent blindly
