"""Pause, resume, cancel a mailing; guardrails pause a bad one with the reason."""

import pytest
from django.utils import timezone

from deliverability.models import BounceEvent, InboundMessage
from sending.lifecycle import (
    LifecycleError,
    mailing_cancel,
    mailing_pause,
    mailing_resume,
    mailings_guard,
)
from sending.models import Delivery, DeliveryAttempt, Mailing
from sending.services import deliveries_send
from tests.sending.conftest import add_relay, delivery_ids, make_mailing

pytestmark = pytest.mark.django_db(transaction=True)
S = Delivery.State


def test_pause_stops_claims_and_resume_sends_each_once(sending_env, relay_factory, bulk_pool):
    relay = relay_factory()
    add_relay(bulk_pool, relay, name="a")
    mailing = make_mailing(bulk_pool, [f"r{i}@example.net" for i in range(6)])
    ids = delivery_ids(mailing)
    deliveries_send(ids[:2])
    mailing_pause(mailing, reason="editor: wrong link")
    assert deliveries_send(ids) == {"claimed": 0}
    assert len(relay.messages) == 2 and mailing.pause_reason == "editor: wrong link"
    mailing_resume(mailing)
    deliveries_send(ids)
    assert sorted(r[0] for _, r, _ in relay.messages) == sorted(f"r{i}@example.net"
                                                                for i in range(6))
    assert set(mailing.deliveries.values_list("state", flat=True)) == {S.SENT}


def test_cancel_keeps_what_was_sent_and_cancels_the_rest(sending_env, relay_factory, bulk_pool):
    relay = relay_factory()
    add_relay(bulk_pool, relay, name="a")
    mailing = make_mailing(bulk_pool, [f"r{i}@example.net" for i in range(4)])
    ids = delivery_ids(mailing)
    deliveries_send(ids[:1])
    mailing_cancel(mailing)
    assert deliveries_send(ids) == {"claimed": 0}
    states = sorted(mailing.deliveries.values_list("state", flat=True))
    assert states == [S.CANCELLED] * 3 + [S.SENT]
    with pytest.raises(LifecycleError):
        mailing_resume(mailing)
    with pytest.raises(LifecycleError):
        mailing_pause(mailing)


def test_each_transition_from_each_state(bulk_pool):
    mailing = Mailing.objects.create(from_email="n@example.org", subject_template="s",
                                     text_template="t", state=Mailing.State.DONE)
    for action in (mailing_pause, mailing_resume, mailing_cancel):
        with pytest.raises(LifecycleError):
            action(mailing)
    mailing.state = Mailing.State.SENDING
    mailing.save()
    with pytest.raises(LifecycleError):
        mailing_resume(Mailing.objects.create(from_email="n@example.org", subject_template="s",
                                              text_template="t"))  # a draft: nothing to resume
    assert mailing_resume(mailing).state == Mailing.State.SENDING  # already sending: harmless
    assert mailing_pause(mailing).state == Mailing.State.PAUSED
    assert mailing_pause(mailing).state == Mailing.State.PAUSED  # twice: harmless
    assert mailing_cancel(mailing).state == Mailing.State.CANCELLED


def _answered(mailing, count, *, hard=0):
    rows = []
    for i in range(count):
        state = S.BOUNCED if i < hard else S.SENT
        delivery = Delivery.objects.create(mailing=mailing, address=f"g{i}@example.net",
                                           state=state)
        rows.append(DeliveryAttempt(delivery=delivery, at=timezone.now(), code=250,
                                    kind="hard" if i < hard else "delivered", outcome=state))
    DeliveryAttempt.objects.bulk_create(rows)


def test_guardrail_pauses_a_mailing_with_many_hard_bounces(bulk_pool, monkeypatch):
    monkeypatch.setenv("GUARDRAIL_MIN_SAMPLE", "100")
    mailing = Mailing.objects.create(from_email="n@example.org", subject_template="s",
                                     text_template="t", state=Mailing.State.SENDING)
    _answered(mailing, 99, hard=10)  # below the minimum sample: no decision yet
    assert mailings_guard() == 0
    _answered_more = Delivery.objects.create(mailing=mailing, address="last@example.net",
                                             state=S.SENT)
    assert _answered_more and mailings_guard() == 1
    mailing.refresh_from_db()
    assert mailing.state == Mailing.State.PAUSED
    assert "10 hard bounces in 100 deliveries" in mailing.pause_reason


def test_guardrail_pauses_on_complaints_and_leaves_a_clean_mailing(bulk_pool, monkeypatch):
    monkeypatch.setenv("GUARDRAIL_MIN_SAMPLE", "100")
    clean = Mailing.objects.create(from_email="n@example.org", subject_template="s",
                                   text_template="t", state=Mailing.State.SENDING)
    _answered(clean, 200, hard=2)
    noisy = Mailing.objects.create(from_email="n@example.org", subject_template="s",
                                   text_template="t", state=Mailing.State.SENDING)
    _answered(noisy, 200)
    message = InboundMessage.objects.create(key="c" * 64, raw_compressed=b"", source="smtp")
    deliveries = list(noisy.deliveries.order_by("id")[:2])
    for position in range(2):  # 2 of 200 = 1 %: above 0.3 %
        BounceEvent.objects.create(message=message, position=position, kind="complaint",
                                   mailing_id=noisy.id, address=f"g{position}@example.net",
                                   delivery_id=deliveries[position].id, action="complaint")
    for position in range(2, 12):  # the same delivery again, and reports that did not act
        BounceEvent.objects.create(message=message, position=position, kind="complaint",
                                   mailing_id=noisy.id, address="g@example.net",
                                   delivery_id=deliveries[0].id if position < 7 else None,
                                   action="complaint" if position < 7 else "none")
    assert mailings_guard() == 1
    clean.refresh_from_db()
    noisy.refresh_from_db()
    assert clean.state == Mailing.State.SENDING
    assert noisy.state == Mailing.State.PAUSED and "2 complaints" in noisy.pause_reason
