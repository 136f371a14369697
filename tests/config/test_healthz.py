"""/healthz (public, cheap, no details) and /healthz/detail (token or operator)."""

import json
import socket
import threading

import pytest
from django.contrib.auth import get_user_model

from config import health
from config.redis_server import free_port
from config.roles import OPERATOR, roles_ensure
from tests.helpers import wait_until


@pytest.fixture(autouse=True)
def fresh_answers(redis_client):
    health._public.clear()
    health._detail.clear()
    yield
    health._public.clear()
    health._detail.clear()


class CountingServer:
    """A TCP server that counts connections (and greets like SMTP, then closes)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.sendall(b"421 bye\r\n")
            conn.close()

    def close(self):
        self.sock.close()


@pytest.mark.django_db
def test_public_healthz_says_only_ok_and_opens_no_smtp_session(client, settings):
    server = CountingServer()
    settings.DEFAULT_RELAY_URL = f"smtp://127.0.0.1:{server.port}"
    try:
        for _ in range(3):
            response = client.get("/healthz")
            health._public.clear()
            assert response.status_code == 200
            assert response.json() == {"ok": True}  # no vendor, relay, worker or error text
        assert server.accepted == 0
    finally:
        server.close()


@pytest.mark.django_db
def test_public_healthz_is_503_without_redis_and_still_says_nothing(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.content == b'{"ok": false}'


@pytest.mark.django_db
def test_public_answer_is_kept_for_a_moment(client, settings):
    assert client.get("/healthz").status_code == 200
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    assert client.get("/healthz").status_code == 200  # the cached answer
    health._public.clear()
    assert client.get("/healthz").status_code == 503


@pytest.mark.django_db
def test_detail_needs_the_token_or_an_operator(client, monkeypatch):
    monkeypatch.setenv("METRICS_TOKEN", "s3cret-token")
    assert client.get("/healthz/detail").status_code == 401
    assert client.get("/healthz/detail",
                      HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/healthz/detail",
                      HTTP_AUTHORIZATION="Bearer s3cret-token").status_code in (200, 503)
    User = get_user_model()
    staff = User.objects.create_user("staff", password="pw-long-enough-1", is_staff=True)
    client.force_login(staff)
    assert client.get("/healthz/detail").status_code == 401
    staff.groups.add(roles_ensure()[OPERATOR])
    body = client.get("/healthz/detail").json()
    assert set(body["checks"]) == {"database", "redis", "workers", "relays"}


@pytest.mark.django_db
def test_detail_without_a_token_set_refuses_an_empty_bearer(client, monkeypatch):
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    assert client.get("/healthz/detail", HTTP_AUTHORIZATION="Bearer ").status_code == 401


@pytest.mark.django_db
def test_detail_reads_worker_reports_and_opens_no_smtp_session(client, monkeypatch,
                                                               settings, redis_client):
    monkeypatch.setenv("METRICS_TOKEN", "tok")
    server = CountingServer()
    settings.DEFAULT_RELAY_URL = f"smtp://127.0.0.1:{server.port}"
    auth = {"HTTP_AUTHORIZATION": "Bearer tok"}
    try:
        response = client.get("/healthz/detail", **auth)
        assert response.status_code == 503
        checks = response.json()["checks"]
        assert not checks["workers"]["ok"] and not checks["relays"]["ok"]
        assert server.accepted == 0

        # What the workers write: heartbeats of every group and a relay report.
        for group in health.WORKER_GROUPS:
            redis_client.set(f"{health.WORKER_PREFIX}{group}@host", "1", ex=30)
        redis_client.set(f"{health.RELAY_PREFIX}transactional:default:127.0.0.1:25",
                         json.dumps({"ok": True, "at": 1}), ex=60)
        assert client.get("/healthz/detail", **auth).status_code == 503  # cached answer
        health._detail.clear()
        response = client.get("/healthz/detail", **auth)
        assert response.status_code == 200, response.json()
        assert server.accepted == 0
    finally:
        server.close()


@pytest.mark.django_db
def test_probe_writes_a_failing_report_for_a_relay_that_refuses(settings, redis_client,
                                                                smtp_sink):
    health.relays_probe(["transactional"])
    (key,) = [k.decode() for k in redis_client.scan_iter(match=f"{health.RELAY_PREFIX}*")]
    assert json.loads(redis_client.get(key))["ok"] is True
    server = CountingServer()  # answers 421 and hangs up
    settings.DEFAULT_RELAY_URL = f"smtp://127.0.0.1:{server.port}"
    try:
        health.relays_probe(["transactional"])
        assert server.accepted == 1
        reports = [json.loads(redis_client.get(k))
                   for k in redis_client.scan_iter(match=f"{health.RELAY_PREFIX}*")]
        assert [r["ok"] for r in reports if str(server.port) in r["relay"]] == [False]
        with pytest.raises(RuntimeError, match="relay probe failed"):
            health.check_relays()
    finally:
        server.close()


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_writes_its_heartbeat_and_relay_report(celery_worker_factory,
                                                             smtp_sink, redis_client):
    worker = celery_worker_factory("transactional", name="transactional")
    wait_until(lambda: list(redis_client.scan_iter(match=f"{health.WORKER_PREFIX}*")), 15)
    seen = [k.decode() for k in redis_client.scan_iter(match=f"{health.WORKER_PREFIX}*")]
    assert any(name.startswith(f"{health.WORKER_PREFIX}transactional@") for name in seen)
    report = wait_until(lambda: [json.loads(redis_client.get(k)) for k in
                                 redis_client.scan_iter(match=f"{health.RELAY_PREFIX}*")], 15)
    assert report[0]["ok"] is True and str(smtp_sink.port) in report[0]["relay"]
    worker.stop()
    wait_until(lambda: not list(redis_client.scan_iter(match=f"{health.WORKER_PREFIX}*")), 15)
