"""Which providers hold mail back right now, for the pages people read.

Read from the breaker's state (``deliverability.breaker.engine``): a key that is
``paused`` (cool-down, nothing sent until ``until``), ``probing`` (a few test
messages; the rest follows once they are accepted) or ``manual`` (nothing until
an operator acknowledges). ``throttled`` and ``ok`` keys still send and are not
listed. Keys are per pool, or per pool and egress IP (``bulk@192.0.2.1``, see
``sending.engine.breaker_pool``); the provider ``*`` is a pause of the whole pool.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from deliverability.breaker.engine import MANUAL, PAUSED, POOL_WIDE, PROBING, Breaker
from deliverability.providers import provider_name

logger = logging.getLogger(__name__)

HOLDING = (PAUSED, PROBING, MANUAL)


@dataclass(frozen=True)
class PausedProvider:
    provider: str
    pool: str  # the breaker key's pool, e.g. "bulk" or "bulk@192.0.2.1"
    state: str
    until: datetime | None  # end of the cool-down (paused); None otherwise
    reason: str = ""
    waiting: int | None = None  # this campaign's messages held for it (None: not counted)

    @property
    def name(self) -> str:
        return provider_name(self.provider)

    @property
    def pool_name(self) -> str:
        return self.pool.partition("@")[0]

    @property
    def egress(self) -> str:
        return self.pool.partition("@")[2]

    @property
    def next_step(self) -> str:
        """What happens to its mail next, in words; for a pause, after it ends (the page
        says when: "The pause ends 23:30 (in 4 h); then ...")."""
        if self.state == PAUSED:
            return "a few test messages go, and the rest follows once they are accepted"
        if self.state == PROBING:
            return "test messages are going out now; the rest follows once they are accepted"
        return "its mail waits for an operator (the provider blocked us again and again)"


def _in_pool(key_pool: str, pool: str | None) -> bool:
    return pool is None or key_pool == pool or key_pool.startswith(pool + "@")


def paused_providers(*, pool: str | None = None, open_by_provider: dict[str, int] | None = None,
                     breaker: Breaker | None = None) -> list[PausedProvider] | None:
    """The keys holding mail back, optionally only ``pool``'s and only the providers
    in ``open_by_provider`` (a mailing's messages still to go, per provider: those
    counts become ``waiting``). None when the breaker's state cannot be read."""
    try:
        breaker = breaker or Breaker()
        keys = breaker.keys()
        statuses = [breaker.status(provider, key_pool) for provider, key_pool in keys
                    if _in_pool(key_pool, pool)]
    except Exception as exc:  # Redis down: the page says "unknown", it does not fail
        logger.warning("breaker state unreadable for the paused-provider lines: %s", exc)
        return None
    found = []
    for status in statuses:
        if status["state"] not in HOLDING:
            continue
        provider = status["provider"]
        waiting = None
        if open_by_provider is not None:
            waiting = (sum(open_by_provider.values()) if provider == POOL_WIDE
                       else open_by_provider.get(provider, 0))
            if not waiting:
                continue  # nothing of this campaign is held by it
        until = status.get("until")
        found.append(PausedProvider(
            provider=provider, pool=status["pool"], state=status["state"],
            until=(datetime.fromtimestamp(float(until), UTC)
                   if until and status["state"] == PAUSED else None),
            reason=status.get("reason", ""), waiting=waiting))
    found.sort(key=lambda p: (HOLDING.index(p.state), p.name, p.pool))
    return found
