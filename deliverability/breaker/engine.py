"""The breaker's state machine, per provider x sending pool, shared in Redis.

States (readable, as Sentry's breaker names them):

- ``ok``: sending normally; after a recovery the rate climbs back step by step.
- ``throttled``: rate cut (or one connection) until the cool-down ends.
- ``paused``: nothing is sent until the cool-down ends.
- ``probing``: a few messages over one connection; clean probes reopen the key
  at a reduced rate, a blocked probe pauses it at the next ladder step.
- ``manual``: past the ladder: nothing is sent until an operator acknowledges.

Each key is one Redis hash (``deliverability:breaker:<pool>:<provider>``) read
by every worker; hits for trigger windows live in sorted sets. Writers take a
short Redis lock per key. Every transition also gets an audit row in the
database and is announced (``breaker_transitioned``) for alerts.

Time comes from an injectable clock, and every duration is multiplied by
``time_scale`` (1 in production; the block-storm benchmark compresses hours
into seconds).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from deliverability.breaker import failure_rate as rate_rules
from deliverability.breaker import manual
from deliverability.breaker.rules import BreakerClass, Match, Ruleset, classify, duration, load

logger = logging.getLogger(__name__)

OK, THROTTLED, PAUSED, PROBING, MANUAL = "ok", "throttled", "paused", "probing", "manual"
POOL_WIDE = "*"  # the provider key of a pause that covers every provider of a pool

STATE_KEY = "deliverability:breaker:{pool}:{provider}"
HITS_KEY = "deliverability:breaker-hits:{pool}:{provider}:{rule}"
BLOCKS_KEY = "deliverability:breaker-blocks:{pool}"
LOCK_KEY = "deliverability:breaker-lock:{pool}:{provider}"
# One signal per delivery: set when a delivery first counts against a key.
SEEN_KEY = "deliverability:breaker-seen:{delivery_id}"
SEEN_SECONDS = 7 * 86400
# Deliveries whose blocks a pool saw within the pool-wide window.
BLOCK_DELIVERIES_KEY = "deliverability:breaker-block-deliveries:{pool}"
# Every state change is published here; each process's gate drops its cache.
CHANGES_CHANNEL = "deliverability:breaker-changes"


@dataclass(frozen=True)
class Decision:
    """The gate's answer: send now (maybe slower), or wait."""

    allowed: bool
    state: str = OK
    wait_until: float | None = None  # unix time; None while waiting for an operator
    rate_factor: float = 1.0  # multiply the provider's nominal rate by this
    max_connections: int | None = None
    reason: str = ""
    cacheable: bool = True  # probes are counted one by one: never cached

    @property
    def rate(self) -> float | None:
        return None if self.rate_factor >= 1 else self.rate_factor


ALLOW = Decision(allowed=True)


def _decode(raw: dict) -> dict[str, str]:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()}


def _f(fields: dict, name: str, default: float = 0.0) -> float:
    value = fields.get(name)
    return float(value) if value not in (None, "") else default


class Breaker:
    def __init__(self, *, redis=None, ruleset: Ruleset | None = None,
                 clock: Callable[[], float] = time.time, time_scale: float | None = None):
        if redis is None:
            from config.redis import get_redis

            redis = get_redis()
        if time_scale is None:
            from deliverability.conf import BREAKER_TIME_SCALE

            time_scale = BREAKER_TIME_SCALE
        self.redis = redis
        self._rules = ruleset
        self.clock = clock
        self.scale = time_scale

    @property
    def rules(self) -> Ruleset:
        # The shipped rules plus the admin's overrides, re-read at most once a minute.
        return self._rules or load()

    # --- helpers --------------------------------------------------------------
    def _seconds(self, text_or_seconds) -> float:
        seconds = duration(text_or_seconds) if isinstance(text_or_seconds, str) else text_or_seconds
        return seconds * self.scale

    def _key(self, provider: str, pool: str) -> str:
        return STATE_KEY.format(pool=pool, provider=provider)

    def _lock(self, provider: str, pool: str):
        return self.redis.lock(LOCK_KEY.format(pool=pool, provider=provider), timeout=10,
                               blocking_timeout=10)

    def _load(self, provider: str, pool: str) -> dict[str, str]:
        return _decode(self.redis.hgetall(self._key(provider, pool)))

    def _save(self, provider: str, pool: str, fields: dict) -> None:
        key = self._key(provider, pool)
        pipe = self.redis.pipeline()
        pipe.delete(key)
        pipe.hset(key, mapping={k: str(v) for k, v in fields.items() if v is not None})
        pipe.publish(CHANGES_CHANNEL, f"{pool}:{provider}")
        pipe.execute()

    def _decayed_level(self, fields: dict, klass: str, now: float) -> int:
        level = int(_f(fields, "level"))
        last = _f(fields, "last_trip")
        if level and last:
            period = self.rules.decay_block_clean if klass == "block" else self.rules.decay_clean
            level = max(0, level - int((now - last) // (period * self.scale)))
        return level

    def _transition(self, provider: str, pool: str, before: dict, after: dict, *,
                    reply: str = "", actor: str = "") -> None:
        from deliverability.models import BreakerTransition
        from deliverability.signals import breaker_transitioned

        until = _f(after, "until")
        transition = BreakerTransition.objects.create(
            provider=provider, pool=pool, from_state=before.get("state", OK),
            to_state=after.get("state", OK), level=int(_f(after, "level")),
            klass=after.get("class", ""), rule_id=after.get("rule", ""),
            reason=after.get("reason", ""), reply=reply[:2000] or after.get("reply", ""),
            until=datetime.fromtimestamp(until, UTC) if until else None, actor=actor,
        )
        logger.warning("breaker %s/%s: %s -> %s (%s)", provider, pool, transition.from_state,
                       transition.to_state, transition.reason)
        breaker_transitioned.send(sender=None, transition=transition,
                                  provider_info=self.rules.providers.get(provider))

    # --- answers ---------------------------------------------------------------
    def record(self, *, provider: str, pool: str, code: int, text: str, reason: str = "",
               internal: bool = False, delivery_id: int | None = None,
               late: bool = False, count_rate: bool = True) -> str | None:
        """Count one SMTP answer; returns the new state when the key changed state.

        ``internal`` answers (caused by our own holds) never count. With a
        ``delivery_id`` each delivery counts once (its first signal), and trigger
        windows count distinct deliveries. ``late`` signals (DSNs, reports: anyone
        holding one VERP address can send them) never judge a probe and need
        ``late_min_deliveries`` distinct deliveries to trip a key. ``count_rate``:
        the answer was an SMTP-time attempt for the catch-all failure rate (bounce
        reports were counted as accepted attempts when they went out).
        """
        if internal:
            return None
        match = classify(provider, code, text, reason=reason, ruleset=self.rules)
        if match.klass == "accepted":
            return None if late else self.record_accepted(provider=provider, pool=pool)
        now = self.clock()
        with self._lock(provider, pool):
            fields = self._advance(provider, pool, self._load(provider, pool), now)
            state = fields.get("state", OK)
            if state == PROBING:
                if late:
                    return None  # probes are judged by their own SMTP answers
                fields["probe_answered"] = int(_f(fields, "probe_answered")) + 1
                if match.klass in self.rules.fail_on:
                    return self._trip(provider, pool, fields, match, now)
                return self._probe_progress(provider, pool, fields, match, now)
            if state in (PAUSED, MANUAL):
                return None  # already stopped; more of the same does not extend it
            rate = self.failure_rate() if count_rate else None
            rate_crossed = rate is not None and rate.answer(provider, pool, match.klass, now)
            tripped = self._class_trigger(provider, pool, fields, match, now,
                                          delivery_id=delivery_id, late=late)
            if tripped is None and rate_crossed:
                tripped = self._trip_failure_rate(provider, pool, fields, match, now)
            return tripped

    def _class_trigger(self, provider: str, pool: str, fields: dict, match: Match,
                       now: float, *, delivery_id: int | None = None,
                       late: bool = False) -> str | None:
        """Count the answer against its class or rule trigger; trip when it is reached."""
        klass = self.rules.classes.get(match.klass)
        if klass is None or klass.reaction == "none":
            return None
        trigger = (self.rules.trigger_for(match.rule) if match.rule else klass.trigger)
        if trigger is None:
            return None
        if delivery_id is not None and not self._first_signal(delivery_id):
            return None
        rule_key = match.rule.id if match.rule else f"class:{match.klass}"
        hits = HITS_KEY.format(pool=pool, provider=provider, rule=rule_key)
        window = trigger.window * self.scale
        member = (f"d:{delivery_id}" if delivery_id is not None
                  else f"{now}:{uuid.uuid4().hex[:8]}")
        pipe = self.redis.pipeline()
        pipe.zadd(hits, {member: now})
        pipe.zremrangebyscore(hits, "-inf", now - window)
        pipe.zcard(hits)
        pipe.expire(hits, max(1, math.ceil(window)))
        if match.klass == "block":
            self._note_block_delivery(pipe, pool, member, now)
        count = pipe.execute()[2]
        needed = max(trigger.count, self._late_min_deliveries() if late else 1)
        if count < needed:
            return None
        self.redis.delete(hits)
        return self._trip(provider, pool, fields, match, now)

    # --- the catch-all failure rate (deliverability.breaker.failure_rate) -----------
    def failure_rate(self) -> rate_rules.FailureRate | None:
        rule = rate_rules.rule_from(self.rules.raw)
        if rule is None:
            return None
        return rate_rules.FailureRate(self.redis, rule, clock=self.clock, scale=self.scale)

    def count_accepted(self, counts: dict[tuple[str, str], int]) -> None:
        """Accepted messages per (provider, pool), for the failure rate's window."""
        rate = self.failure_rate()
        if rate is not None:
            rate.accepted(counts)

    def _trip_failure_rate(self, provider, pool, fields, match: Match, now) -> str:
        rate = self.failure_rate()
        attempts, failures = rate.window(provider, pool, now)
        state = self._trip(provider, pool, fields,
                           Match("failure_rate", None, match.normalised), now,
                           klass=rate.rule.klass, why=rate.reason(attempts, failures))
        return state

    # --- counting once -----------------------------------------------------------
    def _first_signal(self, delivery_id: int) -> bool:
        """True the first time a delivery signals (kept a week: longer than any mailing)."""
        key = SEEN_KEY.format(delivery_id=delivery_id)
        return bool(self.redis.set(key, "1", nx=True, ex=SEEN_SECONDS))

    def _counting(self) -> dict:
        return self.rules.raw.get("counting", {})

    def _late_min_deliveries(self) -> int:
        return int(self._counting().get("late_min_deliveries", 1))

    def _note_block_delivery(self, pipe, pool: str, member: str, now: float) -> None:
        key = BLOCK_DELIVERIES_KEY.format(pool=pool)
        window = self.rules.pool_wide_window * self.scale
        pipe.zadd(key, {member: now})
        pipe.zremrangebyscore(key, "-inf", now - window)
        pipe.expire(key, max(1, math.ceil(window)))

    def probing_among(self, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """The (provider, pool) keys among ``keys`` that are probing, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for provider, pool in keys:
            pipe.hget(self._key(provider, pool), "state")
        states = pipe.execute()
        return {key for key, state in zip(keys, states, strict=True)
                if state in (PROBING, PROBING.encode())}

    def record_accepted(self, *, provider: str, pool: str, count: int = 1) -> str | None:
        """Accepted messages: they only matter to a probing key."""
        fields = self._load(provider, pool)
        if fields.get("state") != PROBING:
            return None
        now = self.clock()
        with self._lock(provider, pool):
            fields = self._advance(provider, pool, self._load(provider, pool), now)
            if fields.get("state") != PROBING:
                return None
            fields["probe_answered"] = int(_f(fields, "probe_answered")) + count
            fields["probe_ok"] = int(_f(fields, "probe_ok")) + count
            return self._probe_progress(provider, pool, fields, None, now)

    def _probe_progress(self, provider, pool, fields, match: Match | None, now) -> str | None:
        if int(_f(fields, "probe_ok")) >= self.rules.success_min:
            before = dict(fields)
            after = {
                "state": OK, "level": fields.get("level", 0),
                "last_trip": fields.get("last_trip", ""), "class": fields.get("class", ""),
                "rule": fields.get("rule", ""), "recover_since": now,
                "rate_factor": self.rules.recovery_start_pct / 100,
                "reason": f"probes accepted: sending resumes at "
                          f"{self.rules.recovery_start_pct}% of the normal rate",
                "since": now,
            }
            self._save(provider, pool, after)
            self._transition(provider, pool, before, after)
            return OK
        if int(_f(fields, "probe_answered")) >= self.rules.probe_messages:
            # Every probe answered, too few accepted (e.g. deferrals): try again later.
            failed = match or Match(fields.get("class") or "block", None, "")
            return self._trip(provider, pool, fields, failed, now)
        self._save(provider, pool, fields)
        return None

    def _trip(self, provider: str, pool: str, fields: dict, match: Match, now: float, *,
              klass: BreakerClass | None = None, why: str = "") -> str:
        klass = klass or self.rules.classes.get(match.klass) or self.rules.classes["block"]
        ladder = (self.rules.ladder_for(match.rule) if match.rule else klass.ladder) or ("1h",)
        level = self._decayed_level(fields, match.klass, now)
        if level >= len(ladder):
            step = "manual" if klass.after_ladder == "manual" else ladder[-1]
        else:
            step = ladder[level]
        needs = manual.needs_operator(self.rules.raw, match.rule)
        if needs is not None:
            step = "manual"  # probing cannot help until the operator acted (e.g. delisting)
        rate = self.failure_rate()
        if rate is not None:
            rate.reset(provider, pool)
        if step == "manual":
            state, until = MANUAL, None
        elif klass.reaction in ("throttle", "limit_connections"):
            state, until = THROTTLED, now + self._seconds(step)
        else:
            state, until = PAUSED, now + self._seconds(step)
        factor = _f(fields, "rate_factor", 1.0) or 1.0
        connections = fields.get("max_connections")
        if state == THROTTLED and klass.reaction == "throttle":
            factor = max(0.05, factor * 0.5)
        if state == THROTTLED:
            connections = 1  # rate limits and connection limits alike: one connection
        rule_id = match.rule.id if match.rule else ""
        verb = {THROTTLED: "throttled", PAUSED: "paused", MANUAL: "stopped until acknowledged"}
        step_text = "" if until is None else f" for {step}"
        after = {
            "state": state, "until": until, "level": level + 1, "last_trip": now,
            "class": match.klass, "rule": rule_id, "reply": match.normalised[:1000],
            "rate_factor": factor if state == THROTTLED else "",
            "max_connections": connections if state == THROTTLED else "",
            "since": now,
            "reason": f"{verb[state]}{step_text} after {match.klass} answers"
                      f"{f' ({rule_id})' if rule_id else ''}{f': {why}' if why else ''}",
        }
        if needs is not None:
            after.update(manual.fields(needs, self.rules.providers.get(provider)))
            after["reason"] += f": waits for the operator ({needs['tag'].replace('_', ' ')})"
        self._save(provider, pool, after)
        self._transition(provider, pool, fields, after, reply=match.normalised)
        if match.klass == "block" and state in (PAUSED, MANUAL) and provider != POOL_WIDE:
            self._pool_wide_check(provider, pool, now, match)
        return state

    def _pool_wide_check(self, provider: str, pool: str, now: float, match: Match) -> None:
        """Blocks from several providers within the window mean the sender, not one provider."""
        key = BLOCKS_KEY.format(pool=pool)
        window = self.rules.pool_wide_window * self.scale
        pipe = self.redis.pipeline()
        pipe.zadd(key, {provider: now})
        pipe.zremrangebyscore(key, "-inf", now - window)
        pipe.zrange(key, 0, -1)
        pipe.expire(key, max(1, math.ceil(window)))
        pipe.zcard(BLOCK_DELIVERIES_KEY.format(pool=pool))
        answers = pipe.execute()
        blocked = [p.decode() if isinstance(p, bytes) else p for p in answers[2]]
        if len(blocked) < self.rules.pool_wide_providers:
            return
        # Several providers, and blocks of enough distinct deliveries (rules data).
        if answers[4] < int(self._counting().get("pool_wide_min_deliveries", 1)):
            return
        with self._lock(POOL_WIDE, pool):
            fields = self._load(POOL_WIDE, pool)
            if fields.get("state") in (PAUSED, MANUAL):
                return
            first_step = self.rules.classes["block"].ladder[0]
            after = {
                "state": PAUSED, "until": now + self._seconds(first_step),
                "level": int(_f(fields, "level")) + 1, "last_trip": now, "class": "block",
                "rule": "pool_wide", "reply": match.normalised[:1000], "since": now,
                "reason": f"paused for every provider for {first_step}: blocked by "
                          f"{', '.join(sorted(blocked))} within "
                          f"{self.rules.raw['pool_wide']['window']}; check blocklists",
            }
            self._save(POOL_WIDE, pool, after)
            self._transition(POOL_WIDE, pool, fields, after, reply=match.normalised)
        from deliverability.signals import pool_blocked

        pool_blocked.send(sender=None, pool=pool, providers=blocked)

    # --- time -------------------------------------------------------------------
    def _advance(self, provider: str, pool: str, fields: dict, now: float) -> dict:
        """Apply what time alone changes: a cool-down that ended starts probing."""
        state = fields.get("state", OK)
        if state in (PAUSED, THROTTLED) and _f(fields, "until") and _f(fields, "until") <= now:
            after = {**fields, "state": PROBING, "until": "", "probe_sent": 0, "probe_ok": 0,
                     "probe_answered": 0, "last_probe": 0, "since": now,
                     "max_connections": 1, "rate_factor": "",
                     "reason": f"cool-down over: probing with {self.rules.probe_messages} "
                               "messages over one connection"}
            self._save(provider, pool, after)
            self._transition(provider, pool, fields, after)
            return after
        return fields

    def _ramp(self, fields: dict, now: float) -> float:
        since = _f(fields, "recover_since")
        if not since:
            return _f(fields, "rate_factor", 1.0) or 1.0
        steps = int((now - since) // (self.rules.recovery_step_every * self.scale))
        pct = self.rules.recovery_start_pct + steps * self.rules.recovery_step_pct
        return min(1.0, pct / 100)

    # --- the gate's question ------------------------------------------------------
    def decide(self, provider: str, pool: str) -> Decision:
        """May ``pool`` send to ``provider`` now? Counts a probe when it says yes to one."""
        now = self.clock()
        wide = self._load(POOL_WIDE, pool)
        if wide:
            decision = self._decide_one(POOL_WIDE, pool, wide, now)
            if not decision.allowed:
                return decision
        fields = self._load(provider, pool)
        if not fields:
            return ALLOW
        return self._decide_one(provider, pool, fields, now)

    def _decide_one(self, provider: str, pool: str, fields: dict, now: float) -> Decision:
        state = fields.get("state", OK)
        if state in (PAUSED, THROTTLED) and _f(fields, "until") <= now:
            with self._lock(provider, pool):
                fields = self._advance(provider, pool, self._load(provider, pool), now)
                state = fields.get("state", OK)
        reason = fields.get("reason", "")
        if state == OK:
            factor = self._ramp(fields, now)
            return Decision(allowed=True, state=OK, rate_factor=factor,
                            reason=reason if factor < 1 else "")
        if state == THROTTLED:
            connections = fields.get("max_connections")
            return Decision(allowed=True, state=THROTTLED,
                            rate_factor=_f(fields, "rate_factor", 1.0) or 1.0,
                            max_connections=int(connections) if connections else None,
                            reason=reason)
        if state == PAUSED:
            return Decision(allowed=False, state=PAUSED, wait_until=_f(fields, "until"),
                            reason=reason)
        if state == MANUAL:
            return Decision(allowed=False, state=MANUAL, reason=reason)
        return self._decide_probe(provider, pool, now)

    def _decide_probe(self, provider: str, pool: str, now: float) -> Decision:
        interval = self.rules.probe_interval * self.scale
        with self._lock(provider, pool):
            fields = self._load(provider, pool)
            if fields.get("state") != PROBING:
                return self._decide_one(provider, pool, fields, now) if fields else ALLOW
            sent, answered = int(_f(fields, "probe_sent")), int(_f(fields, "probe_answered"))
            last = _f(fields, "last_probe")
            if sent >= self.rules.probe_messages and answered < sent and now - last > 5 * interval:
                sent = answered  # probes that never got an answer (worker died): send again
            if sent >= self.rules.probe_messages or (last and now < last + interval):
                return Decision(allowed=False, state=PROBING, wait_until=max(now, last) + interval,
                                reason=fields.get("reason", ""), cacheable=False)
            self.redis.hset(self._key(provider, pool),
                            mapping={"probe_sent": sent + 1, "last_probe": now})
        return Decision(allowed=True, state=PROBING, max_connections=1, cacheable=False,
                        rate_factor=0.0, reason=f"probe {sent + 1} of {self.rules.probe_messages}")

    # --- operators -------------------------------------------------------------------
    def status(self, provider: str, pool: str) -> dict:
        fields = self._load(provider, pool)
        return {"provider": provider, "pool": pool, "state": fields.get("state", OK), **fields}

    def keys(self) -> list[tuple[str, str]]:
        """Every (provider, pool) with a state in Redis."""
        found = []
        for key in self.redis.scan_iter(match=STATE_KEY.format(pool="*", provider="*")):
            key = key.decode() if isinstance(key, bytes) else key
            _, _, rest = key.partition("deliverability:breaker:")
            pool, _, provider = rest.partition(":")
            found.append((provider, pool))
        return sorted(found)

    def _operator_set(self, provider, pool, actor, **changes) -> None:
        now = self.clock()
        with self._lock(provider, pool):
            before = self._load(provider, pool)
            after = {**before, **changes, "since": now}
            self._save(provider, pool, after)
            self._transition(provider, pool, before, after, actor=actor)

    def pause(self, provider: str, pool: str, *, seconds: float, actor: str,
              note: str = "") -> None:
        self._operator_set(provider, pool, actor, state=PAUSED, until=self.clock() + seconds,
                           reason=f"paused by {actor}" + (f": {note}" if note else ""))

    def extend(self, provider: str, pool: str, *, seconds: float, actor: str) -> None:
        fields = self._load(provider, pool)
        until = max(_f(fields, "until"), self.clock()) + seconds
        self._operator_set(provider, pool, actor, state=PAUSED, until=until,
                           reason=f"pause extended by {actor}")

    def resume(self, provider: str, pool: str, *, actor: str) -> None:
        """Back to sending, ramping up from the recovery start rate (fast down, slow up)."""
        self._operator_set(provider, pool, actor, state=OK, until="", recover_since=self.clock(),
                           rate_factor=self.rules.recovery_start_pct / 100,
                           reason=f"resumed by {actor}")

    def acknowledge(self, provider: str, pool: str, *, actor: str) -> None:
        """An operator dealt with a ``manual`` key (delisting, DNS fix): probe it."""
        self._operator_set(provider, pool, actor, state=PROBING, until="", probe_sent=0,
                           probe_ok=0, probe_answered=0, last_probe=0, max_connections=1,
                           reason=f"acknowledged by {actor}: probing")
