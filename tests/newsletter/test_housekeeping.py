"""Purge of unconfirmed signups, complaints unsubscribing, the MX check, rate limits."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from deliverability.signals import complaint_received
from deliverability.suppression import suppress
from newsletter import conf, mx, ratelimit
from newsletter.exceptions import InvalidAddress
from newsletter.models import ConsentRecord, MailingList, Subscriber, Subscription
from newsletter.services import (
    Client,
    subscription_create,
    subscriptions_purge_unconfirmed,
)
from newsletter.tasks import subscriptions_purge_unconfirmed as purge_task

pytestmark = pytest.mark.django_db


def _signup(mailing_list, email, days_ago=0):
    subscription_create(mailing_list=mailing_list, email=email, client=Client(ip="10.0.0.1"))
    when = timezone.now() - timedelta(days=days_ago)
    Subscription.objects.filter(subscriber__email=email).update(created_at=when,
                                                                requested_at=when)


def test_unconfirmed_signups_are_purged_after_the_configured_days_keeping_the_log(
        mailing_list, monkeypatch):
    monkeypatch.setattr(conf, "PENDING_PURGE_DAYS", 10)
    _signup(mailing_list, "old@example.org", days_ago=11)
    _signup(mailing_list, "new@example.org", days_ago=9)
    _signup(mailing_list, "kept@example.org", days_ago=30)
    Subscription.objects.filter(subscriber__email="kept@example.org").update(status="confirmed")
    assert purge_task() == 1  # the scheduled job, called directly
    assert set(Subscriber.objects.values_list("email", flat=True)) == {
        "new@example.org", "kept@example.org"}
    log = ConsentRecord.objects.filter(address="old@example.org")
    assert sorted(log.values_list("event", flat=True)) == ["purge", "signup"]
    assert subscriptions_purge_unconfirmed() == 0  # running again changes nothing


def test_purge_keeps_a_subscriber_who_is_on_another_list(mailing_list):
    other = MailingList.objects.create(name="Other", slug="other")
    _signup(mailing_list, "two@example.org", days_ago=60)
    person = Subscriber.objects.get()
    Subscription.objects.create(subscriber=person, mailing_list=other, status="confirmed")
    assert subscriptions_purge_unconfirmed() == 1
    assert Subscriber.objects.filter(email="two@example.org").exists()


def test_purge_job_is_scheduled():
    from config.celery_schedule import BEAT_SCHEDULE

    entry = BEAT_SCHEDULE["newsletter.purge-unconfirmed"]
    assert entry["task"] == purge_task.name


@pytest.mark.django_db(transaction=True)
def test_complaint_unsubscribes_from_every_list_and_is_recorded(mailing_list):
    other = MailingList.objects.create(name="Other", slug="other")
    person = Subscriber.objects.create(email="ann@example.org")
    for ml in (mailing_list, other):
        Subscription.objects.create(subscriber=person, mailing_list=ml, status="confirmed")
    complaint_received.send(sender=None, address="ann@EXAMPLE.org", feedback_type="abuse",
                            delivery_id=None)
    assert set(Subscription.objects.values_list("status", flat=True)) == {"unsubscribed"}
    assert set(ConsentRecord.objects.values_list("event", "source")) == {
        ("unsubscribe", "complaint")}


@pytest.mark.django_db(transaction=True)
def test_suppression_for_a_complaint_unsubscribes_but_a_bounce_does_not(mailing_list):
    for email in ("c@example.org", "b@example.org"):
        Subscription.objects.create(subscriber=Subscriber.objects.create(email=email),
                                    mailing_list=mailing_list, status="confirmed")
    suppress(address="c@example.org", reason="complaint")
    suppress(address="b@example.org", reason="hard_bounce")
    statuses = dict(Subscription.objects.values_list("subscriber__email", "status"))
    assert statuses == {"c@example.org": "unsubscribed", "b@example.org": "confirmed"}


class _Resolver:
    def __init__(self, answers):
        self.answers = answers
        self.asked = []

    def accepts_mail(self, domain):
        self.asked.append(domain)
        return self.answers.get(domain, True)


def test_mx_check_refuses_domains_without_mail_when_enabled(signup_post, monkeypatch):
    resolver = _Resolver({"nomail.example": False})
    mx.set_resolver(resolver)
    try:
        monkeypatch.setattr(conf, "SIGNUP_CHECK_MX", True)
        refused = signup_post(email="x@nomail.example")
        assert refused.status_code == 400
        assert "does not accept e-mail" in refused.context["form"].errors["email"][0]
        assert signup_post(email="x@mail.example").status_code == 302
        assert resolver.asked == ["nomail.example", "mail.example"]
        monkeypatch.setattr(conf, "SIGNUP_CHECK_MX", False)
        assert signup_post(email="y@nomail.example").status_code == 302
    finally:
        mx.set_resolver(None)


def test_dns_resolver_reads_mx_null_mx_and_nxdomain_from_a_real_dns_server():
    """dnspython against a real (dnslib) DNS server on loopback."""
    from dnslib import AAAA, MX, QTYPE, RR, A
    from dnslib.server import BaseResolver, DNSServer

    from config.redis_server import free_port

    zone = {
        ("mail.example.", "MX"): [RR("mail.example.", QTYPE.MX, rdata=MX("mx.mail.example."))],
        ("nullmx.example.", "MX"): [RR("nullmx.example.", QTYPE.MX, rdata=MX(".", 0))],
        ("aonly.example.", "A"): [RR("aonly.example.", QTYPE.A, rdata=A("192.0.2.1"))],
        ("v6.example.", "AAAA"): [RR("v6.example.", QTYPE.AAAA, rdata=AAAA("2001:db8::1"))],
    }
    names = {name for name, _ in zone}

    class Zone(BaseResolver):
        def resolve(self, request, handler):
            reply = request.reply()
            name, qtype = str(request.q.qname), QTYPE[request.q.qtype]
            if name not in names:
                reply.header.rcode = 3  # NXDOMAIN
            for rr in zone.get((name, qtype), []):
                reply.add_answer(rr)
            return reply

    port = free_port()
    server = DNSServer(Zone(), port=port, address="127.0.0.1")
    server.start_thread()
    try:
        resolver = mx.DnsResolver([f"127.0.0.1:{port}"], timeout=2)
        assert resolver.accepts_mail("mail.example")
        assert not resolver.accepts_mail("nullmx.example")
        assert resolver.accepts_mail("aonly.example")  # implicit MX
        assert resolver.accepts_mail("v6.example")
        assert not resolver.accepts_mail("missing.example")
    finally:
        server.stop()
    # DNS down: never refuse a signup because of our own resolver
    assert mx.DnsResolver([f"127.0.0.1:{free_port()}"], timeout=0.5).accepts_mail(
        "mail.example")


def test_rate_limit_holds_under_concurrent_hits_from_many_threads():
    key = ratelimit.key_for("test", "shared")
    results = []

    def worker():
        for _ in range(20):
            results.append(ratelimit.hit([(key, 7, 60)]))

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(0) == 7 and len(results) == 200


def test_refused_hit_records_nothing_in_any_window():
    a, b = ratelimit.key_for("test", "a"), ratelimit.key_for("test", "b")
    assert ratelimit.hit([(a, 5, 60), (b, 1, 60)]) == 0
    assert ratelimit.hit([(a, 5, 60), (b, 1, 60)]) == 2  # b is full
    assert ratelimit.hit([(a, 2, 60)]) == 0  # a counted only the first hit
    assert ratelimit.hit([(a, 2, 60)]) == 1


def test_invalid_address_from_a_service_caller_is_refused(mailing_list):
    with pytest.raises(InvalidAddress):
        subscription_create(mailing_list=mailing_list, email="Bcc: x@y\r\n")
