"""The Prometheus endpoint: protected by a token, with deliveries, answers, breakers, queues."""

import pytest
from django.utils import timezone

from deliverability.breaker.engine import Breaker
from sending.models import Delivery, DeliveryAttempt, Mailing


@pytest.fixture
def data(db, redis_client):
    mailing = Mailing.objects.create(from_email="n@example.org", subject_template="s",
                                     text_template="t")
    sent = Delivery.objects.create(mailing=mailing, address="a@example.org", state="sent")
    Delivery.objects.create(mailing=mailing, address="b@example.org", state="deferred")
    DeliveryAttempt.objects.create(delivery=sent, at=timezone.now(), code=250, kind="delivered",
                                   outcome="sent")
    Breaker(redis=redis_client).pause("swisscom", "bulk", seconds=60, actor="ops")
    redis_client.rpush("bulk", "x", "y")


def test_metrics_need_the_token(client, data, monkeypatch):
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    assert client.get("/metrics").status_code == 404
    monkeypatch.setenv("METRICS_TOKEN", "s3cret-token")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401


def test_metrics_report_the_service(client, data, monkeypatch):
    monkeypatch.setenv("METRICS_TOKEN", "s3cret-token")
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
    body = response.content.decode()
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert 'postwarden_deliveries{state="sent"} 1' in body
    assert 'postwarden_deliveries{state="deferred"} 1' in body
    assert 'postwarden_smtp_answers_24h{kind="delivered"} 1' in body
    assert 'postwarden_breaker_state{provider="swisscom",pool="bulk",state="paused"} 1' in body
    assert 'postwarden_queue_depth{queue="bulk"} 2' in body
    assert "# TYPE postwarden_relay_down gauge" in body
