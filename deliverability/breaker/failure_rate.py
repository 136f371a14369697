"""The catch-all breaker: a provider refusing too large a share of our mail is paused,
whatever its texts say.

The class rules only know the texts someone wrote a pattern for; a provider
that starts blocking with a new wording (or a small provider we have no rules
for) would never trip them. So every SMTP answer of a provider x egress key is
also counted here, in a sliding window: when, after a minimum sample, the share
of non-2xx answers of the counted classes reaches the threshold, the key is
paused like a block (its own ladder). Recipient-level answers (unknown user,
mailbox full) count as attempts but not as failures: a dirty list is the
guardrails' business, not the provider's verdict on us.

The thresholds are rules data (``[failure_rate]`` of ``rules.toml``, with its
source). Counts live in one Redis hash per key with one field pair per time
bucket (``a:<n>`` attempts, ``f:<n>`` failures), so every worker adds to the
same window; accepted messages are added in batches by the sending engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from deliverability.breaker.rules import BreakerClass, duration

RATE_KEY = "deliverability:breaker-rate:{pool}:{provider}"
BUCKETS = 15  # the window is counted in this many slices (15 m window: one a minute)


@dataclass(frozen=True)
class FailureRateRule:
    window: int  # seconds
    min_attempts: int
    max_failure_ratio: float
    count_classes: frozenset[str]
    klass: BreakerClass  # how a trip reacts: pause with this ladder
    source: str = ""


def rule_from(raw: dict) -> FailureRateRule | None:
    """The ``[failure_rate]`` section of the rules data, or None when absent."""
    spec = raw.get("failure_rate")
    if not spec:
        return None
    return FailureRateRule(
        window=duration(spec["window"]), min_attempts=int(spec["min_attempts"]),
        max_failure_ratio=float(spec["max_failure_ratio"]),
        count_classes=frozenset(spec["count_classes"]),
        klass=BreakerClass(name="failure_rate", reaction="pause", trigger=None,
                           ladder=tuple(spec["ladder"]),
                           after_ladder=spec.get("after_ladder", "manual")),
        source=spec.get("source", ""),
    )


class FailureRate:
    """Sliding-window attempt and failure counts per provider x egress key, in Redis."""

    def __init__(self, redis, rule: FailureRateRule, *, clock: Callable[[], float],
                 scale: float = 1.0):
        self.redis = redis
        self.rule = rule
        self.clock = clock
        self.width = max(1e-6, rule.window * scale / BUCKETS)

    def _key(self, provider: str, pool: str) -> str:
        return RATE_KEY.format(pool=pool, provider=provider)

    def _ttl(self) -> int:
        return max(1, math.ceil(self.width * (BUCKETS + 1)))

    def answer(self, provider: str, pool: str, klass: str, now: float | None = None) -> bool:
        """Count one non-2xx answer; True when the key's failure share crossed the line."""
        now = self.clock() if now is None else now
        bucket = int(now // self.width)
        failed = klass in self.rule.count_classes
        key = self._key(provider, pool)
        pipe = self.redis.pipeline()
        pipe.hincrby(key, f"a:{bucket}", 1)
        if failed:
            pipe.hincrby(key, f"f:{bucket}", 1)
        pipe.hgetall(key)
        pipe.expire(key, self._ttl())
        counts = pipe.execute()[-2]
        attempts, failures = self._sum(key, counts, bucket)
        return failed and self.crossed(attempts, failures)

    def accepted(self, counts: dict[tuple[str, str], int], now: float | None = None) -> None:
        """Add accepted messages per (provider, pool), in one round trip."""
        if not counts:
            return
        now = self.clock() if now is None else now
        bucket = int(now // self.width)
        pipe = self.redis.pipeline(transaction=False)
        for (provider, pool), count in counts.items():
            key = self._key(provider, pool)
            pipe.hincrby(key, f"a:{bucket}", int(count))
            pipe.expire(key, self._ttl())
        pipe.execute()

    def window(self, provider: str, pool: str, now: float | None = None) -> tuple[int, int]:
        """(attempts, failures) in the window now (the admin page, tests)."""
        now = self.clock() if now is None else now
        key = self._key(provider, pool)
        return self._sum(key, self.redis.hgetall(key), int(now // self.width))

    def reset(self, provider: str, pool: str) -> None:
        """A trip starts a new window: failures before a pause must not trip it again."""
        self.redis.delete(self._key(provider, pool))

    def crossed(self, attempts: int, failures: int) -> bool:
        return (attempts >= self.rule.min_attempts
                and failures >= self.rule.max_failure_ratio * attempts)

    def _sum(self, key: str, counts: dict, bucket: int) -> tuple[int, int]:
        attempts = failures = 0
        stale = []
        for field, value in counts.items():
            name = field.decode() if isinstance(field, bytes) else field
            kind, _, number = name.partition(":")
            if int(number) <= bucket - BUCKETS:
                stale.append(name)
            elif kind == "a":
                attempts += int(value)
            elif kind == "f":
                failures += int(value)
        if stale:
            self.redis.hdel(key, *stale)
        return attempts, failures

    def reason(self, attempts: int, failures: int) -> str:
        window = self.rule.window // 60
        return (f"{failures} of {attempts} answers refused ({failures / max(1, attempts):.0%}) "
                f"within {window} min (catch-all limit {self.rule.max_failure_ratio:.0%})")
