"""Health: ``/healthz`` for load balancers, ``/healthz/detail`` for operators.

``/healthz`` is public and cheap: the database answers ``SELECT 1`` and Redis a
PING, 200 or 503 with ``{"ok": ...}`` and nothing else (no vendor, address or
error text). Workers and relays are not part of it: a web container is healthy
while it can serve, and restarting it would not bring a worker back.

``/healthz/detail`` needs ``METRICS_TOKEN`` (``Authorization: Bearer``) or a
logged-in user with ``project.view_health``. It opens no SMTP session and pings
no worker: every worker writes a heartbeat into Redis, and the workers that
send mail probe their relays once a minute and write what they found
(``worker_reporter_start``, started by ``config.celery`` when a worker is ready).
Answers of both views are kept for a few seconds per process, so a flood of
requests costs one round of checks per interval.
"""

from __future__ import annotations

import hmac
import json
import logging
import smtplib
import ssl
import threading
import time

from django.db import connection, connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.celery import WORKER_GROUPS
from config.env import env_str
from config.redis import get_redis

logger = logging.getLogger(__name__)

PUBLIC_CACHE_S = 2.0
DETAIL_CACHE_S = 5.0
HEARTBEAT_S = 10.0
HEARTBEAT_TTL_S = 35  # three missed beats: the worker is gone
RELAY_PROBE_S = 60.0
RELAY_REPORT_TTL_S = 3 * 60
PROBE_TIMEOUT_S = 10.0
WORKER_PREFIX = "health:worker:"
RELAY_PREFIX = "health:relay:"
RELAY_DOWN_PREFIX = "sending:relay-down:"  # written by the sending engine on a failure
SENDING_QUEUES = ("transactional", "bulk")


class _Memo:
    """One answer per process for ``seconds``; concurrent callers wait for one computation."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._lock = threading.Lock()
        self._value = None
        self._until = 0.0

    def get(self, compute):
        with self._lock:
            if self._value is None or time.monotonic() >= self._until:
                self._value = compute()
                self._until = time.monotonic() + self.seconds
            return self._value

    def clear(self) -> None:
        with self._lock:
            self._value = None


_public = _Memo(PUBLIC_CACHE_S)
_detail = _Memo(DETAIL_CACHE_S)


def _check(fn):
    started = time.monotonic()
    try:
        detail = fn()
        result = {"ok": True}
        if detail is not None:
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


def check_workers():
    """Every queue group has a worker whose heartbeat is fresh."""
    names = sorted(key.decode().removeprefix(WORKER_PREFIX)
                   for key in get_redis().scan_iter(match=f"{WORKER_PREFIX}*", count=500))
    missing = [group for group in WORKER_GROUPS if not any(n.startswith(f"{group}@")
                                                           for n in names)]
    if not names:
        raise RuntimeError("no worker heartbeat")
    if missing:
        raise RuntimeError(f"no worker for: {', '.join(missing)} (seen: {', '.join(names)})")
    return names


def check_relays():
    """The relays as the sending workers last found them (probes and sending failures)."""
    redis = get_redis()
    reports = {}
    for key in redis.scan_iter(match=f"{RELAY_PREFIX}*", count=500):
        raw = redis.get(key)
        if raw:
            reports[key.decode().removeprefix(RELAY_PREFIX)] = json.loads(raw)
    down = {key.decode().removeprefix(RELAY_DOWN_PREFIX): (redis.get(key) or b"").decode()
            for key in redis.scan_iter(match=f"{RELAY_DOWN_PREFIX}*", count=500)}
    if not reports:
        raise RuntimeError("no relay report yet (the sending workers probe once a minute)")
    failing = sorted(name for name, report in reports.items() if not report.get("ok"))
    if failing:
        raise RuntimeError(f"relay probe failed: {', '.join(failing)}")
    if down:
        raise RuntimeError(f"relay marked down by the sender: {', '.join(sorted(down))}")
    return reports


DETAIL_CHECKS = {
    "database": check_database,
    "redis": check_redis,
    "workers": check_workers,
    "relays": check_relays,
}


def _public_status() -> bool:
    return all(_check(fn)["ok"] for fn in (check_database, check_redis))


def _detail_status() -> dict:
    results = {name: _check(fn) for name, fn in DETAIL_CHECKS.items()}
    return {"ok": all(r["ok"] for r in results.values()), "checks": results}


@never_cache
@require_GET
def healthz(request):
    ok = _public.get(_public_status)
    return JsonResponse({"ok": ok}, status=200 if ok else 503)


def _may_see_detail(request) -> bool:
    token = env_str("METRICS_TOKEN")
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if token and given and hmac.compare_digest(given.encode(), token.encode()):
        return True
    user = request.user
    return user.is_active and user.is_staff and user.has_perm("project.view_health")


@never_cache
@require_GET
def healthz_detail(request):
    if not _may_see_detail(request):
        return JsonResponse({"error": "METRICS_TOKEN or an operator's login required"},
                            status=401, headers={"WWW-Authenticate": "Bearer"})
    body = _detail.get(_detail_status)
    return JsonResponse(body, status=200 if body["ok"] else 503)


# --- what the workers report ----------------------------------------------------

def probe_relay(relay) -> dict:
    """One SMTP greeting and NOOP, no AUTH and no mail: is the relay there and talking?"""
    context = ssl.create_default_context()
    if not relay.verify_certificate:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    started = time.time()
    try:
        if relay.tls_mode == "implicit":
            session = smtplib.SMTP_SSL(relay.host, relay.port, timeout=PROBE_TIMEOUT_S,
                                       context=context)
        else:
            session = smtplib.SMTP(relay.host, relay.port, timeout=PROBE_TIMEOUT_S)
        try:
            session.ehlo(relay.helo_name or None)
            if relay.tls_mode == "starttls":
                session.starttls(context=context)
                session.ehlo(relay.helo_name or None)
            code, _ = session.noop()
        finally:
            try:
                session.quit()
            except smtplib.SMTPException:
                session.close()
        ok = code == 250
        error = "" if ok else f"NOOP answered {code}"
    except (OSError, smtplib.SMTPException) as exc:
        ok, error = False, f"{type(exc).__name__}: {exc}"[:300]
    return {"ok": ok, "error": error, "at": round(started), "relay": relay.label}


def relays_probe(purposes) -> None:
    """Probe the relays of the pools with these purposes; write one report each."""
    from sending.relays import relays_for

    targets = {f"{purpose}:{c.name}:{c.host}:{c.port}": c
               for purpose in purposes for c in relays_for(purpose)}
    redis = get_redis()
    for key, config in targets.items():
        redis.set(f"{RELAY_PREFIX}{key}", json.dumps(probe_relay(config)),
                  ex=RELAY_REPORT_TTL_S)


def _report_loop(hostname: str, purposes: list[str], stop: threading.Event) -> None:
    next_probe = 0.0
    while not stop.is_set():
        try:
            get_redis().set(f"{WORKER_PREFIX}{hostname}", str(round(time.time())),
                            ex=HEARTBEAT_TTL_S)
            if purposes and time.monotonic() >= next_probe:
                next_probe = time.monotonic() + RELAY_PROBE_S
                try:
                    relays_probe(purposes)
                finally:
                    connections.close_all()  # this thread's own; none kept between probes
        except Exception:  # the reporter never takes a worker down
            logger.warning("health.report_failed", exc_info=True)
        stop.wait(HEARTBEAT_S)


def worker_reporter_start(hostname: str, queues) -> threading.Event:
    """A daemon thread in the worker's main process: heartbeat, and relay probes for the
    sending queues it consumes. Set the returned event to stop it."""
    stop = threading.Event()
    purposes = [q for q in SENDING_QUEUES if q in set(queues)]
    threading.Thread(target=_report_loop, args=(hostname, purposes, stop),
                     name="health-reporter", daemon=True).start()
    return stop


def worker_reporter_stop(hostname: str) -> None:
    try:
        get_redis().delete(f"{WORKER_PREFIX}{hostname}")
    except Exception:  # shutting down anyway
        logger.debug("health.heartbeat_delete_failed", exc_info=True)
