"""The one Celery app. Tasks name their queue; the queues are by purpose.

- ``transactional``: confirmations, test sends, alerts; never behind bulk mail.
- ``bulk``: campaign deliveries.
- ``deliverability``: bounce intake, classification, breaker bookkeeping.
- ``maintenance``: fan-out, reapers, pruning, reports.
"""

import os

from celery import Celery
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
