"""Bulk sending: mailings, the delivery ledger, the worker engine, the reaper and the sweeper.

The database is the queue. ``mailing_start`` writes one ``Delivery`` per
recipient; ``deliveries_dispatch`` nudges workers with batches of ids; a worker
(``deliveries_send``) claims the rows it can with a conditional update, sends
them over reused SMTP sessions and writes the answers back in bulk.

Crash safety. Before each message the worker records, in one Redis call
(``sending.throttle.Journal``), the answer to the previous message and the id
now in flight. The rows stay ``claimed`` by the worker's token until their
answers are written. If the worker dies, ``deliveries_reap`` (beat) finds its
rows once the claim lease has passed: journalled answers are applied, the one
in-flight row becomes ``review`` (possibly sent, never resent blindly) and the
rest go back to ``queued``. A worker never sends after its lease, so the
reaper never races a live worker. Should Redis lose the journal of a dead
worker, all its claimed rows go to ``review``.
"""

from __future__ import annotations

import logging
import smtplib
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import groupby, islice

from django.db import connection, transaction
from django.db.models import Q
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
from deliverability.providers import providers_for_domains
from deliverability.suppression import normalise, suppressed_among
from sending import conf as sending_conf
from sending import dkim, warmup
from sending.canary import canaries_advance, canary_begin
from sending.compose import Composer
from sending.models import Delivery, DeliveryAttempt, Mailing, RelayPool
from sending.recipients import recipient_contexts, subscriptions_stopped
from sending.relays import RelayConfig, relays_for_pool
from sending.render import compile_template
from sending.slots import Slot, give_back_quietly, relay_key, relay_slots
from sending.smtp import MaybeSent as _MaybeSent
from sending.smtp import NotSent as _NotSent
from sending.smtp import RelayUnavailable, close_quietly, open_session
from sending.smtp import smtp_transaction as _transaction
from sending.throttle import Bucket, Journal, journal_keys, read_journal

logger = logging.getLogger(__name__)
S = Delivery.State

RETRY_SCHEDULE = [timedelta(minutes=m) for m in (5, 10, 20, 40, 80, 160, 240)]
FLUSH_EVERY = 100
LEDGER_CHUNK = 20_000
DISPATCH_PAGE = 10_000
REQUEUE_SOON_S = 30.0
PREPARED_TTL_S = 60.0
LEASE_ENDING = "claim lease ending"
ALL_BUSY = "every relay of the pool at its connection limit"
STOP_RECHECK_S = 1.0  # a batch still sending after this asks the stop check again


# --------------------------------------------------------------------------- mailings
def mailing_create(*, from_email: str, subject: str, text: str, html: str = "",
                   reply_to: str = "", list_id: str = "", pool: RelayPool | None = None,
                   reference: str = "", max_age_hours: int | None = None) -> Mailing:
    """A draft mailing: a snapshot of the content. Templates are checked here."""
    compile_template(subject)
    compile_template(text)
    if html:
        compile_template(html, html=True)
    for value in (from_email, subject, reply_to, list_id):
        if "\r" in value or "\n" in value:
            raise ValueError("header values must not contain line breaks")
    return Mailing.objects.create(
        reference=reference, pool=pool, from_email=from_email, reply_to=reply_to,
        subject_template=subject, text_template=text, html_template=html, list_id=list_id,
        max_age_hours=max_age_hours or sending_conf.get().max_age_hours,
    )


def mailing_start(*, mailing: Mailing,
                  recipients: Iterable[tuple[int | None, str]] | None = None,
                  source_sql: str | None = None, source_params: Iterable = (),
                  dispatch: bool = True, canary: bool | None = None) -> int:
    """Build the ledger and start sending.

    Recipients come either as ``(subscription_id, address)`` pairs or as a SQL
    query returning those two columns (``source_sql``; on PostgreSQL the rows
    then never leave the server). The caller passes confirmed subscriptions
    only; suppressed addresses are skipped here. Safe to call again: the
    unique (mailing, address) constraint keeps existing rows. Returns the
    number of deliveries of the mailing. ``canary``: send to a first slice and widen
    while it stays clean (``sending.canary``); None: when above CANARY_MIN_RECIPIENTS.
    """
    if (recipients is None) == (source_sql is None):
        raise ValueError("pass either recipients or source_sql")
    Mailing.objects.filter(id=mailing.id, state__in=[Mailing.State.DRAFT,
                                                       Mailing.State.BUILDING]).update(
        state=Mailing.State.BUILDING)
    mailing.refresh_from_db()
    if mailing.state != Mailing.State.BUILDING:
        raise ValueError(f"mailing {mailing.id} is {mailing.state}, not startable")
    if source_sql is not None and connection.vendor == "postgresql":
        ledger_build_sql(mailing, source_sql, list(source_params))
    else:
        ledger_build(mailing, recipients if recipients is not None
                     else iter_sql(source_sql, source_params))
    count = Delivery.objects.filter(mailing=mailing).count()
    canary_begin(mailing, enabled=canary)
    Mailing.objects.filter(id=mailing.id).update(
        state=Mailing.State.SENDING, recipients=count,
        started_at=mailing.started_at or timezone.now())
    mailing.refresh_from_db()
    if dispatch:
        from sending.tasks import mailing_dispatch

        transaction.on_commit(lambda: mailing_dispatch.delay(mailing.id))
    return count


def iter_sql(sql: str, params: Iterable = (), size: int = 10_000) -> Iterator[tuple]:
    """Stream rows of a query with bounded memory (a server-side cursor on PostgreSQL)."""
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(sql, list(params))
        while rows := cursor.fetchmany(size):
            yield from rows


def _normalise(address: str) -> str:
    local, _, domain = address.strip().rpartition("@")
    if not local or not domain:
        return ""
    return normalise(address)  # config.addresses: the one normalisation


def ledger_build(mailing: Mailing, recipients: Iterable[tuple[int | None, str]]) -> None:
    """Insert deliveries in chunks (bounded memory); PostgreSQL uses COPY."""
    now = timezone.now()
    providers: dict[str, str] = {}
    iterator = iter(recipients)
    postgres = connection.vendor == "postgresql"
    if postgres:
        _pg_stage_create()
    try:
        while chunk := list(islice(iterator, LEDGER_CHUNK)):
            rows = []
            seen = set()
            for subscription_id, address in chunk:
                address = _normalise(address)
                if not address or address in seen:
                    continue
                seen.add(address)
                rows.append((subscription_id, address, address.rpartition("@")[2]))
            unknown = {domain for _, _, domain in rows if domain not in providers}
            if unknown:  # one parallel lookup per new domain (MX rollup, cached)
                providers.update(providers_for_domains(unknown))
            rows = [(sid, address, providers.get(domain, domain))
                    for sid, address, domain in rows]
            if postgres:
                _pg_insert(mailing.id, rows, now)
            else:
                _generic_insert(mailing.id, rows, now)
    finally:
        if postgres:
            with connection.cursor() as cursor:
                cursor.execute("DROP TABLE IF EXISTS pw_ledger_stage")


def ledger_build_sql(mailing: Mailing, source_sql: str, params: list) -> None:
    """PostgreSQL: the whole ledger in SQL (providers looked up once per distinct domain)."""
    from deliverability.models import Suppression

    table = Delivery._meta.db_table
    suppression = Suppression._meta.db_table
    source = (f"SELECT src.sid, split_part(src.addr, '@', 1) || '@' || "  # noqa: S608
              f"lower(split_part(src.addr, '@', 2)) AS address FROM "
              f"(SELECT q.* FROM ({source_sql}) AS q) AS src(sid, addr) "
              "WHERE position('@' in src.addr) > 1")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT split_part(address, '@', 2) FROM ({source}) AS s",  # noqa: S608
                       params)
        domains = [row[0] for row in cursor.fetchall()]
    providers = providers_for_domains(domains)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '128MB'")  # sort and anti-join in memory
        cursor.execute("CREATE TEMP TABLE pw_ledger_providers (domain text PRIMARY KEY, "
                       "provider text) ON COMMIT DROP")
        with cursor.cursor.copy("COPY pw_ledger_providers (domain, provider) FROM STDIN") as copy:
            for domain in domains:
                copy.write_row((domain, providers.get(domain, domain)))
        cursor.execute(
            f"INSERT INTO {table} (mailing_id, subscription_id, address, provider, state, "  # noqa: S608
            "attempts, next_attempt_at, claimed_by, relay, last_reply, message_id) "
            "SELECT %s, s.sid, s.address, COALESCE(p.provider, ''), 'queued', 0, %s, '', '', "
            f"'', '' FROM ({source}) AS s LEFT JOIN pw_ledger_providers p "
            "ON p.domain = split_part(s.address, '@', 2) "
            f"WHERE NOT EXISTS (SELECT 1 FROM {suppression} x WHERE x.address = s.address) "
            # In address order the unique index grows at its right edge instead of
            # touching random pages: several times faster for a million rows.
            "ORDER BY s.address ON CONFLICT (mailing_id, address) DO NOTHING",
            [mailing.id, timezone.now(), *params])


def _pg_stage_create() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS pw_ledger_stage")
        cursor.execute("CREATE TEMP TABLE pw_ledger_stage (subscription_id bigint, "
                       "address text, provider text)")


def _pg_insert(mailing_id: int, rows: list, now: datetime) -> None:
    from deliverability.models import Suppression

    table = Delivery._meta.db_table
    suppression = Suppression._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE pw_ledger_stage")
        raw = cursor.cursor  # psycopg 3 cursor: COPY
        with raw.copy("COPY pw_ledger_stage (subscription_id, address, provider) "
                      "FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {table} (mailing_id, subscription_id, address, provider, state, "  # noqa: S608
            "attempts, next_attempt_at, claimed_by, relay, last_reply, message_id) "
            "SELECT %s, s.subscription_id, s.address, s.provider, 'queued', 0, %s, '', '', '', '' "
            f"FROM pw_ledger_stage s WHERE NOT EXISTS (SELECT 1 FROM {suppression} x "
            "WHERE x.address = s.address) "
            "ON CONFLICT (mailing_id, address) DO NOTHING", [mailing_id, now])


def _generic_insert(mailing_id: int, rows: list, now: datetime) -> None:
    suppressed = suppressed_among(address for _, address, _ in rows)
    Delivery.objects.bulk_create(
        [Delivery(mailing_id=mailing_id, subscription_id=subscription_id, address=address,
                  provider=provider, next_attempt_at=now)
         for subscription_id, address, provider in rows if address not in suppressed],
        ignore_conflicts=True, batch_size=2000,
    )


# --------------------------------------------------------------------------- dispatch
def deliveries_dispatch(*, mailing_id: int | None = None) -> int:
    """Enqueue batches of due, undispatched deliveries grouped by provider; return #batches."""
    from sending.tasks import deliveries_send_batch

    conf = sending_conf.get()
    now = timezone.now()
    stale = now - timedelta(seconds=conf.redispatch_s)
    due = Delivery.objects.filter(
        Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=stale),
        state__in=[S.QUEUED, S.DEFERRED], next_attempt_at__lte=now,
        mailing__state=Mailing.State.SENDING,
    )
    if mailing_id is not None:
        due = due.filter(mailing_id=mailing_id)
    last = 0
    batches = 0
    while True:
        page = list(due.filter(id__gt=last).order_by("id")
                    .values_list("id", "mailing_id", "provider")[:DISPATCH_PAGE])
        if not page:
            return batches
        first, last = page[0][0], page[-1][0]
        due.filter(id__gte=first, id__lte=last).update(dispatched_at=now)
        groups: dict[tuple, list[int]] = defaultdict(list)
        for delivery_id, mailing, provider in page:
            groups[(mailing, provider)].append(delivery_id)
        for ids in groups.values():
            for start in range(0, len(ids), conf.batch_size):
                deliveries_send_batch.delay(ids[start:start + conf.batch_size])
                batches += 1


def deliveries_sweep() -> dict:
    """Beat job: expire, reap, dispatch what is due, finish mailings with nothing open."""
    from sending.lifecycle import mailings_guard

    result = {"expired": deliveries_expire(), "reaped": deliveries_reap(),
              "guarded": mailings_guard(), "warmup": warmup.warmup_plans_evaluate(),
              "canary": canaries_advance()}
    result["batches"] = deliveries_dispatch()
    result["finished"] = mailings_finish()
    return result


def deliveries_expire() -> int:
    """Waiting deliveries older than their mailing's max age: ``expired`` (not a bounce)."""
    now = timezone.now()
    total = 0
    # A paused mailing still ages: a newsletter never arrives days late.
    for mailing in Mailing.objects.filter(state__in=[Mailing.State.SENDING,
                                                     Mailing.State.PAUSED],
                                          started_at__isnull=False):
        if mailing.started_at + timedelta(hours=mailing.max_age_hours) <= now:
            total += Delivery.objects.filter(mailing=mailing,
                                             state__in=[S.QUEUED, S.DEFERRED]).update(
                state=S.EXPIRED, last_reply=f"not sent within {mailing.max_age_hours} h")
    return total


def mailings_finish() -> int:
    finished = 0
    for mailing in Mailing.objects.filter(state=Mailing.State.SENDING):
        if not Delivery.objects.filter(mailing=mailing, state__in=Delivery.OPEN_STATES).exists():
            finished += Mailing.objects.filter(id=mailing.id, state=Mailing.State.SENDING).update(
                state=Mailing.State.DONE, finished_at=timezone.now())
    return finished


# --------------------------------------------------------------------------- reaper
def deliveries_reap(*, now: datetime | None = None) -> int:
    """Return rows of workers whose claim lease has passed; the in-flight one to review."""
    conf = sending_conf.get()
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=conf.claim_lease_s)
    tokens = set(Delivery.objects.filter(state=S.CLAIMED, claimed_at__lt=cutoff)
                 .values_list("claimed_by", flat=True))
    if not tokens:
        return 0
    try:
        redis = get_redis()
        journals = {token: read_journal(redis, token) for token in tokens}
    except RedisError as error:
        logger.warning("reap.redis_unavailable", extra={"error": str(error)})
        return 0
    reaped = 0
    for token, (meta, outcomes) in journals.items():
        rows = Delivery.objects.filter(claimed_by=token, state=S.CLAIMED)
        if meta is None:
            reaped += rows.update(
                state=S.REVIEW,
                last_reply="possibly sent: worker died and its journal was lost")
            logger.error("reap.journal_lost", extra={"token": token})
        else:
            _apply_outcomes(token, outcomes)
            in_flight = meta.get("cur")
            if in_flight:
                reaped += rows.filter(id=int(in_flight)).update(
                    state=S.REVIEW,
                    last_reply="possibly sent: worker died while this message was in flight")
            reaped += rows.update(state=S.QUEUED, claimed_by="", dispatched_at=None,
                                  next_attempt_at=now)
        redis.delete(*journal_keys(token))
    return reaped


# --------------------------------------------------------------------------- outcomes
_OUTCOME_SET = (
    "SET state = v.st, last_code = COALESCE(v.code, {t}.last_code), last_reply = v.txt, "
    "relay = CASE WHEN v.relay = '' THEN {t}.relay ELSE v.relay END, "
    "sent_at = CASE WHEN v.st = 'sent' THEN v.at ELSE {t}.sent_at END, "
    "next_attempt_at = COALESCE(v.nx, {t}.next_attempt_at), "
    "message_id = CASE WHEN v.mid = '' THEN {t}.message_id ELSE v.mid END, "
    "attempts = {t}.attempts + v.att, claimed_by = v.by, dispatched_at = v.dsp "
)
_OUTCOME_COLUMNS = "(id, st, code, txt, relay, at, nx, mid, att, by, dsp)"
_PG_TYPES = ("bigint", "varchar", "int", "text", "varchar", "timestamptz", "timestamptz",
             "varchar", "int", "varchar", "timestamptz")


def _when(unix: float | None) -> datetime | None:
    return datetime.fromtimestamp(unix, UTC) if unix else None


def _apply_outcomes(token: str, outcomes: list[dict]) -> None:
    """Write answers (and releases) to rows this token still holds, in one statement."""
    if not outcomes:
        return
    table = Delivery._meta.db_table
    rows = [(o["id"], o["st"], o.get("code"), o.get("text", ""), o.get("relay", ""),
             _when(o["at"]), _when(o.get("nx")), o.get("mid", ""), o.get("att", 0),
             o.get("by", token), _when(o.get("dsp"))) for o in outcomes]
    attempts = [(o["id"], _when(o["at"]), o.get("relay", ""), o.get("code"), o.get("enh", ""),
                 o.get("text", ""), o.get("kind", ""), o["st"]) for o in outcomes if o.get("att")]
    attempt_table = DeliveryAttempt._meta.db_table
    attempt_columns = "(delivery_id, at, relay, code, enhanced_code, text, kind, outcome)"
    where = (f"WHERE {table}.id = v.id AND {table}.claimed_by = %s "
             f"AND {table}.state = 'claimed'")
    pg = connection.vendor == "postgresql"
    if pg:
        # One array a column: a statement of a dozen parameters whatever the batch size.
        source = "unnest(" + ", ".join(f"%b::{t}[]" for t in _PG_TYPES) + ")"
        update = (f"UPDATE {table} " + _OUTCOME_SET.format(t=table)
                  + f"FROM {source} AS v{_OUTCOME_COLUMNS} " + where)
        update_params = [*map(list, zip(*rows, strict=True)), token]
        insert = (f"INSERT INTO {attempt_table} {attempt_columns} "  # noqa: S608
                  "SELECT * FROM unnest(%b::bigint[], %b::timestamptz[], %b::varchar[], "
                  "%b::int[], %b::varchar[], %b::text[], %b::varchar[], %b::varchar[])")
        insert_params = [list(column) for column in zip(*attempts, strict=True)]
    else:
        ops = connection.ops
        adapt = ops.adapt_datetimefield_value
        rows = [(*r[:5], adapt(r[5]), adapt(r[6]), *r[7:10], adapt(r[10])) for r in rows]
        values = ", ".join(["(" + ", ".join(["%s"] * 11) + ")"] * len(rows))
        update = (f"WITH v{_OUTCOME_COLUMNS} AS (VALUES {values}) "
                  f"UPDATE {table} " + _OUTCOME_SET.format(t=table) + "FROM v " + where)
        update_params = [*(x for r in rows for x in r), token]
        insert = (f"INSERT INTO {attempt_table} {attempt_columns} VALUES "  # noqa: S608
                  + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(attempts)))
        insert_params = [x for a in attempts for x in (a[0], adapt(a[1]), *a[2:])]
    with transaction.atomic(), _cursor(pg) as cursor:
        cursor.execute(update, update_params)
        if attempts:
            cursor.execute(insert, insert_params)


def _cursor(pg: bool):
    """Django's cursor; on PostgreSQL a server-side binding one on the same connection,
    so binary arrays travel as parameters (Django's client-side cursor quotes every
    element into the statement text)."""
    if not pg:
        return connection.cursor()
    import psycopg

    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


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
        feedback_id=f"{mailing.id}:{pool}:newsletter:{conf.feedback_id_sender}",
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
