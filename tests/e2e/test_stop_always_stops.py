"""Whole-system: an unsubscribe after fan-out stops mail already queued (real Celery workers).

RFC 8058's promise: once the one-click POST is answered, no more mail. The
engine asks, just before each message, whether the subscription is still
confirmed, the subscriber not erased, the list not deleted and the address
not suppressed; a delivery that fails the check ends ``skipped`` (or
``suppressed``) with the reason and nothing goes to the relay.
"""

from __future__ import annotations

import pytest
from django.test import Client

from newsletter import links
from newsletter.models import MailingList, Subscriber, Subscription
from newsletter.services import subscriber_erase
from sending.lifecycle import mailing_pause, mailing_resume
from sending.models import Delivery, RelayPool
from sending.services import deliveries_dispatch, deliveries_sweep, mailing_create, mailing_start
from tests.helpers import wait_until
from tests.sending import conftest as sending_fixtures
from tests.sending.conftest import add_relay

relay_factory = sending_fixtures.relay_factory
sending_env = sending_fixtures.sending_env

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
S = Delivery.State
WORKER_ENV = {"SENDING_PROVIDER_RATE_PER_S": "0", "SENDING_REDISPATCH_SECONDS": "1",
              "LOG_LEVEL": "WARNING"}


def _mailing(pool, count: int):
    news = MailingList.objects.create(name="News", slug="news")
    subscriptions = []
    for i in range(count):
        subscriber = Subscriber.objects.create(email=f"reader{i}@example.net")
        subscriptions.append(Subscription.objects.create(
            subscriber=subscriber, mailing_list=news, status=Subscription.Status.CONFIRMED))
    mailing = mailing_create(from_email="News <news@example.org>", subject="June",
                             text="Hello\nLeave: {{ unsubscribe_url }}\n", pool=pool)
    mailing_start(mailing=mailing, dispatch=False,
                  recipients=[(s.id, s.subscriber.email) for s in subscriptions])
    return mailing, subscriptions


def _one_click(subscription) -> None:
    """What a mailbox provider does with List-Unsubscribe-Post (RFC 8058 section 3.2)."""
    url = links.one_click_url(subscription.id).removeprefix(links.absolute(""))
    answer = Client().post(url, {"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200, answer.content


def _drive_until_done(mailing, timeout: float = 90) -> None:
    def done():
        deliveries_sweep()
        return not mailing.deliveries.filter(state__in=Delivery.OPEN_STATES).exists()

    wait_until(done, timeout=timeout, interval=0.5)


def _received(relay) -> set[str]:
    return {r for _, rcpts, _ in relay.messages for r in rcpts}


def test_an_unsubscribe_between_fan_out_and_send_gets_nothing(
        sending_env, relay_factory, celery_worker_factory):
    sending_env(**WORKER_ENV)
    relay = relay_factory()
    pool = RelayPool.objects.create(name="bulk-stop", purpose=RelayPool.Purpose.BULK)
    add_relay(pool, relay, name="sink")
    mailing, subscriptions = _mailing(pool, 30)
    assert deliveries_dispatch(mailing_id=mailing.id) > 0  # batches wait on the broker

    _one_click(subscriptions[3])
    _one_click(subscriptions[17])
    subscriber_erase(subscriber_id=subscriptions[9].subscriber_id)
    celery_worker_factory("bulk", name="stop", **WORKER_ENV)
    _drive_until_done(mailing)

    received = _received(relay)
    stopped = {"reader3@example.net", "reader17@example.net", "reader9@example.net"}
    assert not received & stopped
    assert len(received) == 27
    rows = {d.address: d for d in mailing.deliveries.all()}
    assert rows["reader3@example.net"].state == S.SKIPPED
    assert "unsubscribed" in rows["reader3@example.net"].last_reply
    # Erasing cancels the person's waiting delivery and takes the address off it
    # (sending.privacy); had a worker held it already, the stop check skips it.
    assert "reader9@example.net" not in rows
    erased = [d for address, d in rows.items() if address.endswith("@erased.invalid")]
    assert len(erased) == 1
    assert erased[0].state in (S.CANCELLED, S.SKIPPED, S.SUPPRESSED)


def test_an_unsubscribe_during_a_pause_holds_after_resume(
        sending_env, relay_factory, celery_worker_factory):
    sending_env(**WORKER_ENV)
    relay = relay_factory()
    pool = RelayPool.objects.create(name="bulk-pause", purpose=RelayPool.Purpose.BULK)
    add_relay(pool, relay, name="sink")
    mailing, subscriptions = _mailing(pool, 30)
    deliveries_dispatch(mailing_id=mailing.id)
    mailing_pause(mailing, reason="operator pause")

    celery_worker_factory("bulk", name="pause", **WORKER_ENV)
    for subscription in subscriptions[:5]:
        _one_click(subscription)
    mailing_resume(mailing)
    _drive_until_done(mailing)

    received = _received(relay)
    assert not received & {f"reader{i}@example.net" for i in range(5)}
    assert len(received) == 25
    assert mailing.deliveries.filter(state=S.SKIPPED).count() == 5
