"""Sliding-window rate limits in Redis, shared by every web and worker process.

Each limit is a sorted set of hit timestamps; one Lua script trims the window,
counts and records the hit atomically, so concurrent requests on many machines
can never exceed the limit together.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
import uuid

from config.redis import get_redis

# KEYS: n limit keys; ARGV: now_ms, then (limit, window_ms) per key, then a member id.
# All limits are checked first; the hit is recorded in every window only if all allow it.
_CHECK = """
local now = tonumber(ARGV[1])
local member = ARGV[2 * #KEYS + 2]
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    return i
  end
end
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
end
"""
_SCRIPT = _CHECK + "return 0\n"
# The same, and when allowed also RPUSH ARGV[last] onto the list named by ARGV[last - 1];
# returns 0 and the list's new length, or the refusing limit's index and 0.
_SCRIPT_PUSH = _CHECK.replace("return i", "return {i, 0}") + """
return {0, redis.call('RPUSH', ARGV[#ARGV - 1], ARGV[#ARGV])}
"""

_script = None
_script_push = None


def key_for(kind: str, value: str) -> str:
    """A Redis key that does not contain the value itself (addresses stay out of Redis)."""
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"nl:rl:{kind}:{digest}"


def client_networks(ip: str) -> tuple[str, str]:
    """(the client, its network) as limits count them.

    IPv4: the address and its /24. IPv6: the /64 and the /48. An IPv6 end site
    gets a /64 at least and usually a /56 or /48 (RFC 6177, RIPE-690), and the
    host half of a /64 is chosen freely (RFC 4941 privacy addresses), so one
    IPv6 client is a /64, never a full address. IPv4-mapped IPv6 counts as IPv4.
    """
    address = ipaddress.ip_address(ip)
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.version == 4:
        return str(address), str(ipaddress.ip_network(f"{address}/24", strict=False))
    return (str(ipaddress.ip_network(f"{address}/64", strict=False)),
            str(ipaddress.ip_network(f"{address}/48", strict=False)))


def full(key: str, limit: int, window: int) -> bool:
    """Whether ``key`` holds ``limit`` hits in the last ``window`` seconds (records nothing)."""
    since = int(time.time() * 1000) - window * 1000
    return get_redis().zcount(key, since, "+inf") >= limit


def hit(limits: list[tuple[str, int, int]]) -> int:
    """Record one hit against every ``(key, limit, window_seconds)`` if all allow it.

    Returns 0 when allowed (and recorded), else the 1-based index of the first
    limit that refused (nothing is recorded then).
    """
    global _script
    client = get_redis()
    if _script is None or _script.registered_client is not client:
        _script = client.register_script(_SCRIPT)
    args: list = [int(time.time() * 1000)]
    for _, limit, window in limits:
        args += [limit, window * 1000]
    args.append(uuid.uuid4().hex)
    return int(_script(keys=[key for key, _, _ in limits], args=args))


def hit_and_push(limits: list[tuple[str, int, int]], queue: str,
                 item: str) -> tuple[int, int]:
    """``hit``, and when allowed also append ``item`` to the Redis list ``queue``.

    One round trip, atomic: only an allowed request is queued. Returns
    ``(0, queue length)`` when allowed, else ``(refusing limit's index, 0)``.
    """
    global _script_push
    client = get_redis()
    if _script_push is None or _script_push.registered_client is not client:
        _script_push = client.register_script(_SCRIPT_PUSH)
    args: list = [int(time.time() * 1000)]
    for _, limit, window in limits:
        args += [limit, window * 1000]
    args += [uuid.uuid4().hex, queue, item]
    refused, length = _script_push(keys=[key for key, _, _ in limits], args=args)
    return int(refused), int(length)


def hit_many(requests: list[list[tuple[str, int, int]]]) -> list[int]:
    """``hit`` for many independent requests in one round trip (a pipeline)."""
    global _script
    client = get_redis()
    if _script is None or _script.registered_client is not client:
        _script = client.register_script(_SCRIPT)
    pipe = client.pipeline(transaction=False)
    now = int(time.time() * 1000)
    for limits in requests:
        args: list = [now]
        for _, limit, window in limits:
            args += [limit, window * 1000]
        args.append(uuid.uuid4().hex)
        _script(keys=[key for key, _, _ in limits], args=args, client=pipe)
    return [int(result) for result in pipe.execute()]
