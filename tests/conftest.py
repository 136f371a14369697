"""Shared fixtures: a private Redis, an SMTP sink, real Celery workers.

Nothing here touches a Redis on 6379 or the user's data folder: the session
starts its own redis-server on a free port and points the whole process (and
every subprocess it starts) at it.
"""

from __future__ import annotations

import pytest
from django.conf import settings

from config.redis_server import PrivateRedis, free_port
from sending.sink import start_sink
from tests.helpers import WorkerProcess


@pytest.fixture(scope="session", autouse=True)
def no_public_dns():
    """Tests never ask public DNS: provider grouping uses the shipped lists, and campaigns
    start without the reputation pre-flight (tests of both bring a local DNS server).
    The checklist's SpamAssassin score is off unless a test starts a spamd.
    Worker subprocesses inherit the environment."""
    import os

    from deliverability import conf as deliverability_conf
    from newsletter import conf as newsletter_conf

    os.environ["PROVIDER_MX_LOOKUP"] = "false"
    os.environ["PREFLIGHT_BEFORE_START"] = "off"
    deliverability_conf.PROVIDER_MX_LOOKUP = False
    newsletter_conf.PREFLIGHT_BEFORE_START = "off"
    # Nor a developer's spamd: the content-check tests start their own.
    os.environ.pop("SPAMD_URL", None)
    newsletter_conf.SPAMD_URL = ""
    yield


@pytest.fixture(autouse=True)
def fresh_breaker_rules():
    """The breaker keeps the rules with the admin's overrides for a minute; a test's
    overrides are rolled back with its database, so the next test must not see them."""
    yield
    from deliverability.breaker import rules

    rules.reload()


@pytest.fixture(scope="session", autouse=True)
def private_redis():
    with PrivateRedis() as server:
        settings.REDIS_URL = server.url
        settings.CELERY_BROKER_URL = server.url
        settings.CACHES["default"]["LOCATION"] = server.url
        from config.celery import app

        app.conf.broker_url = server.url
        yield server


@pytest.fixture
def redis_client(private_redis):
    from config.redis import get_redis

    client = get_redis()
    client.flushdb()
    return client


@pytest.fixture
def smtp_sink(tmp_path, settings):
    """A real aiosmtpd sink on a free port, with the default relay pointed at it."""
    directory = tmp_path / "sink"
    port = free_port()
    controller = start_sink(directory, port=port)
    settings.DEFAULT_RELAY_URL = f"smtp://127.0.0.1:{port}"
    settings.SINK_DIR = directory
    settings.SINK_PORT = port
    controller.directory = directory
    controller.relay_url = settings.DEFAULT_RELAY_URL
    yield controller
    controller.stop()


@pytest.fixture
def celery_worker_factory(tmp_path, transactional_db):
    workers: list[WorkerProcess] = []

    def start(queues: str = "transactional", name: str = "test", **kwargs) -> WorkerProcess:
        worker = WorkerProcess(queues, name, tmp_path / f"worker-{name}-{len(workers)}.log",
                               **kwargs)
        workers.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop()
