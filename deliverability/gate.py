"""The one question sending asks before each message: may this pool mail this provider now?

The provider circuit breaker (its own issue) writes one Redis hash per pool
and provider; this module only reads it::

    deliverability:breaker:<pool>:<provider>
        state  "ok" | "paused" | "probing"
        until  unix time the pause ends (paused)
        rate   messages per second allowed while probing (or to slow a provider)
        reason why (shown on deferred deliveries)

No hash means "ok": sending is allowed at the default rates. A paused provider
is refused until ``until``; the caller defers its deliveries with the reason
and does not count a failure. Answers are cached per process for
``CACHE_SECONDS`` so the question costs nothing per message; a pause is seen
by every worker within that time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

CACHE_SECONDS = 1.0
KEY = "deliverability:breaker:{pool}:{provider}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    wait_until: float | None = None  # unix time; set when not allowed
    rate: float | None = None  # messages/s cap for this provider, None = default
    reason: str = ""


ALLOW = Decision(allowed=True)
_cache: dict[tuple[str, str], tuple[float, Decision]] = {}


def breaker_key(provider: str, pool: str) -> str:
    return KEY.format(pool=pool, provider=provider)


def may_send(provider: str, pool: str, *, redis=None) -> Decision:
    """Read the breaker state (cached ``CACHE_SECONDS``). Raises redis errors."""
    now = time.monotonic()
    cached = _cache.get((provider, pool))
    if cached and cached[0] > now:
        return cached[1]
    if redis is None:
        from config.redis import get_redis

        redis = get_redis()
    decision = _decide(redis.hgetall(breaker_key(provider, pool)))
    _cache[(provider, pool)] = (now + CACHE_SECONDS, decision)
    return decision


def forget() -> None:
    """Drop cached answers (tests, and after an operator changes a pause)."""
    _cache.clear()


def _decide(raw: dict) -> Decision:
    if not raw:
        return ALLOW
    fields = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes)
              else v for k, v in raw.items()}
    state = fields.get("state", "ok")
    reason = fields.get("reason", "")
    rate = float(fields["rate"]) if fields.get("rate") else None
    if state == "paused":
        until = float(fields.get("until") or 0)
        if until > time.time():
            return Decision(allowed=False, wait_until=until, reason=reason or "provider paused")
        return Decision(allowed=True, rate=rate)
    return Decision(allowed=True, rate=rate, reason=reason)
