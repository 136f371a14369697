"""The send loop: a worker claims its rows, renders, signs and sends them over reused
SMTP sessions, asks the breaker, throttles and warm-up caps before each message, and
journals each one in Redis before it goes (see ``sending.services``)."""

from __future__ import annotations

import logging
import smtplib
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import groupby

from django.utils import timezone
from redis.exceptions import RedisError

from config.redis import get_redis
from deliverability import gate, verp
from deliverability.answers import (
    SmtpAnswer,
    enhanced_status,
    record_smtp_accepted,
    record_smtp_answers,
)
from deliverability.suppression import suppressed_among
from sending import conf as sending_conf
from sending import dkim, warmup
from sending.compose import Composer
from sending.ledger import _normalise
from sending.models import Delivery, Mailing, RelayPool
from sending.outcomes import _apply_outcomes
from sending.recipients import recipient_contexts, subscriptions_stopped
from sending.relays import RelayConfig, relays_for_pool
from sending.slots import Slot, give_back_quietly, relay_key, relay_slots
from sending.smtp import MaybeSent as _MaybeSent
from sending.smtp import NotSent as _NotSent
from sending.smtp import RelayUnavailable, close_quietly, open_session
from sending.smtp import smtp_transaction as _transaction
from sending.throttle import Bucket, Journal

logger = logging.getLogger(__name__)
S = Delivery.State

RETRY_SCHEDULE = [timedelta(minutes=m) for m in (5, 10, 20, 40, 80, 160, 240)]
FLUSH_EVERY = 100
REQUEUE_SOON_S = 30.0
PREPARED_TTL_S = 60.0
LEASE_ENDING = "claim lease ending"
ALL_BUSY = "every relay of the pool at its connection limit"
STOP_RECHECK_S = 1.0  # a batch still sending after this asks the stop check again


# --------------------------------------------------------------------------- the engine
class _AllRelaysDown(Exception):
    pass


class _AllRelaysBusy(Exception):
    """Every relay that is up has all its connections (max_connections) in use."""


class _StopBatch(Exception):
    pass


@dataclass
class _Prepared:
    mailing_id: int
    pool: str
    composer: Composer
    keys: list
    relays: list[RelayConfig]
    expires_at: float
    verp_secret: str = ""
    made_at: float = field(default_factory=time.monotonic)


_prepared: dict[int, _Prepared] = {}
class _Sessions(threading.local):
    """SMTP sessions kept open per relay, per worker thread (``-P threads`` or prefork)."""

    def __init__(self):
        self.by_relay: dict[str, smtplib.SMTP] = {}
        _all_sessions.append(self.by_relay)


_all_sessions: list[dict[str, smtplib.SMTP]] = []
_local_sessions = _Sessions()
_relay_down: dict[str, float] = {}  # relay key -> unix time it may be tried again


def _session_map() -> dict[str, smtplib.SMTP]:
    return _local_sessions.by_relay


def _drop_session(key: str, *, broken: bool = False) -> None:
    """Close this thread's session to a relay and give its connection slot back.
    A broken session is not asked to QUIT: it may be mid-DATA, or gone."""
    session = _session_map().pop(key, None)
    if broken and session is not None:
        session.close()
    else:
        close_quietly(session)
    give_back_quietly(getattr(session, "pw_slot", None))


def feedback_id(mailing_id: int, pool: str, sender: str) -> str:
    """The Feedback-ID header value (Gmail's feedback loop: campaign:pool:kind:sender)."""
    return f"{mailing_id}:{pool}:newsletter:{sender}"


def _prepare(mailing_id: int) -> _Prepared:
    found = _prepared.get(mailing_id)
    if found and time.monotonic() - found.made_at < PREPARED_TTL_S:
        return found
    conf = sending_conf.get()
    mailing = Mailing.objects.select_related("pool").get(id=mailing_id)
    pool = mailing.pool.name if mailing.pool else RelayPool.Purpose.BULK.value
    composer = Composer(
        mailing_id=mailing.id, from_email=mailing.from_email, subject=mailing.subject_template,
        text=mailing.text_template, html=mailing.html_template, reply_to=mailing.reply_to,
        list_id=mailing.list_id,
        feedback_id=feedback_id(mailing.id, pool, conf.feedback_id_sender),
        postmark_metadata=conf.postmark_metadata,
    )
    started = mailing.started_at or timezone.now()
    prepared = _Prepared(
        mailing_id=mailing.id, pool=pool, composer=composer,
        keys=dkim.keys_for(composer.from_domain, conf.dkim_key_dir,
                           (conf.dkim_selector, conf.dkim_ed25519_selector)),
        relays=relays_for_pool(mailing.pool),
        expires_at=(started + timedelta(hours=mailing.max_age_hours)).timestamp(),
        verp_secret=verp.current_secret(),
    )
    _prepared[mailing_id] = prepared
    return prepared


def deliveries_stopped(rows: Iterable[tuple]) -> dict[int, tuple[str, str]]:
    """The stop that always stops: {delivery id: (final state, reason)} for the engine's
    rows ``(id, mailing, subscription id, address, ...)`` that must not be sent now.

    Asked just before sending, two queries a batch: the address is suppressed
    (``suppressed``), or the person no longer wants the list's mail: subscription not
    confirmed, subscriber erased, list deleted (``skipped``; newsletter answers,
    sending.recipients). An unsubscribe after fan-out, during a pause or a
    deferral, stops mail already queued.
    """
    rows = list(rows)
    suppressed = suppressed_among(r[3] for r in rows)
    unwanted = subscriptions_stopped({r[2] for r in rows if r[2] is not None})
    stops = {}
    for row in rows:
        if row[3] in suppressed:
            stops[row[0]] = (S.SUPPRESSED, "address suppressed")
        elif row[2] in unwanted:
            stops[row[0]] = (S.SKIPPED, f"skipped: {unwanted[row[2]]}")
    return stops


def address_stop_reason(*, address: str, subscription_id: int | None = None) -> str | None:
    """Why one message to this address must not go out now, or None: the same check
    as the bulk engine's, for transactional mail that must respect it."""
    stop = deliveries_stopped([(0, None, subscription_id, _normalise(address) or address)])
    return stop[0][1] if stop else None


def breaker_pool(pool: str, relay: RelayConfig) -> str:
    """The breaker keys by pool, and by egress IP where a relay has its own address:
    providers judge IPs, so one listed IP must not pause its healthy neighbours."""
    return f"{pool}@{relay.source_address}" if relay.source_address else pool


def _provider_rate(nominal: float, factor: float | None) -> float:
    """The breaker slows a provider with a factor below 1 (0 while probing: the gate counts)."""
    if factor is None or factor <= 0 or factor >= 1:
        return nominal
    return (nominal or 100.0) * factor


class _Run:
    """One claimed batch, sent by one worker process."""

    def __init__(self, token: str, journal: Journal, deadline: float):
        self.conf = sending_conf.get()
        self.token = token
        self.journal = journal
        self.deadline = deadline
        self.pending: list[dict] = []
        self.previous: dict | None = None
        self.throttled: dict[str, float] = {}
        self.requeue: list[tuple[int, float]] = []
        self.stats: dict[str, int] = defaultdict(int)
        self.accepted: dict[tuple[str, str], int] = defaultdict(int)
        self.busy_until = 0.0
        self.warm_holds: dict[tuple, warmup.Hold] = {}

    # -- records
    def outcome(self, delivery_id: int, state: str, *, code: int | None = None, text: str = "",
                relay: str = "", next_at: float | None = None, message_id: str = "",
                counted: bool = True, kind: str = "", journal: bool = True,
                requeue: bool = False) -> None:
        record = {"id": delivery_id, "st": state, "code": code, "text": text[:2000],
                  "relay": relay, "at": time.time(), "nx": next_at, "mid": message_id,
                  "att": 1 if counted else 0, "kind": kind, "enh": enhanced_status(text)}
        if state in (S.QUEUED, S.DEFERRED) and not counted:
            record["by"] = ""  # released: no longer claimed
            if requeue and next_at is not None and next_at - time.time() < REQUEUE_SOON_S:
                record["dsp"] = time.time()  # re-enqueued below; not the sweeper's
                self.requeue.append((delivery_id, next_at))
        self.stats[state] += 1
        self.pending.append(record)
        if journal:
            self.previous = record
        if len(self.pending) >= FLUSH_EVERY:
            self.flush()

    def release(self, delivery_id: int, state: str, next_at: float, reason: str,
                requeue: bool = True) -> None:
        self.outcome(delivery_id, state, text=reason, next_at=next_at, counted=False,
                     journal=False, requeue=requeue)

    def report_accepted(self) -> None:
        """Hand the accepted counts to the breaker (probes, failure-rate window)."""
        if not self.accepted:
            return
        counts, self.accepted = dict(self.accepted), defaultdict(int)
        try:
            record_smtp_accepted(counts)
        except RedisError:
            logger.warning("send.accepted_not_counted")

    def flush(self) -> None:
        self.report_accepted()
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        _apply_outcomes(self.token, pending)
        if self.previous is not None and self.previous in pending:
            self.previous = None  # in the database now: no need to journal it
        try:
            self.journal.clear_done()
        except RedisError:
            pass  # stale journal entries are harmless: rows no longer claimed are skipped

    # -- the loop
    def run(self, rows: list[tuple]) -> None:
        leftover: list[int] = []
        stop_reason = ""
        for mailing_id, group in groupby(rows, key=lambda r: r[1]):
            group = list(group)
            if stop_reason:
                leftover += [r[0] for r in group]
                continue
            prepared = _prepare(mailing_id)
            stops = deliveries_stopped(group)
            checked = time.monotonic()
            try:
                contexts = recipient_contexts([r[2] for r in group if r[2] is not None])
            except RuntimeError:
                contexts = {}
            for index, row in enumerate(group):
                if time.monotonic() - checked > STOP_RECHECK_S:
                    # A slow batch (throttled, one connection) asks again for what is left.
                    stops, checked = deliveries_stopped(group[index:]), time.monotonic()
                try:
                    self.send_one(prepared, row, stops, contexts)
                except _StopBatch as stop:
                    stop_reason = str(stop)
                    leftover += [r[0] for r in group[index:]]
                    break
        now = time.time()
        for delivery_id in leftover:
            # Lease ending: straight back to a worker. Redis down: the sweeper re-dispatches.
            self.release(delivery_id, S.QUEUED, now, stop_reason,
                         requeue=stop_reason == LEASE_ENDING)
        self.flush()

    def send_one(self, prepared: _Prepared, row: tuple, stops: dict[int, tuple[str, str]],
                 contexts: dict) -> None:
        delivery_id, _, subscription_id, address, provider, _attempts = row
        stop = stops.get(delivery_id)
        if stop is not None:
            self.outcome(delivery_id, stop[0], text=stop[1], counted=False, journal=False)
            return
        now = time.time()
        if now >= prepared.expires_at:
            self.outcome(delivery_id, S.EXPIRED, text="mailing older than its max age",
                         counted=False, journal=False)
            return
        if time.monotonic() > self.deadline:
            raise _StopBatch(LEASE_ENDING)
        if self.busy_until > now:
            self.release(delivery_id, S.QUEUED, self.busy_until, ALL_BUSY)
            return
        relay = self.pick_relay(prepared)
        if relay is None:
            self.release(delivery_id, S.DEFERRED, now + self.conf.relay_down_s,
                         "all relays of the pool are down")
            return
        breaker_key = breaker_pool(prepared.pool, relay)
        try:
            decision = gate.may_send(provider, breaker_key)
        except RedisError as error:
            raise _StopBatch(f"redis unavailable: {error}") from error
        if not decision.allowed:
            self.release(delivery_id, S.DEFERRED, decision.wait_until or now + 60,
                         f"provider paused: {decision.reason}")
            return
        if self.throttled.get(provider, 0) > now:
            self.release(delivery_id, S.QUEUED, self.throttled[provider], "throttled")
            return
        plans = warmup.plans_for(relay.source_address, prepared.composer.from_domain)
        if plans and not self.warmup_take(prepared, plans, provider, delivery_id):
            return
        buckets = [
            Bucket.per_second(f"pool:{prepared.pool}", self.conf.pool_rate_per_s),
            Bucket.per_second(f"relay:{relay_key(prepared.pool, relay)}", relay.max_rate_per_s),
            Bucket.per_second(f"provider:{prepared.pool}:{provider}",
                              _provider_rate(self.conf.provider_rate_per_s, decision.rate)),
        ]
        try:
            wait = self.journal.take(delivery_id, self.previous, buckets)
        except RedisError as error:
            raise _StopBatch(f"redis unavailable: {error}") from error
        self.previous = None
        if wait > 0:
            self.warmup_give_back(plans, provider)
            self.throttled[provider] = now + wait
            self.release(delivery_id, S.QUEUED, now + wait, "throttled")
            return
        composer = prepared.composer
        message_id = composer.message_id(delivery_id)
        context = contexts.get(subscription_id) or {"email": address,
                                                   "subscriber": {"email": address}}
        # One signed token per delivery: the VERP return path and the X-PW-Delivery
        # header, which ties a report without our envelope to us (deliverability.evidence).
        token = verp.token(delivery_id, secret=prepared.verp_secret)
        data = dkim.sign(composer.compose(context, to=address, message_id=message_id,
                                          delivery_token=token), prepared.keys)
        return_path = f"bounces+{token}@{self.conf.bounce_domain}"
        single = None
        if decision.max_connections == 1:
            # Throttled to one connection (or probing): one message in flight to this
            # provider from this pool, across every worker.
            single = get_redis().lock(f"sending:single:{breaker_key}:{provider}",
                                      timeout=self.conf.smtp_timeout_s + 5, blocking=False)
            if not single.acquire():
                self.warmup_give_back(plans, provider)
                self.release(delivery_id, S.QUEUED, now + 1, "one connection at a time")
                return
        try:
            code, text, relay_label = self.transmit(prepared, relay, return_path, address, data)
        except _AllRelaysDown:
            self.warmup_give_back(plans, provider)
            self.outcome(delivery_id, S.DEFERRED, text="all relays of the pool are down",
                         next_at=now + self.conf.relay_down_s, counted=False)
            return
        except _AllRelaysBusy:
            # Other sessions hold every connection the relays allow: back in a second,
            # not counted as an attempt; the rest of this batch follows it.
            self.warmup_give_back(plans, provider)
            self.busy_until = now + 1
            self.outcome(delivery_id, S.QUEUED, text=ALL_BUSY, next_at=self.busy_until,
                         counted=False, requeue=True)
            return
        except _MaybeSent as error:
            self.outcome(delivery_id, S.REVIEW, relay=error.args[1], message_id=message_id,
                         text=f"possibly sent: connection lost after DATA ({error.args[0]})")
            return
        finally:
            if single is not None:
                try:
                    single.release()
                except Exception:  # expired or Redis gone: the lock times out by itself
                    logger.debug("single-connection lock already released")
        self.answer(prepared, delivery_id, address, provider, code, text, relay_label,
                    message_id, _attempts, breaker_key)
        if 200 <= code < 300:
            self.accepted[(provider, breaker_key)] += 1

    def warmup_take(self, prepared: _Prepared, plans: list, provider: str,
                    delivery_id: int) -> bool:
        """Count the message against its warm-up caps; False (and deferred to the next
        day, or expired past the mailing's max age) when one is full."""
        key = (tuple(p.id for p in plans), provider)
        hold = self.warm_holds.get(key)
        if hold is None or hold.until <= time.time():
            try:
                hold = warmup.caps().take(plans, provider)
            except RedisError as error:
                raise _StopBatch(f"redis unavailable: {error}") from error
        if hold is None:
            return True
        self.warm_holds[key] = hold
        state = S.DEFERRED if hold.until < prepared.expires_at else S.EXPIRED
        self.release(delivery_id, state, hold.until, hold.reason, requeue=False)
        return False

    def warmup_give_back(self, plans: list, provider: str) -> None:
        if plans:
            try:
                warmup.caps().give_back(plans, provider)
            except RedisError:
                logger.warning("warmup.give_back_failed", extra={"provider": provider})

    def answer(self, prepared, delivery_id, address, provider, code, text, relay, message_id,
               attempts, breaker_key: str | None = None) -> None:
        breaker_key = breaker_key or prepared.pool
        if 200 <= code < 300:
            self.outcome(delivery_id, S.SENT, code=code, text=text, relay=relay,
                         message_id=message_id, kind="delivered")
            return
        self.report_accepted()  # the failure rate weighs this refusal against them
        result = record_smtp_answers([SmtpAnswer(delivery_id, address, provider, breaker_key,
                                                 relay, code, text)])[0]
        kind = result.get("kind", "unknown")
        if code < 500 or kind == "block":
            delay = RETRY_SCHEDULE[min(attempts, len(RETRY_SCHEDULE) - 1)]
            next_at = time.time() + delay.total_seconds()
            if kind == "block":
                # A block is about the sender: retry when the breaker lets this provider
                # be tried again (its probes decide), not on the recipient's schedule.
                reopens = gate.retry_after_block(provider, breaker_key)
                if reopens is not None:
                    next_at = max(reopens, time.time() + 1)
            state = S.DEFERRED if next_at < prepared.expires_at else S.EXPIRED
        else:
            state, next_at = (S.BOUNCED if kind == "hard" else S.FAILED), None
        self.outcome(delivery_id, state, code=code, text=text, relay=relay, next_at=next_at,
                     message_id=message_id, kind=kind)

    # -- relays and sessions
    def pick_relay(self, prepared: _Prepared) -> RelayConfig | None:
        now = time.time()
        for relay in prepared.relays:
            if _relay_down.get(relay_key(prepared.pool, relay), 0) <= now:
                return relay
        return None

    def mark_down(self, prepared: _Prepared, relay: RelayConfig, reason: str) -> None:
        key = relay_key(prepared.pool, relay)
        _relay_down[key] = time.time() + self.conf.relay_down_s
        _drop_session(key)
        logger.warning("relay.down", extra={"relay": relay.label, "reason": reason})
        try:
            get_redis().set(f"sending:relay-down:{key}", reason[:500], ex=self.conf.relay_down_s)
        except RedisError:
            pass

    def transmit(self, prepared: _Prepared, first: RelayConfig, mail_from: str, rcpt: str,
                 data: bytes) -> tuple[int, str, str]:
        relays = [first] + [r for r in prepared.relays if r is not first]
        busy = False
        for relay in relays:
            key = relay_key(prepared.pool, relay)
            if relay is not first and _relay_down.get(key, 0) > time.time():
                continue
            for fresh in (False, True):
                session = self.session_for(key, relay)
                reused = session is not None
                if session is None:
                    slot = self.take_slot(key, relay)
                    if slot is None:
                        busy = True
                        break  # at its connection limit: the next relay
                    try:
                        session = open_session(relay, timeout=self.conf.smtp_timeout_s)
                    except RelayUnavailable as error:
                        give_back_quietly(slot)
                        self.mark_down(prepared, relay, str(error))
                        break
                    session.pw_slot = slot
                    _session_map()[key] = session
                try:
                    code, text = _transaction(session, mail_from, rcpt, data)
                except _NotSent as error:
                    _drop_session(key, broken=True)
                    if reused and not fresh:
                        continue  # a stale kept-alive session: retry on a new one
                    self.mark_down(prepared, relay, str(error))
                    break
                except _MaybeSent as error:
                    _drop_session(key, broken=True)
                    raise _MaybeSent(str(error), relay.label) from error
                if code == 421:
                    _drop_session(key, broken=True)  # the server closes its end
                return code, text, relay.label
        raise _AllRelaysBusy() if busy else _AllRelaysDown()

    def session_for(self, key: str, relay: RelayConfig) -> smtplib.SMTP | None:
        """This thread's open session to the relay, its slot renewed when due."""
        session = _session_map().get(key)
        if session is None:
            return None
        slot = getattr(session, "pw_slot", None)
        try:
            kept = slot is None or relay_slots().keep(slot, relay.max_connections)
        except RedisError as error:
            raise _StopBatch(f"redis unavailable: {error}") from error
        if kept:
            return session
        _drop_session(key)  # its lease ran out and the slot went to another session
        return None

    def take_slot(self, key: str, relay: RelayConfig) -> Slot | None:
        try:
            return relay_slots().take(key, relay.max_connections)
        except RedisError as error:
            raise _StopBatch(f"redis unavailable: {error}") from error


def _refresh_relay_health(relays: Iterable[tuple[str, RelayConfig]]) -> None:
    """Learn which relays other workers found down (one Redis call per batch)."""
    keys = [relay_key(pool, relay) for pool, relay in relays]
    if not keys:
        return
    values = get_redis().mget([f"sending:relay-down:{k}" for k in keys])
    now = time.time()
    for key, value in zip(keys, values, strict=True):
        if value is not None:
            _relay_down[key] = max(_relay_down.get(key, 0), now + 1)
        elif _relay_down.get(key, 0) > now + 1:
            pass  # our own fresher knowledge


def deliveries_send(delivery_ids: list[int]) -> dict:
    """Claim what is still sendable among ``delivery_ids`` and send it. Idempotent."""
    conf = sending_conf.get()
    token = uuid.uuid4().hex
    try:
        journal = Journal(get_redis(), token)
        journal.open()
    except RedisError as error:
        logger.warning("send.redis_unavailable", extra={"error": str(error)})
        return {"claimed": 0, "reason": "redis unavailable"}
    deadline = time.monotonic() + conf.claim_lease_s * 0.8
    now = timezone.now()
    claimed = Delivery.objects.filter(
        id__in=delivery_ids, state__in=[S.QUEUED, S.DEFERRED], next_attempt_at__lte=now,
        mailing__state=Mailing.State.SENDING,
    ).update(state=S.CLAIMED, claimed_by=token, claimed_at=now)
    if not claimed:
        journal.close()
        return {"claimed": 0}
    rows = list(Delivery.objects.filter(claimed_by=token, state=S.CLAIMED)
                .order_by("mailing_id", "provider", "id")
                .values_list("id", "mailing_id", "subscription_id", "address", "provider",
                             "attempts"))
    try:
        mailings = {r[1] for r in rows}
        _refresh_relay_health((p.pool, relay) for p in map(_prepare, mailings)
                              for relay in p.relays)
    except RedisError:
        pass
    run = _Run(token, journal, deadline)
    run.run(rows)
    if run.accepted:
        try:
            record_smtp_accepted(dict(run.accepted))
        except RedisError:
            logger.warning("send.accepted_not_counted")
    try:
        journal.close()
    except RedisError:
        pass  # the rows are written; a leftover journal names no claimed row
    if run.requeue:
        from sending.tasks import deliveries_send_batch

        wait = max(0.05, max(t for _, t in run.requeue) - time.time())
        deliveries_send_batch.apply_async(([i for i, _ in run.requeue],), countdown=wait)
    return {"claimed": claimed, **run.stats}


def reset_process_state() -> None:
    """Forget cached mailings, sessions and relay health (tests; after relay edits)."""
    for by_relay in _all_sessions:
        for session in by_relay.values():
            close_quietly(session)
            give_back_quietly(getattr(session, "pw_slot", None))
        by_relay.clear()
    _prepared.clear()
    _relay_down.clear()
    gate.forget()
    warmup.forget()
