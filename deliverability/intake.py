"""Bounce intake: record, then decide.

Every inbound message (SMTP listener, MTA pipe, IMAP mailbox) ends in
``ingest``: the raw bytes are stored first (compressed, keyed by their
sha256, so the same message twice changes nothing), then classified, matched
to a delivery by its VERP address, and acted on. Each action is written on
the event that caused it:

- hard: the address is suppressed (``hard_bounce``);
- soft: counted; ``SOFT_BOUNCE_LIMIT`` soft bounces for distinct deliveries
  with no successful delivery in between suppress it (``soft_bounces``);
- complaint: ``complaint_received`` is announced (newsletter unsubscribes)
  and the address is suppressed (``complaint``);
- block: nothing against the address; the provider breaker counts it;
- auto_reply, delivered, unknown: nothing.

deliverability imports neither sending nor newsletter: sending registers how
to look up a delivery (``register_delivery_source``) and reacts to
``bounce_recorded`` by marking the delivery bounced.
"""

from __future__ import annotations

import hashlib
import logging
import re
import zlib
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32

from django.db import IntegrityError, transaction
from django.utils import timezone

from deliverability import conf, verp
from deliverability.models import BounceEvent, InboundMessage
from deliverability.signals import bounce_recorded, complaint_received
from deliverability.suppression import normalise, suppress

logger = logging.getLogger(__name__)

# Headers an MTA uses to say which address a message was delivered to.
_ENVELOPE_HEADERS = ("X-Original-To", "Delivered-To", "Envelope-To", "X-Envelope-To", "To")
# A VERP address anywhere in the message (e.g. the Return-Path of the original
# quoted in a DSN or an ARF report); checked by verp.decode's HMAC afterwards.
_VERP_ANYWHERE = re.compile(rb"[a-z0-9_.-]{1,64}\+[0-9a-z]{1,13}-[a-z2-7]{10}@[a-z0-9.-]{1,253}",
                            re.IGNORECASE)
_SCAN_BYTES = 1024 * 1024
_ACTING_KINDS = ("hard", "soft", "complaint", "block")

# Hooks registered by the sending app (see register_delivery_source).
_resolve_delivery: Callable[[int], dict | None] | None = None
_last_success: Callable[[str, Iterable[int]], datetime | None] | None = None


def register_delivery_source(*, resolve: Callable[[int], dict | None],
                             last_success: Callable[[str, Iterable[int]], datetime | None]
                             ) -> None:
    """How intake learns about deliveries without importing the app that owns them.

    ``resolve(delivery_id)`` returns ``{"address", "provider", "pool", "mailing_id",
    "campaign"}`` or None; ``last_success(address, exclude_delivery_ids)`` returns
    when mail to the address was last accepted and has not bounced, or None.
    """
    global _resolve_delivery, _last_success
    _resolve_delivery, _last_success = resolve, last_success


# --- storing -------------------------------------------------------------------

def _clean(text, limit: int | None = None) -> str:
    """Text the database accepts: no NUL (PostgreSQL), no lone surrogates (UTF-8)."""
    text = str(text or "").encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
    return text[:limit] if limit else text


def _headers(raw: bytes):
    try:
        return BytesHeaderParser(policy=compat32).parsebytes(raw[:_SCAN_BYTES])
    except Exception:  # a message we can't parse is still stored
        return None


def _header(headers, name: str) -> str:
    if headers is None:
        return ""
    try:
        return _clean(" ".join(str(v) for v in headers.get_all(name, [])))
    except Exception:  # odd header objects are treated as absent
        return ""


def store(raw: bytes, *, source: str, envelope_recipients: Iterable[str] = ()) -> InboundMessage:
    """Store the message once; the same bytes again return the stored row."""
    key = hashlib.sha256(raw).hexdigest()
    found = InboundMessage.objects.filter(key=key).first()
    if found is not None:
        return found
    headers = _headers(raw)
    try:
        with transaction.atomic():
            return InboundMessage.objects.create(
                key=key, raw_compressed=zlib.compress(raw, 6), size=len(raw), source=source,
                envelope_recipients=_clean(",".join(envelope_recipients), 10000),
                message_id=_header(headers, "Message-ID")[:998],
                subject=_header(headers, "Subject")[:998],
            )
    except IntegrityError:  # stored by a concurrent delivery of the same bytes
        return InboundMessage.objects.get(key=key)


def ingest(raw: bytes, *, source: str, envelope_recipients: Iterable[str] = ()) -> InboundMessage:
    """Store, then classify and act (once). Raises only when the message could not be stored."""
    raw = bytes(raw)
    message = store(raw, source=source, envelope_recipients=list(envelope_recipients))
    if message.processed_at is None:
        try:
            process(message)
        except Exception as exc:  # stored is what matters; the error is kept for review
            logger.exception("bounce %s: processing failed", message.pk)
            InboundMessage.objects.filter(pk=message.pk).update(error=_clean(repr(exc), 2000))
            InboundMessage.objects.filter(pk=message.pk, processed_at=None).update(
                outcome="error")
        message.refresh_from_db()
    return message


# --- matching --------------------------------------------------------------------

def match_delivery(raw: bytes, envelope_recipients: Iterable[str] = ()) -> int | None:
    """The delivery a message is about, from the first VERP address that decodes."""
    for address in envelope_recipients:
        found = verp.decode(address)
        if found is not None:
            return found
    headers = _headers(raw)
    for name in _ENVELOPE_HEADERS:
        for part in re.split(r"[,\s]+", _header(headers, name)):
            found = verp.decode(part) if "+" in part else None
            if found is not None:
                return found
    for candidate in _VERP_ANYWHERE.findall(raw[:_SCAN_BYTES]):
        found = verp.decode(candidate.decode("ascii", "replace"), prefix=None)
        if found is not None:
            return found
    return None


def _resolve(delivery_id: int | None) -> dict | None:
    if delivery_id is None or _resolve_delivery is None:
        return None
    return _resolve_delivery(delivery_id)


# --- deciding ------------------------------------------------------------------

def process(message: InboundMessage, *, reclassify: bool = False) -> InboundMessage:
    """Classify the stored bytes and act; rerunning only acts on events whose kind changed."""
    from deliverability.classify import classify_message, unknown_result

    raw = message.raw
    error = ""
    try:
        results = classify_message(raw)
    except Exception as exc:  # the classifier must not lose a message
        logger.exception("bounce %s: classifier raised", message.pk)
        results, error = [], repr(exc)
    results = results or [unknown_result()]
    envelope = [a for a in message.envelope_recipients.split(",") if a]
    delivery_id = match_delivery(raw, envelope)
    info = _resolve(delivery_id)
    if delivery_id is not None and info is None:
        delivery_id = None  # decodes, but the delivery is gone (or no sending app here)

    with transaction.atomic():
        locked = InboundMessage.objects.select_for_update().get(pk=message.pk)
        if locked.processed_at is not None and not reclassify:
            return locked
        existing = {e.position: e for e in locked.events.all()}
        for position, result in enumerate(results):
            event = existing.get(position) or BounceEvent(message=locked, position=position)
            previous_kind = event.kind if event.pk and event.action else None
            _fill(event, result, delivery_id, info, single=len(results) == 1)
            event.save()
            if previous_kind != event.kind:
                _act(event, locked, info)
        locked.events.filter(position__gte=len(results)).delete()
        kinds = sorted({r.get("kind") or "unknown" for r in results})
        locked.outcome = ",".join(kinds)[:64]
        locked.error = _clean(error, 2000)
        locked.processed_at = timezone.now()
        locked.save(update_fields=["outcome", "error", "processed_at"])
    return locked


def _fill(event: BounceEvent, result: dict, delivery_id: int | None, info: dict | None,
          *, single: bool) -> None:
    recipient = _clean(result.get("recipient"), 320)
    mine = info is not None and (single or normalise(recipient) == normalise(info["address"]))
    event.recipient = recipient or (info["address"] if mine else "")
    # We act on the address we sent to: a report may name a forwarding target.
    event.address = normalise(info["address"] if mine else recipient)[:320] if (
        mine or recipient) else ""
    event.delivery_id = delivery_id if mine else None
    event.mailing_id = info.get("mailing_id") if mine else None
    event.campaign = _clean(info.get("campaign"), 128) if mine else ""
    event.kind = _clean(result.get("kind") or "unknown", 16)
    event.reason = _clean(result.get("reason"), 32)
    event.status = _clean(result.get("status"), 16)
    event.smtp_code = _clean(result.get("smtp_code"), 8)
    event.hard = bool(result.get("hard"))
    event.diagnostic = _clean(result.get("diagnostic"), 4000)
    event.remote_mta = _clean(result.get("remote_mta"), 255)
    # The delivery's provider is the breaker's key (sending's MX rollup); else the report's.
    provider = (info.get("provider") if mine else "") or result.get("provider")
    event.provider = _clean(provider, 64)
    # RFC 3464 "Action: delayed": the remote MTA is still trying; nothing failed yet.
    event.delay_notice = result.get("action") == "delayed"


def _act(event: BounceEvent, message: InboundMessage, info: dict | None) -> None:
    source = f"bounce:{message.source}"
    detail = f"{event.status} {event.diagnostic}".strip()[:2000]
    kind, address = event.kind, event.address
    action, note = BounceEvent.Action.NONE, ""
    if getattr(event, "delay_notice", False) and kind == "soft":
        event.action, event.action_detail = action, "delay notice: still being retried"
        event.save(update_fields=["action", "action_detail"])
        return
    if kind in _ACTING_KINDS and not address and kind != "block":
        note = "no recipient found"
    elif kind == "hard":
        suppress(address=address, reason="hard_bounce", detail=detail, source=source,
                 source_event_id=event.pk)
        action = BounceEvent.Action.SUPPRESSED
    elif kind == "soft":
        action, note = _count_soft(event, detail, source)
    elif kind == "complaint":
        delivery_id, feedback = event.delivery_id, event.reason
        transaction.on_commit(lambda: complaint_received.send(
            sender=None, address=address, feedback_type=feedback, delivery_id=delivery_id),
            robust=True)
        suppress(address=address, reason="complaint", detail=detail, source=source,
                 source_event_id=event.pk)
        action = BounceEvent.Action.COMPLAINT
    elif kind == "block":
        # A fact about us, not the address: only the provider breaker hears of it.
        if event.provider:
            pool = (info or {}).get("pool") or "bulk"
            transaction.on_commit(_breaker_call(event, pool), robust=True)
            action, note = BounceEvent.Action.BREAKER, f"{event.provider}/{pool}"
        else:
            note = "provider unknown"
    event.action, event.action_detail = action, note[:255]
    event.save(update_fields=["action", "action_detail"])
    if event.delivery_id is not None:
        payload = {"delivery_id": event.delivery_id, "kind": kind, "reason": event.reason,
                   "status": event.status, "diagnostic": event.diagnostic,
                   "event_id": event.pk}
        transaction.on_commit(lambda: bounce_recorded.send(sender=None, **payload), robust=True)


def _count_soft(event: BounceEvent, detail: str, source: str) -> tuple[str, str]:
    """Suppress after SOFT_BOUNCE_LIMIT soft bounces with no success in between."""
    start = timezone.now() - timedelta(days=conf.SOFT_BOUNCE_WINDOW_DAYS)
    delivered = (BounceEvent.objects.filter(address=event.address, kind="delivered")
                 .order_by("-created_at").values_list("created_at", flat=True).first())
    start = max(start, delivered or start)
    soft = BounceEvent.objects.filter(address=event.address, kind="soft")
    rows = list(soft.filter(created_at__gte=start).values_list("delivery_id", "message_id"))
    if _last_success is not None:
        success = _last_success(event.address, {d for d, _ in rows if d is not None})
        if success is not None and success > start:
            rows = list(soft.filter(created_at__gte=success)
                        .values_list("delivery_id", "message_id"))
    # One failure per delivery: an MTA's repeated delay notices are one failure.
    count = len({("d", d) if d is not None else ("m", m) for d, m in rows})
    if count < conf.SOFT_BOUNCE_LIMIT:
        return BounceEvent.Action.SOFT_COUNTED, f"{count} of {conf.SOFT_BOUNCE_LIMIT}"
    suppress(address=event.address, reason="soft_bounces",
             detail=f"{count} soft bounces; last: {detail}"[:2000], source=source,
             source_event_id=event.pk)
    return BounceEvent.Action.SUPPRESSED, f"{count} soft bounces"


def _breaker_call(event: BounceEvent, pool: str) -> Callable[[], None]:
    provider, text, reason = event.provider, event.diagnostic, event.reason
    try:
        code = int(event.smtp_code)
    except ValueError:
        code = 554 if event.status.startswith("5") else 451 if event.status else 554

    def call() -> None:
        from deliverability.gate import _get_breaker

        breaker = _get_breaker()
        if not breaker:
            return
        try:
            breaker.record(provider=provider, pool=pool, code=code, text=text, reason=reason)
        except Exception:  # Redis down: the event is stored, the count is lost (logged)
            logger.exception("breaker record failed for %s/%s", provider, pool)
    return call


def reclassify(message: InboundMessage) -> InboundMessage:
    """Re-run the classifier on the stored bytes (after the rules improved).

    A message whose raw bytes were pruned (deliverability.retention) keeps its events;
    so does a provider's event (ESP webhook): its bytes are JSON, not mail.
    """
    if message.source in REPORTED_SOURCES:
        return message
    if hashlib.sha256(message.raw).hexdigest() != message.key:
        return message
    return process(message, reclassify=True)


# --- events a provider reports (ESP webhooks, deliverability.esp) -------------------

# The InboundMessage.source of each ESP webhook; its raw bytes are the event's JSON.
REPORTED_SOURCES = frozenset({"ses", "sendgrid", "mailgun", "postmark"})


def ingest_reported(raw: bytes, *, source: str, result: dict, delivery_id: int | None,
                    mailing_id: int | None = None) -> InboundMessage:
    """One event from a provider's verified webhook: stored, then decided like a DSN result.

    ``result`` has classify's keys; ``delivery_id``/``mailing_id`` come from the message
    id we set. It acts (suppression, breaker, ``bounce_recorded``) only when that names
    one of our deliveries, of that mailing, to the event's recipient; anything else is
    recorded and reviewed, never acted on. The same bytes twice change nothing.
    """
    message = store(bytes(raw), source=source)
    if message.processed_at is not None:
        return message
    info = _resolve(delivery_id)
    tied = (info is not None and (mailing_id is None or info.get("mailing_id") == mailing_id)
            and normalise(str(result.get("recipient") or "")) == normalise(info["address"]))
    with transaction.atomic():
        locked = InboundMessage.objects.select_for_update().get(pk=message.pk)
        if locked.processed_at is not None:
            return locked
        event = BounceEvent(message=locked, position=0)
        _fill(event, result, delivery_id if tied else None, info if tied else None,
              single=True)
        event.save()
        if tied:
            _act(event, locked, info)
        else:
            event.action = BounceEvent.Action.NONE
            event.action_detail = "not tied to a delivery of ours: recorded only"
            event.save(update_fields=["action", "action_detail"])
        locked.outcome = event.kind[:64]
        locked.processed_at = timezone.now()
        locked.save(update_fields=["outcome", "processed_at"])
    return locked
