"""``/healthz``: database, Redis, SMTP relay (the sink by default) and workers.

HTTP 200 only when every part is up, 503 otherwise, with the details as JSON.
"""

from __future__ import annotations

import smtplib
import time

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.celery import WORKER_GROUPS
from config.celery import app as celery_app
from config.redis import get_redis

TIMEOUT_S = 1.0


def _check(fn):
    started = time.monotonic()
    try:
        detail = fn()
        result = {"ok": True}
        if detail:
            result["detail"] = detail
    except Exception as exc:  # a health check reports, it never raises
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def check_redis():
    get_redis().ping()


def check_smtp():
    from sending.relays import relays_for

    relay = relays_for("transactional")[0]
    session = smtplib.SMTP(relay.host, relay.port, timeout=TIMEOUT_S)
    try:
        code, _ = session.noop()
        if code != 250:
            raise RuntimeError(f"NOOP answered {code}")
    finally:
        session.close()
    return relay.label


def check_workers():
    """Every queue group has a live worker (answers a broadcast ping)."""
    replies = celery_app.control.ping(timeout=TIMEOUT_S) or []
    names = [name for reply in replies for name in reply]
    missing = [group for group in WORKER_GROUPS if not any(f"{group}@" in n for n in names)]
    if not names:
        raise RuntimeError("no worker answered")
    if missing:
        raise RuntimeError(f"no worker for: {', '.join(missing)} (seen: {', '.join(names)})")
    return sorted(names)


CHECKS = {
    "database": check_database,
    "redis": check_redis,
    "smtp": check_smtp,
    "workers": check_workers,
}


@never_cache
@require_GET
def healthz(request):
    results = {name: _check(fn) for name, fn in CHECKS.items()}
    ok = all(r["ok"] for r in results.values())
    return JsonResponse({"ok": ok, "checks": results}, status=200 if ok else 503)
