"""Transactional mail: confirmations, test sends and alerts.

Each mail is a row first and is sent by a worker on the ``transactional``
queue through the transactional pool, so bulk mail never delays it. Rows are
recorded in bulk (``transactional_emails_send``) and handed to workers in
batches of ``BATCH_SIZE`` ids; a worker claims a batch with one conditional
update (a task delivered twice finds nothing left to send: one mail per row)
and sends it over one kept-alive SMTP session per relay, pipelined where the
relay offers it (``sending.smtp.smtp_transaction``, as the bulk engine does).
Right before each message it leaves a marker in Redis, removed once the
batch's answers are in the database; a row a dead worker left in ``sending``
is put back in the queue when no marker says it was on the wire, and marked
``review`` (possibly sent, never resent blindly) when one does.
"""

from __future__ import annotations

import logging
import smtplib
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import timedelta
from email.utils import make_msgid, parseaddr
from functools import lru_cache

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import RedisError

from config.database import update_rows
from config.redis import get_redis
from deliverability.suppression import normalise, suppressed_among
from sending.compose import compose_literal
from sending.models import RelayPool, TransactionalEmail
from sending.relays import relays_for
from sending.slots import TRANSACTIONAL_SCOPE, give_back_quietly, relay_key, relay_slots
from sending.smtp import (
    MaybeSent,
    NotSent,
    RelayUnavailable,
    close_quietly,
    open_session,
    smtp_transaction,
)

logger = logging.getLogger(__name__)
T = TransactionalEmail.State

RETRY_DELAYS = [timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10),
                timedelta(minutes=30), timedelta(hours=1)]
MAX_ATTEMPTS = 12
# A claim older than this belongs to a dead worker (a live one is done within a few
# SMTP timeouts: it stops sending a batch after half of it, see _deliver_batch).
CLAIM_LEASE = timedelta(minutes=10)
IN_FLIGHT_TTL_S = 7 * 24 * 3600
QUEUED_GRACE = timedelta(minutes=1)
BUSY_RETRY = timedelta(seconds=2)
# Ids a task carries and a worker claims at once: enough for a session to pay off,
# few enough that a worker crash leaves little in review.
BATCH_SIZE = 100
_WRITTEN = ["state", "attempts", "sent_at", "next_attempt_at", "message_id", "relay",
            "last_reply"]


def _in_flight_key(email_id: int) -> str:
    return f"sending:tx-in-flight:{email_id}"


# --------------------------------------------------------------------------- recording
def transactional_email_send(
    *, to: str, subject: str, body_text: str, body_html: str = "", from_email: str = "",
    headers: dict[str, str] | None = None, purpose: str = "system",
) -> TransactionalEmail:
    """Record a mail and have it sent by the transactional worker once committed."""
    return transactional_emails_send([{
        "to": to, "subject": subject, "body_text": body_text, "body_html": body_html,
        "from_email": from_email, "headers": headers, "purpose": purpose}])[0]


def transactional_emails_send(mails: Iterable[dict]) -> list[TransactionalEmail]:
    """Record many mails (the keyword arguments of ``transactional_email_send``) in one
    statement; once committed, a worker task per ``BATCH_SIZE`` of them."""
    now = timezone.now()
    rows = []
    for mail in mails:
        headers = mail.get("headers") or {}
        for value in (mail["to"], mail["subject"], mail.get("from_email", ""),
                      *headers.values()):
            if "\r" in value or "\n" in value:
                raise ValueError("header values must not contain line breaks")
        rows.append(TransactionalEmail(
            to=mail["to"], subject=mail["subject"], body_text=mail["body_text"],
            body_html=mail.get("body_html", ""), headers=headers,
            from_email=mail.get("from_email") or settings.DEFAULT_FROM_EMAIL,
            purpose=mail.get("purpose", "system"), next_attempt_at=now))
    if connection.features.can_return_rows_from_bulk_insert:
        TransactionalEmail.objects.bulk_create(rows, batch_size=500)
    else:
        for row in rows:  # no ids back from a bulk insert on this database
            row.save()
    ids = [row.id for row in rows]
    transaction.on_commit(lambda: enqueue_batches(ids))
    return rows


def enqueue_batches(ids: list[int], countdown: float | None = None) -> None:
    """One worker task per ``BATCH_SIZE`` ids."""
    from sending.tasks import transactional_deliver_batch

    for start in range(0, len(ids), BATCH_SIZE):
        transactional_deliver_batch.apply_async((ids[start:start + BATCH_SIZE],),
                                                countdown=countdown)


def build_message(email: TransactionalEmail) -> bytes:
    """The message's bytes; its Message-ID is kept on the row (a retry keeps it)."""
    if not email.message_id:
        domain = _envelope_from(email.from_email).rpartition("@")[2] or "localhost"
        email.message_id = make_msgid(domain=domain)
    return compose_literal(
        from_email=email.from_email, to=email.to, subject=email.subject,
        text=email.body_text, html=email.body_html, message_id=email.message_id,
        headers={"Auto-Submitted": "auto-generated", **email.headers})


# --------------------------------------------------------------------------- claiming
def _update_returns_rows() -> bool:
    return connection.vendor == "postgresql" or (
        connection.vendor == "sqlite" and sqlite3.sqlite_version_info >= (3, 35))


def _claim(email_ids: list[int]) -> list[TransactionalEmail]:
    """The rows among ``email_ids`` still waiting and due, now ``sending`` and ours.

    One conditional UPDATE ... RETURNING: of two workers given the same ids, each
    row goes to exactly one."""
    if not email_ids:
        return []
    now = timezone.now()
    if _update_returns_rows():
        table = TransactionalEmail._meta.db_table
        adapt = connection.ops.adapt_datetimefield_value
        marks = ", ".join(["%s"] * len(email_ids))
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET state = %s, claimed_at = %s "  # noqa: S608
                f"WHERE id IN ({marks}) AND state IN (%s, %s) "
                "AND (next_attempt_at IS NULL OR next_attempt_at <= %s) RETURNING id",
                [T.SENDING, adapt(now), *email_ids, T.QUEUED, T.DEFERRED, adapt(now)])
            claimed = [row[0] for row in cursor.fetchall()]
    else:
        waiting = TransactionalEmail.objects.filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
            state__in=[T.QUEUED, T.DEFERRED])
        claimed = [i for i in email_ids
                   if waiting.filter(id=i).update(state=T.SENDING, claimed_at=now)]
    if not claimed:
        return []
    return list(TransactionalEmail.objects.filter(id__in=claimed).order_by("id"))


# --------------------------------------------------------------------------- sending
def transactional_email_deliver(email_id: int) -> str:
    """Send one mail if it is still due; returns its new state ("nothing-to-do" when
    another worker has it or it is done)."""
    emails = _claim([email_id])
    if not emails:
        return "nothing-to-do"
    _deliver_batch(emails)
    return emails[0].state


def transactional_emails_deliver(email_ids: list[int]) -> dict[str, int]:
    """Claim what is still due among ``email_ids``, a batch at a time, and send it.
    Returns how many rows ended in which state. Safe to run twice."""
    outcomes: Counter = Counter()
    for start in range(0, len(email_ids), BATCH_SIZE):
        emails = _claim(email_ids[start:start + BATCH_SIZE])
        if emails:
            _deliver_batch(emails)
            outcomes.update(email.state for email in emails)
    return dict(outcomes)


def _deliver_batch(emails: list[TransactionalEmail]) -> None:
    """Send one claimed batch, then write every answer in one statement and clear the
    markers of the rows that have one.

    Called once per claimed batch: a check of whether a mail is still wanted belongs
    at its start, before anything goes out; a row it gives a final state is written
    with the batch and not sent.
    """
    _stop_unwanted(emails)
    batch = _Batch(emails)
    try:
        batch.send()
    finally:
        batch.write()


# Mail sent because a person asked for it (a confirmation) stops, like bulk mail, once
# the address is suppressed (a hard bounce, a complaint, an erasure since the signup).
# Alerts, test sends and API mail are the operator's own and go out regardless.
STOP_PURPOSES = frozenset({"confirmation"})


def _stop_unwanted(emails: list[TransactionalEmail]) -> None:
    """One query per batch; a stopped row ends ``failed`` with the reason, never sent."""
    asked = [e for e in emails if e.state == T.SENDING and e.purpose in STOP_PURPOSES]
    if not asked:
        return
    suppressed = suppressed_among(e.to for e in asked)
    for email in asked:
        if normalise(email.to) in suppressed:
            email.state, email.next_attempt_at = T.FAILED, None
            email.last_reply = "not sent: the address is suppressed"


class _Batch:
    """A claimed batch on its way: over the first relays of the pool that work. A relay
    that is down fails over to the next; all relays down leaves the rest deferred for a
    later attempt; all at their connection limit, queued again in seconds."""

    def __init__(self, emails: list[TransactionalEmail]):
        self.emails = emails
        self.soon: list[int] = []  # to hand to a worker again once written
        # Past half the claim lease the rest goes back: the reaper never races us.
        self.deadline = time.monotonic() + CLAIM_LEASE.total_seconds() / 2

    def send(self) -> None:
        pending = [email for email in self.emails if email.state == T.SENDING]
        last_error = "no relay configured"
        busy = False
        for relay in relays_for(RelayPool.Purpose.TRANSACTIONAL):
            if not pending:
                return
            try:
                pending, error = self.send_over(relay, pending)
            except _RelayBusy as full:
                busy = True  # every connection it allows is open elsewhere: the next relay
                pending = full.unsent
                continue
            except _RedisDown as down:
                for email in down.unsent:  # nothing went out: not an attempt
                    _defer(email, f"redis unavailable: {down}")
                return
            last_error = error or last_error
        if pending and busy:
            self.defer_soon(pending, "every relay of the pool at its connection limit")
        else:
            for email in pending:
                email.attempts += 1  # tried: MAX_ATTEMPTS ends a relay that never comes back
                _defer(email, last_error)

    def send_over(self, relay, emails: list[TransactionalEmail]
                  ) -> tuple[list[TransactionalEmail], str]:
        """Send ``emails`` in order over this relay's session; returns those that did
        not go out (the relay failed before their data) and why. Raises _RelayBusy
        (with the rest) when it has no connection to spare."""
        redis = get_redis()
        for index, email in enumerate(emails):
            if time.monotonic() > self.deadline:
                self.defer_soon(emails[index:], "claim lease ending")
                return [], ""
            payload = build_message(email)
            mail_from = _envelope_from(email.from_email)
            marker = _in_flight_key(email.id)
            for fresh in (False, True):
                try:
                    session = _session(relay)
                except _RelayBusy as full:
                    full.unsent = emails[index:]
                    raise
                except (RelayUnavailable, RedisError) as exc:
                    logger.warning("relay unavailable: %s", exc)
                    return emails[index:], str(exc)
                reused = getattr(session, "pw_used", False)
                try:
                    # The marker is set while the relay answers the envelope, before
                    # any data goes out.
                    code, text = smtp_transaction(
                        session, mail_from, email.to, payload,
                        before_data=lambda key=marker: _mark_in_flight(redis, key))
                except RedisError as exc:
                    _drop_session(relay, broken=True)  # mid-envelope; no data went out
                    raise _RedisDown(exc, emails[index:]) from exc
                except NotSent as exc:
                    _drop_session(relay, broken=True)
                    if reused and not fresh:
                        continue  # a kept-alive session the relay closed meanwhile
                    return emails[index:], f"{relay.label}: {exc}"
                except MaybeSent as exc:
                    _drop_session(relay, broken=True)
                    email.attempts += 1
                    email.relay = relay.label
                    email.state = T.REVIEW
                    email.last_reply = f"possibly sent: connection lost after DATA ({exc})"
                    break
                email.attempts += 1
                if code == 421:
                    _drop_session(relay, broken=True)  # the server closes its end
                _finish(email, relay.label, code, text)
                break
        return [], ""

    def defer_soon(self, emails: list[TransactionalEmail], reason: str) -> None:
        """Not sent, not an attempt: back to a worker in seconds."""
        for email in emails:
            email.state = T.DEFERRED
            email.next_attempt_at = timezone.now() + BUSY_RETRY
            email.last_reply = reason
        self.soon += [email.id for email in emails]

    def write(self) -> None:
        update_rows(TransactionalEmail, self.emails, _WRITTEN)
        # A row still ``sending`` (an error cut the batch short) keeps its marker:
        # the reaper then tells whether it was on the wire.
        done = [_in_flight_key(e.id) for e in self.emails if e.state != T.SENDING]
        if done:
            try:
                get_redis().delete(*done)
            except RedisError:
                pass  # the rows say what happened; the reaper only reads markers of stuck rows
        if self.soon:
            enqueue_batches(self.soon, countdown=BUSY_RETRY.total_seconds())


@lru_cache(maxsize=64)
def _envelope_from(from_email: str) -> str:
    return parseaddr(from_email)[1] or from_email


class _RedisDown(Exception):
    def __init__(self, error: Exception, unsent: list[TransactionalEmail]):
        super().__init__(str(error))
        self.unsent = unsent


def _mark_in_flight(redis, key: str) -> Callable[[], None]:
    """SET the marker now, read Redis's answer later (the returned function): the two
    round trips, to Redis and to the relay, overlap."""
    pool = redis.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_command("SET", key, "1", "EX", IN_FLIGHT_TTL_S)
    except BaseException:
        pool.release(conn)
        raise

    def answered() -> None:
        try:
            conn.read_response()  # an error answer raises (a RedisError)
        except BaseException:
            conn.disconnect()  # its answer may still be on the way: not to be reused
            raise
        finally:
            pool.release(conn)

    return answered


class _RelayBusy(Exception):
    """The relay's max_connections sessions are all open (counted across workers);
    ``unsent``: the mails of the batch that are left."""

    unsent: list[TransactionalEmail]


class _Sessions(threading.local):
    def __init__(self):
        self.by_relay: dict[str, smtplib.SMTP] = {}
        _all_sessions.append(self.by_relay)


_all_sessions: list[dict[str, smtplib.SMTP]] = []
_sessions = _Sessions()


def _session(relay) -> smtplib.SMTP:
    """A kept-alive session to this relay (per worker thread), its slot renewed when due.
    A new session takes one of the relay's connection slots first (sending.slots).
    A reused session starts each message with RSET, which shows a connection the
    relay closed meanwhile before anything is sent."""
    slots = relay_slots()
    session = _sessions.by_relay.get(relay.label)
    if session is not None:
        if slots.keep(session.pw_slot, relay.max_connections):
            return session
        _drop_session(relay)  # its lease ran out and the slot went to another session
    slot = slots.take(relay_key(TRANSACTIONAL_SCOPE, relay), relay.max_connections)
    if slot is None:
        raise _RelayBusy(relay.label)
    try:
        session = open_session(relay)
    except RelayUnavailable:
        slots.give_back(slot)
        raise
    session.pw_slot = slot
    _sessions.by_relay[relay.label] = session
    return session


def _close(session: smtplib.SMTP | None, *, broken: bool = False) -> None:
    if broken and session is not None:
        session.close()  # not asked to QUIT: it may be mid-DATA, or gone
    else:
        close_quietly(session)
    give_back_quietly(getattr(session, "pw_slot", None))


def _drop_session(relay, *, broken: bool = False) -> None:
    _close(_sessions.by_relay.pop(relay.label, None), broken=broken)


def close_sessions() -> None:
    """Close every thread's sessions and give their slots back (worker shutdown, tests)."""
    for by_relay in _all_sessions:
        for session in by_relay.values():
            _close(session)
        by_relay.clear()


# --------------------------------------------------------------------------- answers
def _finish(email: TransactionalEmail, relay: str, code: int, text: str) -> None:
    email.relay = relay
    email.last_reply = f"{code} {text}"[:2000]
    if 200 <= code < 300:
        email.state = T.SENT
        email.sent_at = timezone.now()
    elif 400 <= code < 500:
        _defer(email, email.last_reply)
    else:
        email.state = T.FAILED


def _defer(email: TransactionalEmail, reason: str) -> None:
    email.last_reply = reason[:2000]
    if email.attempts >= MAX_ATTEMPTS:
        email.state = T.FAILED
    else:
        delay = RETRY_DELAYS[min(max(email.attempts, 1) - 1, len(RETRY_DELAYS) - 1)]
        email.state = T.DEFERRED
        email.next_attempt_at = timezone.now() + delay


def transactional_email_reap(*, now=None) -> dict[str, int]:
    """Rows a dead worker left in ``sending``: back to the queue when no marker says
    the message was on the wire, else ``review``. Run by the retry beat job."""
    now = now or timezone.now()
    stuck = list(TransactionalEmail.objects.filter(
        state=TransactionalEmail.State.SENDING, claimed_at__lt=now - CLAIM_LEASE,
    ).values_list("id", flat=True)[:500])
    if not stuck:
        return {"requeued": 0, "review": 0}
    redis = get_redis()
    markers = redis.mget([_in_flight_key(i) for i in stuck])  # RedisError: next run
    on_wire = [i for i, marker in zip(stuck, markers, strict=True) if marker is not None]
    off_wire = [i for i, marker in zip(stuck, markers, strict=True) if marker is None]
    sending = TransactionalEmail.objects.filter(state=TransactionalEmail.State.SENDING)
    review = sending.filter(id__in=on_wire).update(
        state=TransactionalEmail.State.REVIEW,
        last_reply="possibly sent: the worker died during the SMTP transaction")
    requeued = sending.filter(id__in=off_wire).update(
        state=TransactionalEmail.State.QUEUED, next_attempt_at=now - QUEUED_GRACE)
    if on_wire:
        redis.delete(*[_in_flight_key(i) for i in on_wire])
    return {"requeued": requeued, "review": review}


def transactional_email_due_ids(limit: int = 500) -> list[int]:
    """Mails to hand to a worker again (for the retry beat job): deferred ones whose
    next attempt is due, and queued ones whose task should have run a minute ago (a
    broker that lost it, or a row the reaper put back)."""
    now = timezone.now()
    return list(
        TransactionalEmail.objects.filter(
            Q(state=TransactionalEmail.State.DEFERRED, next_attempt_at__lte=now)
            | Q(state=TransactionalEmail.State.QUEUED, next_attempt_at__lte=now - QUEUED_GRACE)
        ).values_list("id", flat=True)[:limit]
    )
