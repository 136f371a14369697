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
    assert "Swisscom (Bluewin) / bulk: PAUSED" in mail.subject
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
        breaker.record(provider="swisscom", pool="bulk", code=554, text=SWISSCOM)
        breaker_webhook(BreakerTransition.objects.get().id)
    finally:
        server.shutdown()
    content_type, payload = _Recorder.received[-1]
    assert content_type == "application/json"
    assert payload["provider"] == "swisscom" and payload["to"] == "paused"
    assert payload["delisting_url"] == "https://postmaster.bluewin.ch/"
