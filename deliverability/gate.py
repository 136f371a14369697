"""The one question sending asks before each message: may this pool mail this provider now?

``may_send(provider, pool)`` returns a ``Decision`` with ``allowed``,
``wait_until`` (unix time, when not allowed; None = until an operator acts),
``rate`` (None, or a factor below 1 to apply to the provider's nominal rate)
and ``reason`` (shown on deferred deliveries).

The state lives in Redis, written by the provider circuit breaker
(``deliverability.breaker``): one hash per pool and provider,
``deliverability:breaker:<pool>:<provider>``. No state means "send at the
normal rate". Answers the breaker marks cacheable are kept per process for
``CACHE_SECONDS``, so the question costs nothing per message and a new pause
reaches every worker within that time; probe answers are never cached (each
yes is one counted probe). Redis errors propagate: the caller must not send
without an answer.

If the breaker package is absent the hash is read directly (``_decide``):
``state`` ok / paused (until ``until``) / probing, ``rate``, ``reason``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

CACHE_SECONDS = 1.0
KEY = "deliverability:breaker:{pool}:{provider}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    wait_until: float | None = None
    rate: float | None = None
    reason: str = ""
    cacheable: bool = True


ALLOW = Decision(allowed=True)
_cache: dict[tuple[str, str], tuple[float, object]] = {}
_breaker = None


def breaker_key(provider: str, pool: str) -> str:
    return KEY.format(pool=pool, provider=provider)


def _get_breaker():
    global _breaker
    if _breaker is None:
        try:
            from deliverability.breaker.engine import Breaker
        except ImportError:
            _breaker = False
        else:
            _breaker = Breaker()
    return _breaker


def may_send(provider: str, pool: str, *, redis=None):
    """The breaker's decision for this provider and pool (cached when cacheable)."""
    now = time.monotonic()
    cached = _cache.get((provider, pool))
    if cached and cached[0] > now:
        return cached[1]
    breaker = _get_breaker() if redis is None else False
    if breaker:
        decision = breaker.decide(provider, pool)
    else:
        if redis is None:
            from config.redis import get_redis

            redis = get_redis()
        decision = _decide(redis.hgetall(breaker_key(provider, pool)))
    if getattr(decision, "cacheable", True):
        _cache[(provider, pool)] = (now + CACHE_SECONDS, decision)
    return decision


def forget() -> None:
    """Drop cached answers (tests, and after an operator changes a pause)."""
    global _breaker
    _cache.clear()
    _breaker = None


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
