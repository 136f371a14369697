"""Signup limits an attacker cannot dodge or use up for others: IPv6 per /64, a
network's share of a list's hourly budget, and a victim's confirmation mails."""

from __future__ import annotations

import pytest

from newsletter import conf, confirm_budget
from newsletter.confirm_budget import confirmations_release_due
from newsletter.models import MailingList, Subscription
from newsletter.ratelimit import client_networks
from newsletter.services import Client, subscription_create
from newsletter.services.signup import SignupOutcome
from tests.newsletter.helpers import confirmation_mails, link_path

pytestmark = pytest.mark.django_db


def test_client_networks():
    assert client_networks("198.51.100.7") == ("198.51.100.7", "198.51.100.0/24")
    assert client_networks("::ffff:198.51.100.7") == ("198.51.100.7", "198.51.100.0/24")
    assert client_networks("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == (
        "2001:db8:1:2::/64", "2001:db8:1::/48")


def test_an_ipv6_client_is_its_64_whatever_host_part_it_picks(signup_post, monkeypatch):
    monkeypatch.setattr(conf, "SIGNUP_RATE_PER_IP", 3)
    codes = [signup_post(email=f"p{i}@example.org", ip=f"2001:db8:5:7::{i + 1:x}").status_code
             for i in range(5)]
    assert codes == [302, 302, 302, 429, 429]
    # The next /64 (another customer) is a client of its own.
    assert signup_post(email="q@example.org", ip="2001:db8:5:8::1").status_code == 302


def test_one_network_cannot_use_up_a_lists_budget_for_everyone(signup_post, monkeypatch):
    monkeypatch.setattr(conf, "SIGNUP_RATE_PER_LIST", 10)
    monkeypatch.setattr(conf, "SIGNUP_RATE_PER_NETWORK", 3)
    # One attacker, many addresses of one /24 (each under the per-IP limit).
    codes = [signup_post(email=f"bot{i}@example.org", ip=f"203.0.113.{i + 1}").status_code
             for i in range(20)]
    assert codes.count(302) == 3 and codes.count(429) == 17
    # Visitors from elsewhere still get in; the refused requests used up nothing.
    for i in range(7):
        assert signup_post(email=f"ann{i}@example.org", ip=f"198.51.{i}.7").status_code == 302
    assert signup_post(email="late@example.org", ip="192.0.2.9").status_code == 429  # 10 in all


@pytest.fixture
def clock(monkeypatch):
    """The budget's clock, moved by hand (the sliding windows in Redis follow it)."""
    import time

    now = [time.time()]
    monkeypatch.setattr(confirm_budget.time, "time", lambda: now[0])
    return now


def _signup(mailing_list, email="victim@example.org", ip="203.0.113.5"):
    return subscription_create(mailing_list=mailing_list, email=email,
                               client=Client(ip=ip))


def test_a_victims_own_signup_waits_for_a_slot_and_is_never_lost(mailing_list, clock, client):
    other = MailingList.objects.create(name="Other", slug="other")
    # An attacker uses up the victim's three open confirmation mails on one list...
    assert [_signup(mailing_list, ip=f"203.0.113.{i}") for i in range(3)] == [
        SignupOutcome.REQUESTED] * 3
    # ...and the victim's own signup for another list waits (no fourth mail now).
    assert _signup(other, ip="198.51.100.7") == SignupOutcome.MAIL_LIMITED
    assert confirmation_mails("victim@example.org").count() == 3
    assert confirmations_release_due() == 0
    # The victim clicks one of the mails in the inbox: a slot frees, the waiting one goes.
    path = link_path(confirmation_mails("victim@example.org").first().body_text, "/confirm/")
    page = client.get(path)
    client.post(path, {"csrfmiddlewaretoken": str(page.context["csrf_token"])})
    assert Subscription.objects.get(mailing_list=mailing_list).status == "confirmed"
    assert confirmations_release_due() == 1
    last = confirmation_mails("victim@example.org").last()
    assert "Other" in last.subject
    assert confirmations_release_due() == 0  # sent once


def test_waiting_mails_go_when_the_oldest_open_one_is_a_day_old(mailing_list, clock):
    lists = [mailing_list] + [MailingList.objects.create(name=f"L{i}", slug=f"l{i}")
                              for i in range(5)]
    outcomes = [_signup(ml, ip=f"203.0.113.{i}") for i, ml in enumerate(lists)]
    assert outcomes.count(SignupOutcome.REQUESTED) == 3
    assert outcomes.count(SignupOutcome.MAIL_LIMITED) == 3
    clock[0] += 23 * 3600
    assert confirmations_release_due() == 0
    clock[0] += 3600 + 1
    assert confirmations_release_due() == 3  # the three that waited, one mail each
    assert confirmation_mails("victim@example.org").count() == 6
    assert confirmations_release_due() == 0


def test_a_flood_for_one_address_never_sends_more_than_the_budget_a_day(
        mailing_list, clock, monkeypatch):
    monkeypatch.setattr(conf, "SIGNUP_RATE_PER_ADDRESS", 10**6)
    for i in range(200):
        _signup(mailing_list, ip=f"10.{i}.0.1")
    assert confirmation_mails("victim@example.org").count() == 3
    clock[0] += 86400 + 1
    # One subscription waited (not two hundred): one mail, not a burst.
    assert confirmations_release_due() == 1
    assert confirmation_mails("victim@example.org").count() == 4


def test_a_waiting_mail_for_a_subscription_gone_since_is_dropped(mailing_list, clock):
    for i in range(4):
        _signup(MailingList.objects.create(name=f"M{i}", slug=f"m{i}"), ip=f"203.0.113.{i}")
    waiting = Subscription.objects.order_by("id").last()
    waiting.delete()
    clock[0] += 86400 + 1
    assert confirmations_release_due() == 0
    assert confirm_budget.confirmations_waiting_due() == []


def test_a_click_while_redis_is_away_still_confirms(mailing_list, monkeypatch):
    from redis.exceptions import ConnectionError as RedisDown

    from newsletter.services import subscription_confirm
    from newsletter.services.subscriptions import ConfirmOutcome

    _signup(mailing_list)
    subscription = Subscription.objects.get()

    def away(*args, **kwargs):
        raise RedisDown("Redis is away")

    monkeypatch.setattr(confirm_budget, "_run", away)
    assert subscription_confirm(subscription_id=subscription.id) == ConfirmOutcome.CONFIRMED
    subscription.refresh_from_db()
    assert subscription.status == "confirmed"
