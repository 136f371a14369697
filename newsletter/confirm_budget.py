"""How many confirmation mails an address gets, in a way nobody can use up for it.

An address holds at most ``CONFIRMATION_MAILS_PER_ADDRESS`` open mails: sent,
not yet clicked, less than 24 hours old. A request beyond that is not dropped
(which would let anyone who types a victim's address three times keep the
victim's own signup from ever getting its mail): it waits, one entry per
subscription, and is sent as soon as a slot frees, when one of the open
mails is clicked or its 24 hours end (``confirmations_release_due``, every
minute). So the address never gets more than that many mails a day, whoever
asks, and every request is answered within a day at the latest. All of it is
in Redis, in atomic scripts (several web and worker processes at once).
"""

from __future__ import annotations

import logging
import time
import uuid

from redis.exceptions import RedisError

from config.redis import get_redis
from newsletter import conf, ratelimit

logger = logging.getLogger(__name__)

SLOT_SECONDS = 86400
WAITING = "nl:cb:waiting"  # sorted set: subscription id -> when a slot may be free (ms)

# KEYS: slots, waiting for this address, WAITING.
# ARGV: now_ms, slot_ms, limit, subscription id, slot member.
# Returns 0 when a slot was taken (send now), else the time it waits for (ms).
_TAKE = """
local now, slot_ms, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now + slot_ms, ARGV[5])
  redis.call('PEXPIRE', KEYS[1], slot_ms)
  redis.call('ZREM', KEYS[3], ARGV[4])
  redis.call('SREM', KEYS[2], ARGV[4])
  return 0
end
local due = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
redis.call('ZADD', KEYS[3], due, ARGV[4])
redis.call('SADD', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[2], slot_ms)
return due
"""

# KEYS: slots, waiting for this address, WAITING. ARGV: now_ms, subscription id.
# The subscription's open mails free their slots; the address' waiting requests are due now.
_RELEASE = """
local prefix = ARGV[2] .. ':'
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(member, 1, #prefix) == prefix then
    redis.call('ZREM', KEYS[1], member)
  end
end
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
for _, waiting in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  redis.call('ZADD', KEYS[3], ARGV[1], waiting)
end
return 0
"""

_scripts: dict = {}


def _script(name: str, source: str):
    client = get_redis()
    script = _scripts.get(name)
    if script is None or script.registered_client is not client:
        script = _scripts[name] = client.register_script(source)
    return script


def _run(name: str, source: str, keys: list[str], args: list) -> int:
    return int(_script(name, source)(keys=keys, args=args))


def _keys(address: str) -> list[str]:
    return [ratelimit.key_for("cb-slots", address), ratelimit.key_for("cb-wait", address),
            WAITING]


def confirmation_slot_take(address: str, subscription_id: int) -> bool:
    """True: send the mail now (a slot is taken). False: it waits for a free slot."""
    now = int(time.time() * 1000)
    due = _run("take", _TAKE, _keys(address),
               [now, SLOT_SECONDS * 1000, conf.CONFIRMATION_MAILS_PER_ADDRESS,
                str(subscription_id), f"{subscription_id}:{uuid.uuid4().hex}"])
    return due == 0


def confirmation_slots_take(items: list[tuple[str, int]]) -> list[bool]:
    """``confirmation_slot_take`` for many (address, subscription id) in one round trip."""
    if not items:
        return []
    script = _script("take", _TAKE)
    pipe = script.registered_client.pipeline(transaction=False)
    now = int(time.time() * 1000)
    for address, subscription_id in items:
        script(keys=_keys(address), client=pipe,
               args=[now, SLOT_SECONDS * 1000, conf.CONFIRMATION_MAILS_PER_ADDRESS,
                     str(subscription_id), f"{subscription_id}:{uuid.uuid4().hex}"])
    return [int(due) == 0 for due in pipe.execute()]


def confirmation_clicked(address: str, subscription_id: int) -> None:
    """A link was clicked: its slots free, and what waited for this address may go.

    Called after the confirmation is committed: with Redis away the slots
    simply free after their 24 hours, so the visitor still sees success.
    """
    try:
        _run("release", _RELEASE, _keys(address),
             [int(time.time() * 1000), str(subscription_id)])
    except RedisError:
        logger.warning("newsletter.confirm_budget.release_failed",
                       extra={"subscription_id": subscription_id})


def confirmations_waiting_due(limit: int = 500) -> list[int]:
    """Ids of subscriptions whose waiting confirmation mail may find a slot now."""
    now = int(time.time() * 1000)
    return [int(member) for member in
            get_redis().zrangebyscore(WAITING, "-inf", now, start=0, num=limit)]


def confirmation_forget(subscription_id: int) -> None:
    """Nothing to send any more (confirmed, unsubscribed, erased or purged).

    Best effort: a waiting entry left behind is dropped by the release job,
    which finds no pending subscription for it.
    """
    try:
        get_redis().zrem(WAITING, str(subscription_id))
    except RedisError:
        logger.warning("newsletter.confirm_budget.forget_failed",
                       extra={"subscription_id": subscription_id})


def confirmations_release_due(*, limit: int = 500) -> int:
    """Send confirmation mails that waited for a free slot of their address; how many went."""
    from deliverability.suppression import is_suppressed
    from newsletter.models import Subscription
    from newsletter.services.signup import confirmation_mail_send

    sent = 0
    for subscription_id in confirmations_waiting_due(limit):
        subscription = (Subscription.objects.select_related("subscriber", "mailing_list")
                        .filter(id=subscription_id, status=Subscription.Status.PENDING).first())
        if subscription is None or is_suppressed(subscription.subscriber.email):
            confirmation_forget(subscription_id)  # confirmed, gone or suppressed since
        else:
            sent += confirmation_mail_send(subscription)
    return sent
