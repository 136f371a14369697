"""The stop that always stops: the engine's check just before each message, in-process."""

from __future__ import annotations

import email
import email.policy

import pytest

from deliverability import verp
from deliverability.evidence import tie_to_delivery
from deliverability.suppression import suppress
from newsletter import links, tokens
from newsletter.models import MailingList, Subscriber, Subscription
from newsletter.services import subscription_unsubscribe
from sending import engine
from sending.models import Delivery
from sending.services import (
    address_stop_reason,
    deliveries_send,
    deliveries_stopped,
    mailing_create,
    mailing_start,
)
from tests.sending.conftest import ScriptedHandler, add_relay, delivery_ids

pytestmark = pytest.mark.django_db(transaction=True)
S = Delivery.State
CONFIRMED = Subscription.Status.CONFIRMED


def _subscriptions(count: int, slug: str = "news") -> list[Subscription]:
    news = MailingList.objects.create(name=slug, slug=slug)
    return [Subscription.objects.create(
        subscriber=Subscriber.objects.create(email=f"{slug}{i}@example.net"),
        mailing_list=news, status=CONFIRMED) for i in range(count)]


def _mailing(pool, subscriptions):
    mailing = mailing_create(from_email="News <news@example.org>", subject="June",
                             text="Hello\n", pool=pool)
    mailing_start(mailing=mailing, dispatch=False,
                  recipients=[(s.id, s.subscriber.email) for s in subscriptions])
    return mailing


def _rows(mailing):
    return list(mailing.deliveries.order_by("id").values_list(
        "id", "mailing_id", "subscription_id", "address", "provider", "attempts"))


def test_the_check_names_every_reason_in_two_queries(sending_env, bulk_pool,
                                                     django_assert_num_queries):
    news = _subscriptions(4)
    other = _subscriptions(1, slug="gone")
    mailing = _mailing(bulk_pool, [*news, *other])
    subscription_unsubscribe(subscription_id=news[0].id)
    Subscription.objects.filter(id=news[1].id).update(status=Subscription.Status.PENDING)
    suppress(address=news[2].subscriber.email, reason="manual")
    MailingList.objects.get(slug="gone").delete()  # the list and its subscriptions
    rows = _rows(mailing)

    with django_assert_num_queries(2):
        stops = deliveries_stopped(rows)

    by_address = {r[3]: stops.get(r[0]) for r in rows}
    assert by_address["news0@example.net"] == (S.SKIPPED, "skipped: subscription unsubscribed")
    assert by_address["news1@example.net"] == (S.SKIPPED, "skipped: subscription pending")
    assert by_address["news2@example.net"] == (S.SUPPRESSED, "address suppressed")
    assert by_address["news3@example.net"] is None
    assert by_address["gone0@example.net"][0] == S.SKIPPED
    assert "list deleted" in by_address["gone0@example.net"][1]


def test_the_same_check_for_one_transactional_mail(db):
    subscription = _subscriptions(1)[0]
    assert address_stop_reason(address="news0@example.net",
                               subscription_id=subscription.id) is None
    subscription_unsubscribe(subscription_id=subscription.id)
    assert "unsubscribed" in address_stop_reason(address="news0@example.net",
                                                 subscription_id=subscription.id)
    suppress(address="Someone@Example.ORG", reason="complaint")
    assert address_stop_reason(address="Someone@example.org") == "address suppressed"
    assert address_stop_reason(address="fine@example.org") is None


class UnsubscribingRelay(ScriptedHandler):
    """Unsubscribes a later recipient while the first message is being answered."""

    def __init__(self, victim_id: int):
        super().__init__()
        self.victim_id = victim_id

    async def handle_DATA(self, server, session, envelope):
        if not self.messages:
            from asgiref.sync import sync_to_async

            await sync_to_async(subscription_unsubscribe, thread_sensitive=False)(
                subscription_id=self.victim_id)
        return await super().handle_DATA(server, session, envelope)


def test_an_unsubscribe_in_the_middle_of_a_batch_stops_the_rest(
        sending_env, relay_factory, bulk_pool, monkeypatch):
    monkeypatch.setattr(engine, "STOP_RECHECK_S", 0.0)  # every message asks again
    subscriptions = _subscriptions(6)
    relay = relay_factory(start=False)
    relay.handler = UnsubscribingRelay(subscriptions[4].id)
    relay.start()
    add_relay(bulk_pool, relay, name="a")
    mailing = _mailing(bulk_pool, subscriptions)

    deliveries_send(delivery_ids(mailing))

    received = {r for _, rcpts, _ in relay.messages for r in rcpts}
    assert "news4@example.net" not in received and len(received) == 5
    assert mailing.deliveries.get(address="news4@example.net").state == S.SKIPPED


def test_bulk_mail_carries_a_signed_delivery_header_and_a_mailto_per_subscription(
        sending_env, relay_factory, bulk_pool):
    sending_env(UNSUBSCRIBE_MAILTO_DOMAIN="unsub.example.org")
    relay = relay_factory()
    add_relay(bulk_pool, relay, name="a")
    subscription = _subscriptions(1)[0]
    mailing = _mailing(bulk_pool, [subscription])

    deliveries_send(delivery_ids(mailing))

    _, _, raw = relay.messages[0]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    delivery = mailing.deliveries.get()
    assert verp.decode_token(message["X-PW-Delivery"]) == delivery.id
    mailto = links.unsubscribe_mailto(subscription.id, "unsub.example.org")
    assert f"<mailto:{mailto}>" in message["List-Unsubscribe"]
    token = mailto.split("+", 1)[1].split("@")[0]
    assert tokens.unsubscribe_mailto_token_read(token) == subscription.id
    # A DSN quoting these headers ties to the delivery without any envelope.
    returned = (f"Message-ID: {message['Message-ID']}\nX-PW-Delivery: "
                f"{message['X-PW-Delivery']}\n").encode()
    assert tie_to_delivery(b"From: x\n\n" + returned).delivery_id == delivery.id
