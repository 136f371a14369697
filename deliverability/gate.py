"""The one question sending asks before each message: may this pool mail this provider now?

``may_send(provider, pool)`` returns the breaker's ``Decision``: ``allowed``,
``wait_until`` (unix time when not allowed; None = until an operator acts),
``rate`` (None, or a factor below 1 for the provider's nominal rate),
``max_connections`` and ``reason`` (shown on deferred deliveries).

The state lives in Redis, written by the provider breaker
(``deliverability.breaker``). Answers are cached per process so the question
costs nothing per message, and every state change is published on a Redis
channel that each process listens to: a pause reaches every worker within
milliseconds, and within ``CACHE_SECONDS`` even if the notification is lost.
Probe answers are never cached (each yes is one counted probe). Redis errors
propagate: the caller must not send without an answer.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from deliverability.breaker.engine import CHANGES_CHANNEL, Breaker, Decision

logger = logging.getLogger(__name__)

CACHE_SECONDS = 1.0

_cache: dict[tuple[str, str], tuple[float, Decision]] = {}
_breaker: Breaker | None = None
_listener_pid: int | None = None
_lock = threading.Lock()


def _get_breaker() -> Breaker:
    global _breaker
    if _breaker is None:
        _breaker = Breaker()
    return _breaker


def _listen(redis) -> None:
    """Drop cached answers whenever a breaker changes (one thread per process)."""
    failures = 0
    while True:
        try:
            pubsub = redis.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(CHANGES_CHANNEL)
            _cache.clear()  # anything may have changed while we were not listening
            failures = 0
            for message in pubsub.listen():
                if message.get("type") == "message":
                    _cache.clear()
        except Exception as exc:  # Redis restarts: listen again; the cache TTL covers the gap
            failures += 1
            logger.log(logging.INFO if failures == 1 else logging.DEBUG,
                       "breaker change listener reconnecting: %s", exc)
            time.sleep(min(5.0, 0.5 * failures))


def _ensure_listener(redis) -> None:
    global _listener_pid
    if _listener_pid == os.getpid():
        return
    with _lock:
        if _listener_pid == os.getpid():
            return
        # After a fork (Celery's prefork pool) the parent's thread does not exist here.
        _cache.clear()
        threading.Thread(target=_listen, args=(redis,), name="breaker-listener",
                         daemon=True).start()
        _listener_pid = os.getpid()


def may_send(provider: str, pool: str) -> Decision:
    """The breaker's decision for this provider and pool (cached when cacheable)."""
    breaker = _get_breaker()
    _ensure_listener(breaker.redis)
    now = time.monotonic()
    cached = _cache.get((provider, pool))
    if cached and cached[0] > now:
        return cached[1]
    decision = breaker.decide(provider, pool)
    if decision.cacheable:
        _cache[(provider, pool)] = (now + CACHE_SECONDS, decision)
    return decision


MANUAL_RECHECK_S = 60.0  # as the engine re-asks for deliveries the gate holds


def retry_after_block(provider: str, pool: str) -> float | None:
    """When a message just blocked by this key should be tried again (unix time): at
    the end of a pause's cool-down; for a key waiting on an operator (manual), soon
    and again and again like the deliveries the gate holds, so that it goes with the
    probes once acknowledged; None when the key is not stopped."""
    status = _get_breaker().status(provider, pool)
    if status.get("state") == "paused" and status.get("until"):
        return float(status["until"])
    if status.get("state") == "manual":
        return time.time() + MANUAL_RECHECK_S
    return None


def forget() -> None:
    """Drop cached answers and the breaker (tests; after settings change)."""
    global _breaker
    _cache.clear()
    _breaker = None
