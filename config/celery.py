"""The one Celery app. Tasks name their queue; the queues are by purpose.

- ``transactional``: confirmations, test sends, alerts; never behind bulk mail.
- ``bulk``: campaign deliveries.
- ``deliverability``: bounce intake, classification, breaker bookkeeping.
- ``maintenance``: fan-out, reapers, pruning, reports.
"""

import os

from celery import Celery
from celery.signals import (
    beat_init,
    task_postrun,
    task_prerun,
    worker_init,
    worker_ready,
    worker_shutdown,
)
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

QUEUES = ("transactional", "bulk", "deliverability", "maintenance")

# Queue groups, one worker each in `make run` and docker compose.
WORKER_GROUPS = {
    "transactional": ("transactional",),
    "bulk": ("bulk",),
    "ops": ("deliverability", "maintenance"),
}

app = Celery("postwarden")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in QUEUES]
app.autodiscover_tasks()

# Celery's Django fix-up closes every database connection before and after each task
# unless told to reuse them: a new PostgreSQL connection (and server process) for
# every batch of deliveries. Keep them, and close what Django itself would close
# at the end of a web request: broken connections and those past CONN_MAX_AGE.
app.conf["CELERY_DB_REUSE_MAX"] = 1_000_000


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(**_kwargs) -> None:
    from django.db import close_old_connections

    close_old_connections()


@worker_init.connect
@beat_init.connect
def _refuse_without_secret_key(**_kwargs) -> None:
    from config.startup import require_secret_key

    require_secret_key()


@worker_ready.connect
def _report_health(sender, **_kwargs) -> None:
    """Heartbeat and relay probes for /healthz/detail (config.health)."""
    from config.health import worker_reporter_start

    sender._health_stop = worker_reporter_start(
        sender.hostname, list(sender.app.amqp.queues.consume_from))


@worker_shutdown.connect
def _stop_health(sender, **_kwargs) -> None:
    from config.health import worker_reporter_stop

    worker_reporter_stop(sender.hostname)
