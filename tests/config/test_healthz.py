import pytest


@pytest.mark.django_db
def test_healthz_reports_each_part_and_fails_without_workers(client, smtp_sink):
    response = client.get("/healthz")
    body = response.json()
    assert set(body["checks"]) == {"database", "redis", "smtp", "workers"}
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    assert body["checks"]["smtp"]["ok"]
    assert not body["checks"]["workers"]["ok"]  # no worker runs in this test
    assert response.status_code == 503 and body["ok"] is False


@pytest.mark.django_db
def test_healthz_fails_when_smtp_is_down(client, settings):
    from config.redis_server import free_port

    settings.DEFAULT_RELAY_URL = f"smtp://127.0.0.1:{free_port()}"
    body = client.get("/healthz").json()
    assert body["checks"]["smtp"]["ok"] is False
