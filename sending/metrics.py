"""Prometheus metrics at ``/metrics``, behind a bearer token (``METRICS_TOKEN``).

Gauges computed at scrape time from the database and Redis: deliveries by
state, SMTP answers of the last 24 hours by kind, breaker states, queue depths
and relays marked down. No token configured: the endpoint answers 404.
"""

from __future__ import annotations

import hmac
from datetime import timedelta

from django.db.models import Count
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from config.celery import QUEUES
from config.env import env_str
from config.redis import get_redis
from deliverability.breaker.engine import Breaker
from sending.models import Delivery, DeliveryAttempt, TransactionalEmail

BREAKER_STATES = ("ok", "throttled", "paused", "probing", "manual")


def _label(value) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Exposition:
    def __init__(self):
        self.lines: list[str] = []

    def metric(self, name: str, help_text: str, samples: list[tuple[dict, float]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            rendered = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{rendered}}} {value}" if rendered else f"{name} {value}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def collect() -> str:
    out = _Exposition()
    by_state = dict(Delivery.objects.values_list("state").annotate(n=Count("id")))
    out.metric("postwarden_deliveries", "Bulk deliveries by state.",
               [({"state": s}, by_state.get(s, 0)) for s in Delivery.State.values])
    since = timezone.now() - timedelta(hours=24)
    kinds = dict(DeliveryAttempt.objects.filter(at__gte=since).values_list("kind")
                 .annotate(n=Count("id")))
    out.metric("postwarden_smtp_answers_24h", "SMTP answers of the last 24 hours by kind.",
               [({"kind": k or "unknown"}, n) for k, n in sorted(kinds.items(), key=str)])
    transactional = dict(TransactionalEmail.objects.values_list("state").annotate(n=Count("id")))
    out.metric("postwarden_transactional", "Transactional mails by state.",
               [({"state": s}, transactional.get(s, 0))
                for s in TransactionalEmail.State.values])
    breaker = Breaker()
    samples = []
    for provider, pool in breaker.keys():
        state = breaker.status(provider, pool)["state"]
        samples += [({"provider": provider, "pool": pool, "state": s}, int(s == state))
                    for s in BREAKER_STATES]
    out.metric("postwarden_breaker_state", "Provider breaker state (1 for the current one).",
               samples)
    redis = get_redis()
    out.metric("postwarden_queue_depth", "Tasks waiting in each Celery queue.",
               [({"queue": q}, redis.llen(q)) for q in QUEUES])
    down = [key.decode().removeprefix("sending:relay-down:")
            for key in redis.scan_iter(match="sending:relay-down:*")]
    out.metric("postwarden_relay_down", "Relays currently marked down (1).",
               [({"relay": relay}, 1) for relay in sorted(down)])
    return out.text()


@require_GET
def metrics_view(request):
    token = env_str("METRICS_TOKEN")
    if not token:
        raise Http404("metrics are disabled: set METRICS_TOKEN")
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        return HttpResponse("unauthorized\n", status=401, content_type="text/plain",
                            headers={"WWW-Authenticate": "Bearer"})
    return HttpResponse(collect(), content_type="text/plain; version=0.0.4; charset=utf-8")
