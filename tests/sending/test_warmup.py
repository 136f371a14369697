"""Warm-up plans on a controllable clock: daily caps shared in Redis, a plan that moves
one step a day on clean figures, and mail over the cap waiting for the next day."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from sending import warmup
from sending.models import Delivery, DeliveryAttempt, Mailing, Relay, RelayPool, WarmupPlan
from sending.relays import relay_config
from sending.services import deliveries_send
from tests.sending.conftest import add_relay, delivery_ids, make_mailing

S = Delivery.State
DAY1 = date(2027, 3, 1)


def at(day: date, hour: float = 12.0) -> float:
    return datetime.combine(day, datetime.min.time(), UTC).timestamp() + hour * 3600


class Clock:
    def __init__(self, unix: float):
        self.now = unix

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock(at(DAY1))
    monkeypatch.setattr(warmup, "clock", clock)
    warmup.forget()
    yield clock
    warmup.forget()


# --- the data ---------------------------------------------------------------------

def test_the_shipped_schedules_ramp_slowly_and_cite_their_sources():
    data = warmup.schedules_data()
    assert data["version"] >= 1 and data["evaluation"]["source"]
    for name, spec in data["schedules"].items():
        caps = spec["daily_cap"]
        assert caps == sorted(caps) and caps[0] > 0, name
        for before, after in itertools.pairwise(caps):
            assert after < 2 * before, f"{name}: no sudden doubling (Gmail)"
        for provider, override in (spec.get("providers") or {}).items():
            assert override["daily_cap"], provider
    hold, back = data["evaluation"]["hold"], data["evaluation"]["step_back"]
    for name in ("hard_bounce_rate", "complaint_rate", "block_rate"):
        assert 0 < hold[name] < back[name] < 1
    with pytest.raises(ValueError, match="unknown warm-up schedule"):
        warmup.schedule_caps("nope", "google")


# --- the plan's days ------------------------------------------------------------------

def traffic(relay_row, day: date, *, sent: int, hard: int = 0, blocks: int = 0):
    """A day of the plan's traffic as the engine records it: one attempt per delivery."""
    mailing = Mailing.objects.create(from_email="n@news.example.org", subject_template="s",
                                     text_template="t", state=Mailing.State.DONE,
                                     pool=relay_row.pool)
    label = relay_config(relay_row).label
    rows = []
    for kind, n in (("delivered", sent), ("hard", hard), ("block", blocks)):
        for _ in range(n):
            rows.append((kind, Delivery.objects.create(
                mailing=mailing, address=f"r{Delivery.objects.count()}@gmail.com",
                provider="google", relay=label, state=S.SENT)))
    DeliveryAttempt.objects.bulk_create([
        DeliveryAttempt(delivery=d, at=datetime.fromtimestamp(at(day), UTC), relay=label,
                        code=250 if kind == "delivered" else 550, kind=kind,
                        outcome={"delivered": "sent", "hard": "bounced", "block": "deferred"}[kind])
        for kind, d in rows])


@pytest.fixture
def ip_plan(db):
    pool = RelayPool.objects.create(name="news", purpose=RelayPool.Purpose.BULK)
    relay = Relay.objects.create(pool=pool, name="new-ip", host="127.0.0.1", port=2525,
                                 source_address="192.0.2.10")
    plan = WarmupPlan.objects.create(kind="ip", target="192.0.2.10", started_on=DAY1)
    return plan, relay


def test_a_plan_advances_on_clean_days_holds_on_a_bad_one_and_steps_back_on_blocks(
        ip_plan, clock):
    plan, relay = ip_plan
    assert warmup.cap_for(plan.schedule, plan.step, "google") == 50
    traffic(relay, DAY1, sent=50)
    traffic(relay, DAY1 + timedelta(days=1), sent=70)
    clock.now = at(DAY1 + timedelta(days=2), 0.5)
    assert warmup.warmup_plans_evaluate() == 1
    plan.refresh_from_db()
    assert plan.step == 2 and [h["decision"] for h in plan.history] == ["advance", "advance"]
    assert warmup.cap_for(plan.schedule, plan.step, "google") == 100
    assert warmup.warmup_plans_evaluate() == 0  # a day counts once

    traffic(relay, DAY1 + timedelta(days=2), sent=95, hard=5)  # 5 % hard: a bad day
    clock.now = at(DAY1 + timedelta(days=3), 0.5)
    warmup.warmup_plans_evaluate()
    plan.refresh_from_db()
    assert plan.step == 2 and plan.history[-1]["decision"] == "hold"
    assert "hard bounces 5.00%" in plan.history[-1]["why"]

    clock.now = at(DAY1 + timedelta(days=4), 0.5)  # a day without mail: holds too
    warmup.warmup_plans_evaluate()
    plan.refresh_from_db()
    assert plan.step == 2 and plan.history[-1]["why"] == "no mail that day"

    traffic(relay, DAY1 + timedelta(days=4), sent=90, blocks=10)  # 10 % blocks
    clock.now = at(DAY1 + timedelta(days=5), 0.5)
    warmup.warmup_plans_evaluate()
    plan.refresh_from_db()
    assert plan.step == 0 and plan.history[-1]["decision"] == "step_back"


def test_breaker_trips_of_the_ip_step_the_plan_back_or_freeze_it(ip_plan, clock):
    from deliverability.models import BreakerTransition

    plan, relay = ip_plan
    plan.step = 4
    plan.save()
    traffic(relay, DAY1, sent=100)
    transition = BreakerTransition.objects.create(provider="google", pool="news@192.0.2.10",
                                                  from_state="ok", to_state="paused",
                                                  klass="block")
    BreakerTransition.objects.filter(id=transition.id).update(
        created_at=datetime.fromtimestamp(at(DAY1, 13), UTC))
    clock.now = at(DAY1 + timedelta(days=1), 1)
    warmup.warmup_plans_evaluate()
    plan.refresh_from_db()
    assert plan.step == 2 and "block pause" in plan.history[-1]["why"]

    # A rate-limit trip (Gmail's 4.7.28) freezes the ramp for the day.
    traffic(relay, DAY1 + timedelta(days=1), sent=100)
    transition = BreakerTransition.objects.create(provider="google", pool="news@192.0.2.10",
                                                  from_state="ok", to_state="throttled",
                                                  klass="throttle")
    BreakerTransition.objects.filter(id=transition.id).update(
        created_at=datetime.fromtimestamp(at(DAY1 + timedelta(days=1), 13), UTC))
    clock.now = at(DAY1 + timedelta(days=2), 1)
    warmup.warmup_plans_evaluate()
    plan.refresh_from_db()
    assert plan.step == 2 and plan.history[-1]["decision"] == "hold"
    assert "rate-limit or reputation trip" in plan.history[-1]["why"]


# --- the caps in the send path ------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_mail_over_the_cap_waits_and_goes_out_the_next_day(
        sending_env, relay_factory, bulk_pool, clock, redis_client):
    relay = relay_factory()
    row = add_relay(bulk_pool, relay, name="a")
    row.source_address = "127.0.0.2"
    row.save()
    WarmupPlan.objects.create(kind="ip", target="127.0.0.2", started_on=DAY1)
    clock.now = at(DAY1, 24) - 1.0  # one second before the warm-up clock's midnight
    addresses = [f"reader{i}@gmail.com" for i in range(60)] + ["other@example.net"]
    mailing = make_mailing(bulk_pool, addresses)

    deliveries_send(delivery_ids(mailing))

    assert len(relay.messages) == 51  # 50 to Google (day 1's cap), 1 to example.net
    waiting = mailing.deliveries.filter(state=S.DEFERRED)
    assert waiting.count() == 10 and not waiting.exclude(attempts=0).exists()
    first = waiting.first()
    assert "warm-up cap" in first.last_reply and "50 messages to google" in first.last_reply
    assert 0 < first.next_attempt_at.timestamp() - time.time() <= 1.5  # its midnight
    assert warmup.caps().used(WarmupPlan.objects.get().id, DAY1) == {
        "google": 50, "example.net": 1}

    time.sleep(1.1)
    clock.now += 1.1  # the next day: a new cap
    deliveries_send(delivery_ids(mailing))
    assert len(relay.messages) == 61
    assert mailing.deliveries.filter(state=S.SENT).count() == 61


@pytest.mark.django_db(transaction=True)
def test_a_domain_plan_caps_too_and_a_wait_past_the_max_age_expires(
        sending_env, relay_factory, bulk_pool, clock):
    relay = relay_factory()
    add_relay(bulk_pool, relay, name="a")  # no source address: only the domain plan
    WarmupPlan.objects.create(kind="domain", target="example.org", started_on=DAY1)
    mailing = make_mailing(bulk_pool, [f"reader{i}@gmail.com" for i in range(105)],
                           max_age_hours=1)
    deliveries_send(delivery_ids(mailing))
    assert len(relay.messages) == 100  # the new_domain schedule's day 1
    # Tomorrow is past this mailing's max age: those wait no longer (not a bounce).
    expired = mailing.deliveries.filter(state=S.EXPIRED)
    assert expired.count() == 5 and "warm-up cap" in expired.first().last_reply


def test_the_page_rows_show_day_cap_use_and_next_step(ip_plan, clock, redis_client):
    plan, _ = ip_plan
    clock.now = at(DAY1 + timedelta(days=2))
    warmup.forget()
    found = warmup.plans_for("192.0.2.10", "other.example")
    assert [p.id for p in found] == [plan.id]
    assert warmup.caps().take(found, "google") is None
    (row,) = warmup.plan_rows()
    assert row["day"] == 3 and row["step"] == 1 and row["cap"] == 50
    assert row["providers"] == [{"provider": "google", "cap": 50, "used": 1}]
    assert row["next_step"].startswith("after a clean day: 70 per provider")


def test_the_breaker_page_shows_each_plan(admin_client, ip_plan, clock, redis_client):
    clock.now = at(DAY1 + timedelta(days=1))
    warmup.caps().take(warmup.plans_for("192.0.2.10", ""), "google")
    from django.urls import reverse

    page = admin_client.get(reverse("breaker-list")).content.decode()
    assert 'id="warmup-plans"' in page and "ip 192.0.2.10" in page
    assert "Google (Gmail, Google Workspace): 1 / 50" in page  # its name, not its key
    assert "after a clean day: 70 per provider" in page


def test_a_plan_target_is_checked(db):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="IP address"):
        WarmupPlan(kind="ip", target="relay.example.org", started_on=DAY1).full_clean()
    with pytest.raises(ValidationError, match="schedule"):
        WarmupPlan(kind="domain", target="news.example.org", schedule="fast",
                   started_on=DAY1).full_clean()
    WarmupPlan(kind="domain", target="News.Example.org ", started_on=DAY1).full_clean()


def test_the_caps_are_shared_by_concurrent_workers(ip_plan, clock, redis_client):
    """Eight threads, each with its own Caps (as separate workers): exactly the cap goes."""
    import threading

    from config.redis import get_redis

    plans = warmup.plans_for("192.0.2.10", "")
    granted = []

    def worker():
        caps = warmup.Caps(get_redis())
        granted.extend(1 for _ in range(20) if caps.take(plans, "google") is None)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 50
    warmup.caps().give_back(plans, "google")
    assert warmup.caps().take(plans, "google") is None  # a unit given back is free again
    assert warmup.caps().take(plans, "google") is not None
