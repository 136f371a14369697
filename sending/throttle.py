"""Shared token buckets and the per-connection send journal, in one Redis call.

Before every message a worker runs ``Journal.take`` (one Lua script call):

1. it appends the outcome of the previous message on this connection to the
   journal list (so the records survive the worker: a reaper applies them);
2. it checks the token buckets (pool, relay, provider; shared by all workers,
   refilled continuously at ``rate`` per second up to ``burst``);
3. if every bucket has a token it takes them and records *this* delivery as
   in flight; otherwise it returns how long to wait and records nothing in
   flight.

So after a crash the journal says exactly which delivery was on the wire
(at most one per connection) and the answers of the ones before it that were
not yet written to the database. Keys expire after ``JOURNAL_TTL``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from redis.exceptions import NoScriptError

JOURNAL_TTL = 7 * 24 * 3600
BUCKET_TTL = 3600

_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if ARGV[2] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
end
local wait = 0
local levels = {}
local n = #KEYS - 2
for i = 1, n do
  local rate = tonumber(ARGV[2 + 2 * i])
  local burst = tonumber(ARGV[3 + 2 * i])
  if rate > 0 then
    local b = redis.call('HMGET', KEYS[2 + i], 'tokens', 'ts')
    local tokens = tonumber(b[1]) or burst
    local ts = tonumber(b[2]) or now
    tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
    levels[i] = tokens
    if tokens < 1 then
      local w = (1 - tokens) / rate
      if w > wait then wait = w end
    end
  end
end
if wait > 0 then
  redis.call('HSET', KEYS[1], 'cur', '')
  return tostring(wait)
end
for i = 1, n do
  if levels[i] then
    redis.call('HSET', KEYS[2 + i], 'tokens', tostring(levels[i] - 1), 'ts', tostring(now))
    redis.call('EXPIRE', KEYS[2 + i], BUCKET_TTL)
  end
end
redis.call('HSET', KEYS[1], 'cur', ARGV[1])
return '0'
""".replace("BUCKET_TTL", str(BUCKET_TTL))


@dataclass(frozen=True)
class Bucket:
    key: str
    rate: float  # tokens per second; <= 0 means unlimited
    burst: float

    @classmethod
    def per_second(cls, key: str, rate: float | None) -> Bucket:
        rate = float(rate or 0)
        return cls(f"sending:bucket:{key}", rate, max(1.0, rate))  # burst: one second's worth


def journal_keys(token: str) -> tuple[str, str]:
    return f"sending:journal:{token}", f"sending:journal:{token}:done"


class Journal:
    """One worker connection's write-ahead record in Redis."""

    def __init__(self, redis, token: str):
        self.redis = redis
        self.token = token
        self.hash_key, self.list_key = journal_keys(token)
        self._script = redis.register_script(_SCRIPT)  # .sha; loaded on first NOSCRIPT

    def open(self) -> None:
        """Written before the rows are claimed: a missing journal then means Redis lost it."""
        self.redis.hset(self.hash_key, mapping={"opened": str(time.time()), "cur": ""})
        self.redis.expire(self.hash_key, JOURNAL_TTL)

    def take(self, delivery_id: int, previous: dict | None, buckets: list[Bucket]) -> float:
        """0 when the message may go now (and is marked in flight), else seconds to wait."""
        # Unlimited buckets are left out: nothing to check, fewer bytes each way.
        buckets = [b for b in buckets if b.rate > 0]
        keys = [self.hash_key, self.list_key, *(b.key for b in buckets)]
        args: list = [delivery_id, json.dumps(previous) if previous else "", JOURNAL_TTL]
        for bucket in buckets:
            args += [bucket.rate, bucket.burst]
        # EVALSHA straight away: redis-py's Script wrapper costs ~20 us a call, and
        # this runs before every message. A Redis that lost its scripts (restarted)
        # answers NOSCRIPT once: load it and go on.
        try:
            reply = self.redis.execute_command("EVALSHA", self._script.sha, len(keys),
                                               *keys, *args)
        except NoScriptError:
            self._script.sha = self.redis.script_load(_SCRIPT)
            reply = self.redis.execute_command("EVALSHA", self._script.sha, len(keys),
                                               *keys, *args)
        return float(reply)

    def record(self, previous: dict) -> None:
        """Journal a last answer without taking a new message (nothing in flight after)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.rpush(self.list_key, json.dumps(previous))
        pipe.expire(self.list_key, JOURNAL_TTL)
        pipe.hset(self.hash_key, "cur", "")
        pipe.execute()

    def clear_done(self) -> None:
        """After the answers are in the database the list is no longer needed."""
        self.redis.delete(self.list_key)

    def close(self) -> None:
        self.redis.delete(self.hash_key, self.list_key)


def read_journal(redis, token: str) -> tuple[dict | None, list[dict]]:
    """(hash or None when missing, journalled outcomes) of a connection."""
    hash_key, list_key = journal_keys(token)
    raw = redis.hgetall(hash_key)
    outcomes = [json.loads(item) for item in redis.lrange(list_key, 0, -1)]
    if not raw:
        return None, outcomes
    return {k.decode(): v.decode() for k, v in raw.items()}, outcomes
