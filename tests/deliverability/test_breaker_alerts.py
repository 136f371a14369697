"""Alerts on breaker transitions: a mail to operators, and the optional webhook."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.contrib.auth.models import User

from deliverability.breaker.engine import Breaker
from deliverability.models import BreakerTransition
from deliverability.tasks import breaker_webhook
from sending.models import TransactionalEmail

SWISSCOM = "5.7.1 Swisscom AG IP: 94.130.34.42, You are not allowed to send us mail"


@pytest.fixture
def breaker(redis_client, db):
    return Breaker(redis=redis_client, time_scale=1.0)


def test_a_pause_mails_the_operators_with_the_reply_and_delisting_link(breaker, monkeypatch):
    monkeypatch.delenv("OPERATOR_EMAILS", raising=False)
    User.objects.create_superuser("ops", "ops@example.org", "a-long-password-1")
    User.objects.create_user("editor", "editor@example.org", "a-long-password-2")
    breaker.record(provider="swisscom", pool="bulk", code=554, text=SWISSCOM)
    mail = TransactionalEmail.objects.get()
    assert mail.to == "ops@example.org" and mail.purpose == "alert"
    # Swisscom's block needs the delisting form: stopped for the operator, with the link.
    assert "Swisscom (Bluewin) / bulk: STOPPED until you acknowledge it" in mail.subject
    assert "needs delisting form" in mail.body_text
    assert "You are not allowed to send us mail" in mail.body_text
    assert "https://postmaster.bluewin.ch/" in mail.body_text
    assert "/admin/breakers/" in mail.body_text


def test_operator_emails_setting_wins(breaker, monkeypatch):
    monkeypatch.setenv("OPERATOR_EMAILS", "noc@example.org, boss@example.org")
    breaker.pause("google", "bulk", seconds=60, actor="ops")
    assert sorted(TransactionalEmail.objects.values_list("to", flat=True)) == [
        "boss@example.org", "noc@example.org"]


class _Recorder(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Recorder.received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_webhook_posts_the_transition(breaker, monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr("deliverability.conf.BREAKER_WEBHOOK_URL",
                            f"http://127.0.0.1:{server.server_port}/hook")
        monkeypatch.setattr("deliverability.conf.BREAKER_WEBHOOK_SECRET", "0123456789abcdef")
        breaker.record(provider="swisscom", pool="bulk", code=554, text=SWISSCOM)
        breaker_webhook(BreakerTransition.objects.get().id)
    finally:
        server.shutdown()
    content_type, payload = _Recorder.received[-1]
    assert content_type == "application/json"
    assert payload["provider"] == "swisscom" and payload["to"] == "manual"
    assert payload["delisting_url"] == "https://postmaster.bluewin.ch/"


def test_a_pool_wide_block_runs_the_blocklist_check(breaker, monkeypatch, settings):
    """Two providers block within the hour: the pool's IPs are checked and operators told."""
    from deliverability.tasks import pool_blocklist_check
    from sending.models import Relay, RelayPool
    from tests.dns_server import LocalDNS

    monkeypatch.setenv("OPERATOR_EMAILS", "noc@example.org")
    settings.DEFAULT_FROM_EMAIL = "news@clean.example"
    pool = RelayPool.objects.create(name="bulk", purpose="bulk")
    Relay.objects.create(pool=pool, name="r1", host="127.0.0.1", port=25,
                         source_address="192.0.2.99")
    queued = []
    monkeypatch.setattr(pool_blocklist_check, "delay", queued.append)
    breaker.record(provider="swisscom", pool="bulk", code=554, text=SWISSCOM)
    for _ in range(2):
        breaker.record(provider="microsoft_consumer", pool="bulk", code=550,
                       text="5.7.1 Unfortunately, messages from [192.0.2.99] weren't sent. "
                            "Please contact your Internet service provider since part of their "
                            "network is on our block list (S3150).")
    from django.db import connection

    for _, callback, _ in connection.run_on_commit:
        callback()
    assert queued == ["bulk"]
    with LocalDNS(["99.2.0.192.zen.spamhaus.org. 60 IN A 127.0.0.2"]) as server:
        monkeypatch.setattr("deliverability.conf.DNS_SERVERS", [server.address])
        pool_blocklist_check("bulk")
    alert = TransactionalEmail.objects.get(subject__contains="LISTED")
    assert "192.0.2.99 @ zen.spamhaus.org" in alert.body_text and "127.0.0.2" in alert.body_text
