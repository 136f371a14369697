"""A relay's ``max_connections``, held across every worker on every machine.

Each open SMTP session to a relay holds a slot: a member of a Redis sorted set
per relay, scored with the time its lease runs out. A session takes a slot
before it connects and gives it back when it closes; while open it renews the
lease now and then. A worker killed with its sessions open frees its slots when
their leases run out (``LEASE_S``), so a crash costs capacity for a while, never
forever. Times are Redis's own clock, the same for every machine.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from redis.exceptions import RedisError

from config.redis import get_redis

LEASE_S = 30
RENEW_AFTER_S = 10

_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if held or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 1)
  return 1
end
return 0
"""


def slots_key(relay_key: str) -> str:
    return f"sending:relay-slots:{relay_key}"


TRANSACTIONAL_SCOPE = "transactional"


def relay_key(scope: str, relay) -> str:
    """A relay as the sending code keys it (slots, buckets, health): per bulk pool name,
    and one scope for every transactional relay."""
    return f"{scope}:{relay.name}:{relay.host}:{relay.port}"


def relay_slot_key(pool, relay) -> str:
    """``relay_key`` for a pool row and a relay row (the admin)."""
    scope = TRANSACTIONAL_SCOPE if pool.purpose == TRANSACTIONAL_SCOPE else pool.name
    return relay_key(scope, relay)


@dataclass
class Slot:
    relay_key: str
    holder: str = field(default_factory=lambda: uuid.uuid4().hex)
    renewed: float = 0.0  # monotonic time of the last take or renewal


class Slots:
    def __init__(self, redis):
        self.redis = redis
        self._take = redis.register_script(_TAKE)

    def take(self, relay_key: str, limit: int) -> Slot | None:
        """A slot for a new session, or None when ``limit`` sessions are open.
        A limit of 0 means no limit (nothing is recorded)."""
        slot = Slot(relay_key)
        if limit > 0 and not self._take(keys=[slots_key(relay_key)],
                                         args=[slot.holder, limit, LEASE_S]):
            return None
        slot.renewed = time.monotonic()
        return slot

    def keep(self, slot: Slot, limit: int) -> bool:
        """Renew an open session's lease when due; False if it was lost meanwhile
        (expired and taken by another session): then close the session."""
        if limit <= 0 or time.monotonic() - slot.renewed < RENEW_AFTER_S:
            return True
        if not self._take(keys=[slots_key(slot.relay_key)], args=[slot.holder, limit, LEASE_S]):
            return False
        slot.renewed = time.monotonic()
        return True

    def give_back(self, slot: Slot) -> None:
        self.redis.zrem(slots_key(slot.relay_key), slot.holder)

    def held(self, relay_key: str) -> int:
        """Sessions open to this relay now (for the admin and tests)."""
        return int(self.redis.zcount(slots_key(relay_key), time.time(), "+inf"))


_slots: Slots | None = None


def relay_slots() -> Slots:
    """The process's Slots on the current Redis client."""
    global _slots
    redis = get_redis()
    if _slots is None or _slots.redis is not redis:
        _slots = Slots(redis)
    return _slots


def give_back_quietly(slot: Slot | None) -> None:
    if slot is not None:
        try:
            relay_slots().give_back(slot)
        except RedisError:
            pass  # its lease runs out by itself
