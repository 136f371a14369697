"""Transactional mail: confirmations, test sends and alerts.

Each mail is a row first and is sent by a worker on the ``transactional``
queue through the transactional pool, so bulk mail never delays it. The
worker claims the row with a conditional update: a task delivered twice finds
nothing left to send. Right before the SMTP transaction it leaves a marker in
Redis, removed once the answer is in the database; a row a dead worker left in
``sending`` is then put back in the queue when no marker says it was on the
wire, and marked ``review`` (possibly sent, never resent blindly) when one does.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import RedisError

from config.redis import get_redis
from sending.models import RelayPool, TransactionalEmail
from sending.relays import relays_for
from sending.slots import TRANSACTIONAL_SCOPE, give_back_quietly, relay_key, relay_slots
from sending.smtp import RelayUnavailable, close_quietly, open_session

logger = logging.getLogger(__name__)

RETRY_DELAYS = [timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10),
                timedelta(minutes=30), timedelta(hours=1)]
MAX_ATTEMPTS = 12
# A claim older than this belongs to a dead worker (a live one is done within a few
# SMTP timeouts).
CLAIM_LEASE = timedelta(minutes=10)
IN_FLIGHT_TTL_S = 7 * 24 * 3600
QUEUED_GRACE = timedelta(minutes=1)
BUSY_RETRY = timedelta(seconds=2)


def _in_flight_key(email_id: int) -> str:
    return f"sending:tx-in-flight:{email_id}"


def transactional_email_send(
    *, to: str, subject: str, body_text: str, body_html: str = "", from_email: str = "",
    headers: dict[str, str] | None = None, purpose: str = "system",
) -> TransactionalEmail:
    """Record a mail and have it sent by the transactional worker once committed."""
    from sending.tasks import transactional_deliver

    for value in (to, subject, from_email, *(headers or {}).values()):
        if "\r" in value or "\n" in value:
            raise ValueError("header values must not contain line breaks")
    email = TransactionalEmail.objects.create(
        to=to, subject=subject, body_text=body_text, body_html=body_html,
        from_email=from_email or settings.DEFAULT_FROM_EMAIL, headers=headers or {},
        purpose=purpose, next_attempt_at=timezone.now(),
    )
    transaction.on_commit(lambda: transactional_deliver.delay(email.id))
    return email


def build_message(email: TransactionalEmail) -> EmailMessage:
    message = EmailMessage(policy=SMTP)
    domain = email.from_email.rpartition("@")[2] or "localhost"
    message["Message-ID"] = email.message_id or make_msgid(domain=domain)
    message["Date"] = formatdate(localtime=False)
    message["From"] = email.from_email
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Auto-Submitted"] = "auto-generated"
    for name, value in email.headers.items():
        message[name] = value
    message.set_content(email.body_text)
    if email.body_html:
        message.add_alternative(email.body_html, subtype="html")
    return message


def _claim(email_id: int) -> TransactionalEmail | None:
    now = timezone.now()
    claimed = TransactionalEmail.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
        id=email_id,
        state__in=[TransactionalEmail.State.QUEUED, TransactionalEmail.State.DEFERRED],
    ).update(state=TransactionalEmail.State.SENDING, claimed_at=now)
    if not claimed:
        return None
    return TransactionalEmail.objects.get(id=email_id)


def transactional_email_deliver(email_id: int) -> str:
    """Send one claimed mail over the first relay of the pool that works.

    Returns the resulting state. A relay that is down fails over to the next;
    all relays down leaves the mail deferred for a later attempt.
    """
    email = _claim(email_id)
    if email is None:
        return "nothing-to-do"
    message = build_message(email)
    email.message_id = message["Message-ID"]
    payload = message.as_bytes()
    email.attempts += 1
    redis = get_redis()
    try:
        redis.set(_in_flight_key(email.id), "1", ex=IN_FLIGHT_TTL_S)
    except RedisError as exc:
        email.attempts -= 1  # nothing went out: not an attempt
        return _defer(email, f"redis unavailable: {exc}")
    state = _send(email, payload)
    try:
        redis.delete(_in_flight_key(email.id))
    except RedisError:
        pass  # the row says what happened; the reaper only reads markers of stuck rows
    return state


def _send(email: TransactionalEmail, payload: bytes) -> str:
    last_error = "no relay configured"
    busy = False
    for relay in relays_for(RelayPool.Purpose.TRANSACTIONAL):
        try:
            session = _session(relay)
        except _RelayBusy:
            busy = True  # every connection it allows is open elsewhere: the next relay
            continue
        except (RelayUnavailable, RedisError) as exc:
            last_error = str(exc)
            logger.warning("relay unavailable: %s", exc)
            continue
        try:
            session.sendmail(email.from_email, [email.to], payload)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            session.rset()
            return _finish(email, relay.label, code, text)
        except smtplib.SMTPResponseException as exc:
            _drop_session(relay)
            return _finish(email, relay.label, exc.smtp_code, exc.smtp_error)
        except (OSError, smtplib.SMTPException) as exc:
            _drop_session(relay)
            last_error = f"{relay.label}: {exc}"
            continue
        return _finish(email, relay.label, 250, b"accepted")
    if busy:
        return _defer_soon(email)
    return _defer(email, last_error)


class _RelayBusy(Exception):
    """The relay's max_connections sessions are all open (counted across workers)."""


class _Sessions(threading.local):
    def __init__(self):
        self.by_relay: dict[str, smtplib.SMTP] = {}
        _all_sessions.append(self.by_relay)


_all_sessions: list[dict[str, smtplib.SMTP]] = []
_sessions = _Sessions()


def _session(relay) -> smtplib.SMTP:
    """A kept-alive session to this relay (per worker thread); checked with NOOP first,
    so a connection the relay closed meanwhile is replaced before anything is sent.
    A new session takes one of the relay's connection slots first (sending.slots)."""
    slots = relay_slots()
    session = _sessions.by_relay.get(relay.label)
    if session is not None:
        try:
            if (session.noop()[0] == 250
                    and slots.keep(session.pw_slot, relay.max_connections)):
                return session
        except (OSError, smtplib.SMTPException):
            pass
        _drop_session(relay)
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


def _close(session: smtplib.SMTP | None) -> None:
    close_quietly(session)
    give_back_quietly(getattr(session, "pw_slot", None))


def _drop_session(relay) -> None:
    _close(_sessions.by_relay.pop(relay.label, None))


def close_sessions() -> None:
    """Close every thread's sessions and give their slots back (worker shutdown, tests)."""
    for by_relay in _all_sessions:
        for session in by_relay.values():
            _close(session)
        by_relay.clear()


def _finish(email: TransactionalEmail, relay: str, code: int, text: bytes | str) -> str:
    reply = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    email.relay = relay
    email.last_reply = f"{code} {reply}"
    if 200 <= code < 300:
        email.state = TransactionalEmail.State.SENT
        email.sent_at = timezone.now()
        email.save()
        return email.state
    if 400 <= code < 500:
        return _defer(email, email.last_reply)
    email.state = TransactionalEmail.State.FAILED
    email.save()
    return email.state


def _defer(email: TransactionalEmail, reason: str) -> str:
    email.last_reply = reason[:2000]
    if email.attempts >= MAX_ATTEMPTS:
        email.state = TransactionalEmail.State.FAILED
    else:
        delay = RETRY_DELAYS[min(email.attempts - 1, len(RETRY_DELAYS) - 1)]
        email.state = TransactionalEmail.State.DEFERRED
        email.next_attempt_at = timezone.now() + delay
    email.save()
    return email.state


def _defer_soon(email: TransactionalEmail) -> str:
    """Every relay at its connection limit: not an attempt; tried again in seconds."""
    from sending.tasks import transactional_deliver

    email.attempts -= 1
    email.state = TransactionalEmail.State.DEFERRED
    email.next_attempt_at = timezone.now() + BUSY_RETRY
    email.last_reply = "every relay of the pool at its connection limit"
    email.save()
    transactional_deliver.apply_async((email.id,), countdown=BUSY_RETRY.total_seconds())
    return email.state


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
