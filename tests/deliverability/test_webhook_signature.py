"""The breaker webhook is signed (Standard Webhooks headers), checked with the README's
own verification snippet against what a real local HTTP server received."""

from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core.exceptions import ImproperlyConfigured

from deliverability import webhooks
from deliverability.breaker.engine import Breaker
from deliverability.models import BreakerTransition
from deliverability.tasks import breaker_webhook
from tests.helpers import ROOT

SECRET = "a-webhook-secret-for-tests-only"


def readme_verify():
    """The ``verify`` function of the README's "Signed webhooks" section, as printed."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Signed webhooks"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # our own README
    return namespace["verify"]


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver(monkeypatch):
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr("deliverability.conf.BREAKER_WEBHOOK_URL",
                        f"http://127.0.0.1:{server.server_port}/hook")
    yield _Receiver.received
    server.shutdown()
    server.server_close()


@pytest.fixture
def transition(redis_client, db):
    breaker = Breaker(redis=redis_client, time_scale=1.0)
    breaker.pause("google", "bulk", seconds=60, actor="ops")
    return BreakerTransition.objects.get()


def test_the_webhook_body_is_signed_and_the_readme_snippet_verifies_it(
        receiver, transition, monkeypatch):
    monkeypatch.setattr("deliverability.conf.BREAKER_WEBHOOK_SECRET", SECRET)
    breaker_webhook(transition.id)
    headers, body = receiver[-1]
    verify = readme_verify()
    assert verify(SECRET.encode(), headers, body)
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert b'"provider": "google"' in body
    # Altered body, wrong key, another message id: refused.
    assert not verify(SECRET.encode(), headers, body.replace(b"google", b"goggle"))
    assert not verify(b"another-secret-entirely", headers, body)
    assert not verify(SECRET.encode(), {**headers, "webhook-id": "msg_other"}, body)
    # A replay later than the tolerance: refused even with the right signature.
    monkeypatch.setattr(time, "time", lambda: int(headers["webhook-timestamp"]) + 301)
    assert not verify(SECRET.encode(), headers, body)


def test_two_posts_have_their_own_ids(receiver, transition, monkeypatch):
    monkeypatch.setattr("deliverability.conf.BREAKER_WEBHOOK_SECRET", SECRET)
    breaker_webhook(transition.id)
    breaker_webhook(transition.id)
    assert receiver[0][0]["webhook-id"] != receiver[1][0]["webhook-id"]


def test_a_whsec_secret_is_its_base64_bytes(receiver, transition, monkeypatch):
    import base64

    raw = bytes(range(32))
    monkeypatch.setattr("deliverability.conf.BREAKER_WEBHOOK_SECRET",
                        "whsec_" + base64.b64encode(raw).decode())
    breaker_webhook(transition.id)
    headers, body = receiver[-1]
    assert readme_verify()(raw, headers, body)


def test_nothing_is_sent_unsigned(receiver, transition, monkeypatch):
    monkeypatch.setattr("deliverability.conf.BREAKER_WEBHOOK_SECRET", "")
    with pytest.raises(ImproperlyConfigured, match="BREAKER_WEBHOOK_SECRET"):
        breaker_webhook(transition.id)
    assert receiver == []


def test_a_webhook_url_without_a_secret_stops_start_up():
    import os
    import subprocess
    import sys

    environment = {k: v for k, v in os.environ.items() if k != "BREAKER_WEBHOOK_SECRET"}
    environment["BREAKER_WEBHOOK_URL"] = "https://hooks.example.org/breaker"
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=environment,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "BREAKER_WEBHOOK_SECRET" in result.stderr and "Traceback" not in result.stderr


def test_signature_matches_the_specification_example():
    """The example of the Standard Webhooks specification (spec/standard-webhooks.md)."""
    body = b'{"test": 2432232314}'
    headers = webhooks.signature_headers(
        body, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", message_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
        timestamp=1614265330)
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
