"""Bulk never delays transactional mail: separate queue, workers and pool."""

from __future__ import annotations

import time

import pytest

from newsletter.models import MailingList
from newsletter.services.consent import Client
from newsletter.services.signup import SignupOutcome, subscription_request
from sending.models import Delivery, RelayPool
from sending.services import deliveries_dispatch
from sending.sink import sink_messages
from sending.transactional import transactional_email_send
from tests.helpers import wait_until
from tests.sending import conftest as sending_fixtures
from tests.sending.conftest import add_relay, make_mailing

# Fixtures shared with tests/sending.
relay_factory = sending_fixtures.relay_factory
sending_env = sending_fixtures.sending_env

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_confirmation_arrives_within_5s_behind_100k_bulk_deliveries(
        sending_env, relay_factory, smtp_sink, celery_worker_factory):
    bulk_relay = relay_factory()
    pool = RelayPool.objects.create(name="bulk-big", purpose=RelayPool.Purpose.BULK)
    add_relay(pool, bulk_relay, name="bulk-sink")
    sending_env(CANARY_MIN_RECIPIENTS="1000000")  # the whole backlog at once, no canary
    mailing = make_mailing(pool, (f"bulk{i}@example.net" for i in range(100_000)))
    assert mailing.deliveries.count() == 100_000
    env = {"SENDING_PROVIDER_RATE_PER_S": "0", "LOG_LEVEL": "WARNING"}
    celery_worker_factory("bulk", name="bulk", **env)
    celery_worker_factory("transactional", name="transactional", **env)
    assert deliveries_dispatch(mailing_id=mailing.id) == 500
    wait_until(lambda: bulk_relay.messages, timeout=30)  # bulk is really flowing

    started = time.monotonic()
    transactional_email_send(to="new@example.org", subject="Please confirm", body_text="link")
    wait_until(lambda: sink_messages(smtp_sink.directory), timeout=5, interval=0.02)
    elapsed = time.monotonic() - started
    assert elapsed < 5
    queued = Delivery.objects.filter(mailing=mailing, state=Delivery.State.QUEUED).count()
    assert queued > 90_000  # the backlog was still there

    # A signup's confirmation, the whole way: the signup queue, the drain (which records
    # its mail in a batch) and a batch task, all on the transactional queue.
    mailing_list = MailingList.objects.create(name="Shop News", slug="shop-news")
    started = time.monotonic()
    assert subscription_request(mailing_list=mailing_list, email="reader@example.org",
                                client=Client(ip="192.0.2.10")) == SignupOutcome.QUEUED
    wait_until(lambda: any(m.rcpt_to == "reader@example.org"
                           for m in sink_messages(smtp_sink.directory)),
               timeout=5, interval=0.02)
    assert time.monotonic() - started < 5
    assert Delivery.objects.filter(mailing=mailing, state=Delivery.State.QUEUED).count() > 80_000
