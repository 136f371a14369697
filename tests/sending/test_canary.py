"""Canary sending against a real relay: a first slice, a settle time, then wider slices
while the answers stay clean; a bad slice pauses the mailing before the next one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from sending.canary import HELD, canaries_advance, canary_status
from sending.models import CanaryRun, Delivery, Mailing, TransactionalEmail
from sending.services import deliveries_send, deliveries_sweep
from tests.sending.conftest import add_relay, delivery_ids, make_mailing

pytestmark = pytest.mark.django_db(transaction=True)
S = Delivery.State


def settle(minutes: float = 31):
    """The sweeper after the settle time (default 30 minutes) has passed."""
    return canaries_advance(now=timezone.now() + timedelta(minutes=minutes))


def send_released(mailing):
    return deliveries_send(delivery_ids(mailing))


def first_slice_addresses(n_bad: int, *, total=5000, bad="unknown"):
    """Ledger order: the first 100 (2 % of 5000) go first; ``n_bad`` of them refused."""
    return [f"{bad}{i}@example.net" if i < n_bad else f"reader{i}@example.net"
            for i in range(total)]


@pytest.fixture
def relay(sending_env, relay_factory, bulk_pool):
    relay = relay_factory()
    add_relay(bulk_pool, relay, name="a")
    return relay


def test_small_mailings_have_no_canary(relay, bulk_pool):
    mailing = make_mailing(bulk_pool, [f"r{i}@example.net" for i in range(50)])
    assert not CanaryRun.objects.exists()
    assert send_released(mailing)[S.SENT] == 50


def test_three_percent_hard_bounces_in_the_first_slice_pause_before_the_second(
        relay, bulk_pool, monkeypatch):
    monkeypatch.setenv("OPERATOR_EMAILS", "ops@example.org")
    mailing = make_mailing(bulk_pool, first_slice_addresses(3))
    run = CanaryRun.objects.get(mailing=mailing)
    assert run.released == 100
    held = mailing.deliveries.filter(state=S.QUEUED, next_attempt_at__isnull=True)
    assert held.count() == 4900 and held.first().last_reply == HELD

    result = send_released(mailing)
    assert result["claimed"] == 100 and result[S.SENT] == 97 and result[S.BOUNCED] == 3
    assert canaries_advance() == 1  # the slice is answered: now it settles
    run.refresh_from_db()
    assert run.state == CanaryRun.State.SETTLING
    assert settle(minutes=5) == 0  # bounce reports may still come in
    settle()

    mailing.refresh_from_db()
    run.refresh_from_db()
    assert mailing.state == Mailing.State.PAUSED and run.state == CanaryRun.State.PAUSED
    assert "3 hard bounces in 100 answered (3.0%, limit 3.0%)" in mailing.pause_reason
    assert run.results[-1]["decision"] == "pause" and run.results[-1]["hard"] == 3
    alert = TransactionalEmail.objects.get(to="ops@example.org")
    assert "canary" in alert.subject and "3 hard bounces" in alert.body_text
    # Nothing of the second slice went out, and the sweeper sends nothing more.
    deliveries_sweep()
    assert send_released(mailing) == {"claimed": 0}
    assert len(relay.messages) == 97 and held.count() == 4900


def test_a_clean_slice_widens_step_by_step_and_resuming_a_paused_canary_goes_on(
        relay, bulk_pool):
    mailing = make_mailing(bulk_pool, first_slice_addresses(0))
    send_released(mailing)
    canaries_advance()
    settle()
    run = CanaryRun.objects.get(mailing=mailing)
    assert run.step == 1 and run.released == 500 and run.state == CanaryRun.State.SENDING
    assert run.results[-1]["decision"] == "widen"
    assert send_released(mailing)[S.SENT] == 400
    status = canary_status(mailing)
    assert status["share"] == 10 and status["held"] == 4500
    assert len(relay.messages) == 500

    from sending.lifecycle import mailing_pause, mailing_resume

    run.state = CanaryRun.State.PAUSED  # as if the guardrail had stopped it
    run.save()
    mailing_pause(mailing, reason="canary")
    mailing_resume(mailing)
    canaries_advance()
    run.refresh_from_db()
    assert run.step == 2 and run.released == 1250  # 25 %
    assert run.results[-1]["decision"] == "resumed by the operator"


def test_a_provider_that_blocks_the_slice_is_held_while_the_others_widen(relay, bulk_pool):
    # example.net refuses everything with a blocklist answer (the relay's "blocked"
    # prefix); gmail.com accepts.
    addresses = [f"blocked{i}@example.net" if i % 2 else f"reader{i}@gmail.com"
                 for i in range(5000)]
    mailing = make_mailing(bulk_pool, addresses)
    send_released(mailing)
    canaries_advance()
    settle()
    run = CanaryRun.objects.get(mailing=mailing)
    assert run.held_providers == ["example.net"] and run.state == CanaryRun.State.SENDING
    assert run.results[-1]["held"] == ["example.net"]
    released = mailing.deliveries.exclude(state=S.QUEUED, next_attempt_at__isnull=True)
    # The second slice is 10 % of the providers still sending, all of it Gmail's.
    assert released.filter(provider="google").count() == 250
    assert released.filter(provider="example.net").count() == 50  # the first slice only
    mailing.refresh_from_db()
    assert mailing.state == Mailing.State.SENDING

    # Its breaker probed and reopened: the held messages went out, the last answer clean.
    from sending.models import DeliveryAttempt

    for row in released.filter(provider="example.net").exclude(state=S.SENT):
        Delivery.objects.filter(id=row.id).update(state=S.SENT)
        DeliveryAttempt.objects.create(delivery=row, at=timezone.now() + timedelta(seconds=1),
                                       code=250, kind="delivered", outcome="sent")
    send_released(mailing)
    canaries_advance()
    settle()
    run.refresh_from_db()
    assert run.held_providers == [] and run.results[-1]["readmitted"] == ["example.net"]
    assert released.filter(provider="example.net").count() == 625  # 25 % of 2500


def test_the_first_slice_goes_to_the_most_recently_confirmed(sending_env, relay, bulk_pool):
    from newsletter.models import MailingList, Subscriber, Subscription
    from sending.services import mailing_create, mailing_start

    sending_env(CANARY_MIN_SLICE="10")
    news = MailingList.objects.create(name="News", slug="news")
    now = timezone.now()
    pairs = []
    for i in range(1500):
        sub = Subscription.objects.create(
            subscriber=Subscriber.objects.create(email=f"r{i}@example.net"),
            mailing_list=news, status="confirmed",
            confirmed_at=now - timedelta(days=(i * 7919) % 1500))  # a shuffled order
        pairs.append((sub.id, f"r{i}@example.net", sub.confirmed_at))
    mailing = mailing_create(from_email="n@example.org", subject="s", text="t",
                             pool=bulk_pool)
    mailing_start(mailing=mailing, recipients=[(sid, a) for sid, a, _ in pairs],
                  dispatch=False)
    released = set(mailing.deliveries.exclude(state=S.QUEUED, next_attempt_at__isnull=True)
                   .values_list("address", flat=True))
    freshest = {a for _, a, _ in sorted(pairs, key=lambda p: p[2], reverse=True)[:30]}
    assert released == freshest  # 2 % of 1500


def test_two_providers_blocking_the_same_slice_pause_the_mailing(relay, bulk_pool):
    domains = ["example.net", "gmail.com", "outlook.com"]
    addresses = [f"{'reader' if i % 3 == 2 else 'blocked'}{i}@{domains[i % 3]}"
                 for i in range(3000)]
    mailing = make_mailing(bulk_pool, addresses)
    send_released(mailing)
    canaries_advance()
    settle()
    mailing.refresh_from_db()
    assert mailing.state == Mailing.State.PAUSED
    assert "blocked by 2 providers (example.net: " in mailing.pause_reason
    assert CanaryRun.objects.get(mailing=mailing).step == 0
