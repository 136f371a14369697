"""Bounce intake: record, then decide.

Every inbound message (SMTP listener, MTA pipe, IMAP mailbox) ends in
``ingest`` / ``ingest_file``: the raw bytes are stored first (compressed,
keyed by their sha256, so the same message twice changes nothing), then
classified, tied to a delivery (``deliverability.evidence``) and acted on.
Each action is written on the event that caused it.

A report acts only on the delivery it is tied to, and only on that
delivery's address; other recipients it names are recorded, never acted on.
A report that would act but is tied to nothing goes to review
(``InboundMessage.review_reason``) and does nothing else. Each delivery
counts once:

- hard: the delivery's address is suppressed (``hard_bounce``);
- soft: counted; ``SOFT_BOUNCE_LIMIT`` soft bounces for distinct deliveries
  with no successful delivery in between suppress it (``soft_bounces``);
- complaint (an ARF report, RFC 5965, only): ``complaint_received`` is
  announced (newsletter unsubscribes) and the address is suppressed; an ARF
  ``opt-out`` ends that delivery's subscription; an "unsubscribe" mail is no
  complaint and acts only through a mailto unsubscribe token;
- block: nothing against the address; the provider breaker counts it (the
  first signal of the delivery; never for a delivery that was not sent);
- auto_reply, delivered, unknown: nothing.

Mail to ``unsubscribe+TOKEN@`` (RFC 2369 ``List-Unsubscribe: <mailto:…>``)
ends the subscription whose signed token it carries; the ``From:`` is never read.

deliverability imports neither sending nor newsletter: sending registers how
to look up a delivery (``register_delivery_source``) and reacts to
``bounce_recorded`` by marking the delivery bounced; newsletter registers how
to read a mailto token (``register_unsubscribe_token_reader``) and reacts to
``unsubscribe_requested``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import BinaryIO

from django.db import transaction
from django.utils import timezone

from deliverability import conf
from deliverability.evidence import Tie, mailto_unsubscribe_token, tie_to_delivery
from deliverability.inbound_store import (
    SCAN_BYTES,
    clean_text,
    header_text,
    raw_head,
    store,
    store_file,
    top_headers,
)
from deliverability.models import BounceEvent, InboundMessage
from deliverability.signals import bounce_recorded, complaint_received, unsubscribe_requested
from deliverability.suppression import normalise, suppress

logger = logging.getLogger(__name__)

# Headers an MTA uses to say which address a message was delivered to.
_ENVELOPE_HEADERS = ("X-Original-To", "Delivered-To", "Envelope-To", "X-Envelope-To", "To")
_ACTING_KINDS = ("hard", "soft", "complaint", "block")
# Kinds that feed a counter (soft bounces, guardrails, the breaker): once per delivery.
_COUNTED_KINDS = ("soft", "complaint", "block")
# RFC 5965 section 2: an ARF report is multipart/report; report-type=feedback-report.
_ARF = re.compile(r"multipart/report\b.*\breport-type\s*=\s*\"?feedback-report", re.I | re.S)
# Feedback types that are not a recipient's complaint about the mail: RFC 5965's
# not-spam, and RFC 6591's auth-failure (a report to the domain owner that a message
# failed SPF/DKIM/DMARC, about the message, not from a recipient who complained).
_NOT_COMPLAINTS = {"not-spam", "auth-failure"}
_OPT_OUT = {"opt-out", "unsubscribe"}

# Hooks registered by the sending app (see register_delivery_source).
_resolve_delivery: Callable[[int], dict | None] | None = None
_last_success: Callable[[str, Iterable[int]], datetime | None] | None = None
# Registered by newsletter: a mailto token -> subscription id, or None (forged).
_read_unsubscribe_token: Callable[[str], int | None] | None = None


def register_delivery_source(*, resolve: Callable[[int], dict | None],
                             last_success: Callable[[str, Iterable[int]], datetime | None]
                             ) -> None:
    """How intake learns about deliveries without importing the app that owns them.

    ``resolve(delivery_id)`` returns ``{"address", "provider", "pool", "mailing_id",
    "campaign", "subscription_id", "sent"}`` (and optionally ``breaker_key``: pool and
    egress IP) or None (``sent``: the message left us);
    ``last_success(address, exclude_delivery_ids)`` returns when mail to the address
    was last accepted and has not bounced, or None.
    """
    global _resolve_delivery, _last_success
    _resolve_delivery, _last_success = resolve, last_success


def register_unsubscribe_token_reader(reader: Callable[[str], int | None]) -> None:
    """How intake checks a mailto unsubscribe token (newsletter signs them)."""
    global _read_unsubscribe_token
    _read_unsubscribe_token = reader


def unsubscribe_token_valid(token: str) -> bool:
    """Whether a mailto unsubscribe token verifies (no database: an HMAC)."""
    return _read_unsubscribe_token is not None and _read_unsubscribe_token(token) is not None


def ingest(raw: bytes, *, source: str, envelope_recipients: Iterable[str] = ()) -> InboundMessage:
    """Store, then classify and act (once). Raises only when the message could not be stored."""
    return ingest_file(io.BytesIO(bytes(raw)), source=source,
                       envelope_recipients=envelope_recipients)


def ingest_file(stream: BinaryIO, *, source: str,
                envelope_recipients: Iterable[str] = ()) -> InboundMessage:
    """``ingest`` for a message in a (spooled) file: read in chunks, never whole."""
    message = store_file(stream, source=source, envelope_recipients=list(envelope_recipients))
    if message.processed_at is None:
        try:
            process(message)
        except Exception as exc:  # stored is what matters; the error is kept for review
            logger.exception("bounce %s: processing failed", message.pk)
            InboundMessage.objects.filter(pk=message.pk).update(error=clean_text(repr(exc), 2000))
            InboundMessage.objects.filter(pk=message.pk, processed_at=None).update(
                outcome="error")
        message = InboundMessage.objects.defer("raw_compressed").get(pk=message.pk)
    return message


# --- matching --------------------------------------------------------------------

def match_delivery(raw: bytes, envelope_recipients: Iterable[str] = ()) -> int | None:
    """The delivery a message is tied to (see deliverability.evidence), or None."""
    return tie_to_delivery(raw, list(envelope_recipients)).delivery_id


def _resolve(delivery_id: int | None) -> dict | None:
    if delivery_id is None or _resolve_delivery is None:
        return None
    return _resolve_delivery(delivery_id)


def _is_arf(headers) -> bool:
    return bool(_ARF.search(header_text(headers, "Content-Type")))


def _mailto_subscriptions(headers, envelope: list[str]) -> dict[str, int | None]:
    """{mailto token: subscription id or None when forged} from the envelope and the
    headers the receiving MTA writes (the token is the authority, wherever it is)."""
    domains = conf.UNSUBSCRIBE_MAILTO_DOMAINS
    if not domains:
        return {}
    candidates = list(envelope)
    for name in _ENVELOPE_HEADERS:
        candidates += [p for p in re.split(r"[,\s<>]+", header_text(headers, name)) if "@" in p]
    found: dict[str, int | None] = {}
    for address in candidates:
        token = mailto_unsubscribe_token(address, domains)
        if token and token not in found:
            found[token] = _read_unsubscribe_token(token) if _read_unsubscribe_token else None
    return found


# --- deciding ------------------------------------------------------------------

def process(message: InboundMessage, *, reclassify: bool = False) -> InboundMessage:
    """Classify the stored bytes and act; rerunning only acts on events whose kind changed."""
    from deliverability.classify import classify_message, unknown_result

    head = raw_head(message, SCAN_BYTES)
    headers = top_headers(head)
    envelope = [a for a in message.envelope_recipients.split(",") if a]
    mailto = _mailto_subscriptions(headers, envelope)
    error = ""
    if mailto:
        results = [_unsubscribe_result(token, subscription) for token, subscription
                   in mailto.items()]
    else:
        try:
            # Bounded: the notice, the status fields and the returned headers come first;
            # the parser never sees more than CLASSIFY_BYTES of a large message.
            results = classify_message(head[:conf.BOUNCE_CLASSIFY_BYTES])
        except Exception as exc:  # the classifier must not lose a message
            logger.exception("bounce %s: classifier raised", message.pk)
            results, error = [], repr(exc)
    results = results or [unknown_result()]
    tie = tie_to_delivery(head, envelope) if not mailto else Tie(None)
    info = _resolve(tie.delivery_id)
    problem = tie.problem
    if tie.tied and info is None:
        problem = f"the token names delivery {tie.delivery_id}, which we do not know"
    elif info is not None and not info.get("sent", True):
        problem = f"delivery {tie.delivery_id} was never sent: a report about it counts nothing"
        info = None
    context = {"info": info, "arf": _is_arf(headers), "problem": problem,
               "delivery_id": tie.delivery_id if info is not None else None}
    review = ""
    with transaction.atomic():
        locked = (InboundMessage.objects.select_for_update().defer("raw_compressed")
                  .get(pk=message.pk))
        if locked.processed_at is not None and not reclassify:
            return locked
        existing = {e.position: e for e in locked.events.all()}
        for position, result in enumerate(results):
            event = existing.get(position) or BounceEvent(message=locked, position=position)
            previous_kind = event.kind if event.pk and event.action else None
            _fill(event, result, context, single=len(results) == 1)
            event.save()
            if previous_kind != event.kind:
                _act(event, locked, context)
            if (event.kind in _ACTING_KINDS and event.delivery_id is None and problem
                    and not review):
                review = problem
        locked.events.filter(position__gte=len(results)).delete()
        kinds = sorted({r.get("kind") or "unknown" for r in results})
        locked.outcome = ",".join(kinds)[:64]
        locked.error = clean_text(error, 2000)
        locked.review_reason = review[:255]
        locked.processed_at = timezone.now()
        locked.save(update_fields=["outcome", "error", "review_reason", "processed_at"])
    return locked


def _unsubscribe_result(token: str, subscription_id: int | None) -> dict:
    return {"kind": "unsubscribe", "reason": "feedback", "recipient": "",
            "subscription_id": subscription_id, "token": token,
            "diagnostic": f"mailto unsubscribe token {token[:40]}"}


def _fill(event: BounceEvent, result: dict, context: dict, *, single: bool) -> None:
    info = context["info"]
    recipient = clean_text(result.get("recipient"), 320)
    original = clean_text(result.get("original_recipient"), 320)
    # Only the delivery's own address is acted on. A single-recipient report may
    # name a forwarding target; a report listing others names them, nothing more.
    mine = info is not None and (
        single or normalise(info["address"]) in {normalise(recipient), normalise(original)})
    event.recipient = recipient or (info["address"] if mine else "")
    event.address = normalise(info["address"] if mine else recipient)[:320] if (
        mine or recipient) else ""
    event.delivery_id = context["delivery_id"] if mine else None
    event.mailing_id = info.get("mailing_id") if mine else None
    event.campaign = clean_text(info.get("campaign"), 128) if mine else ""
    event.kind = clean_text(result.get("kind") or "unknown", 16)
    event.reason = clean_text(result.get("reason"), 32)
    event.status = clean_text(result.get("status"), 16)
    event.smtp_code = clean_text(result.get("smtp_code"), 8)
    event.hard = bool(result.get("hard"))
    event.diagnostic = clean_text(result.get("diagnostic"), 4000)
    event.remote_mta = clean_text(result.get("remote_mta"), 255)
    # The breaker's key is the provider the delivery was sent to (sending's MX
    # rollup), never one a report claims: a DSN cannot aim at another provider.
    event.provider = clean_text(info.get("provider") if mine else result.get("provider"), 64)
    # RFC 3464 "Action: delayed": the remote MTA is still trying; nothing failed yet.
    event.delay_notice = result.get("action") == "delayed"
    event.feedback_type = clean_text(result.get("feedback_type"), 32).lower()
    event.unsubscribe = result if event.kind == "unsubscribe" else None


def _untied_note(event: BounceEvent, context: dict) -> str:
    if context["info"] is None:
        return f"review: {context['problem']}" if context["problem"] else "no delivery"
    return "not the address of the delivery its token names: recorded only"


def _act(event: BounceEvent, message: InboundMessage, context: dict) -> None:
    source = f"bounce:{message.source}"
    detail = f"{event.status} {event.diagnostic}".strip()[:2000]
    kind, address = event.kind, event.address
    action, note = BounceEvent.Action.NONE, ""
    if kind == "unsubscribe":
        action, note = _act_unsubscribe(event.unsubscribe, source)
    elif getattr(event, "delay_notice", False) and kind == "soft":
        note = "delay notice: still being retried"
    elif kind in _ACTING_KINDS and event.delivery_id is None:
        note = _untied_note(event, context)
    elif kind in _COUNTED_KINDS and _already_counted(event):
        note = f"this delivery already reported {kind}: one signal per delivery"
    elif kind == "hard":
        suppress(address=address, reason="hard_bounce", detail=detail, source=source,
                 source_event_id=event.pk)
        action = BounceEvent.Action.SUPPRESSED
    elif kind == "soft":
        action, note = _count_soft(event, detail, source)
    elif kind == "complaint":
        action, note = _act_complaint(event, context, detail, source)
    elif kind == "block":
        # A fact about us, not the address: only the provider breaker hears of it.
        if event.provider:
            # Keyed like SMTP-time blocks: the pool and the egress IP the message left from.
            info = context["info"]
            pool = info.get("breaker_key") or info.get("pool") or "bulk"
            transaction.on_commit(_breaker_call(event, pool), robust=True)
            action, note = BounceEvent.Action.BREAKER, f"{event.provider}/{pool}"
        else:
            note = "provider unknown"
    event.action, event.action_detail = action, note[:255]
    event.save(update_fields=["action", "action_detail"])
    if event.delivery_id is not None and action != BounceEvent.Action.NONE:
        payload = {"delivery_id": event.delivery_id, "kind": kind, "reason": event.reason,
                   "status": event.status, "diagnostic": event.diagnostic,
                   "event_id": event.pk}
        transaction.on_commit(lambda: bounce_recorded.send(sender=None, **payload), robust=True)


def _already_counted(event: BounceEvent) -> bool:
    """Another event of this kind acted for this delivery already (the first counts)."""
    return (BounceEvent.objects.filter(delivery_id=event.delivery_id, kind=event.kind)
            .exclude(pk=event.pk).exclude(action__in=["", BounceEvent.Action.NONE]).exists())


def _act_complaint(event: BounceEvent, context: dict, detail: str,
                   source: str) -> tuple[str, str]:
    if not context["arf"]:
        # Apple Mail's "unsubscribe" mails and the like: anyone can write one with any
        # From. Not a complaint; an unsubscribe acts only through the mailto token.
        return BounceEvent.Action.NONE, ("not an ARF report (RFC 5965): no complaint; "
                                         "unsubscribe by mail needs the mailto token")
    if event.feedback_type in _NOT_COMPLAINTS:
        return BounceEvent.Action.NONE, f"feedback type {event.feedback_type}: no complaint"
    info = context["info"]
    if event.feedback_type in _OPT_OUT:
        subscription_id = info.get("subscription_id")
        if subscription_id is None:
            return BounceEvent.Action.NONE, "opt-out report for mail without a subscription"
        return _act_unsubscribe({"subscription_id": subscription_id, "token": "arf"}, source)
    address, delivery_id, feedback = event.address, event.delivery_id, event.feedback_type
    transaction.on_commit(lambda: complaint_received.send(
        sender=None, address=address, feedback_type=feedback, delivery_id=delivery_id),
        robust=True)
    suppress(address=address, reason="complaint", detail=detail, source=source,
             source_event_id=event.pk)
    return BounceEvent.Action.COMPLAINT, ""


def _act_unsubscribe(result: dict, source: str) -> tuple[str, str]:
    subscription_id = result.get("subscription_id")
    if subscription_id is None:
        return BounceEvent.Action.NONE, "mailto unsubscribe token does not verify"
    transaction.on_commit(lambda: unsubscribe_requested.send(
        sender=None, subscription_id=subscription_id, source=source), robust=True)
    return BounceEvent.Action.UNSUBSCRIBED, f"subscription {subscription_id}"


def _count_soft(event: BounceEvent, detail: str, source: str) -> tuple[str, str]:
    """Suppress after SOFT_BOUNCE_LIMIT soft bounces with no success in between."""
    start = timezone.now() - timedelta(days=conf.SOFT_BOUNCE_WINDOW_DAYS)
    delivered = (BounceEvent.objects.filter(address=event.address, kind="delivered")
                 .order_by("-created_at").values_list("created_at", flat=True).first())
    start = max(start, delivered or start)
    # Only reports tied to a delivery count, each delivery once.
    soft = BounceEvent.objects.filter(address=event.address, kind="soft",
                                      delivery_id__isnull=False)
    rows = set(soft.filter(created_at__gte=start).values_list("delivery_id", flat=True))
    if _last_success is not None:
        success = _last_success(event.address, rows)
        if success is not None and success > start:
            rows = set(soft.filter(created_at__gte=success).values_list("delivery_id",
                                                                        flat=True))
    count = len(rows | {event.delivery_id})
    if count < conf.SOFT_BOUNCE_LIMIT:
        return BounceEvent.Action.SOFT_COUNTED, f"{count} of {conf.SOFT_BOUNCE_LIMIT}"
    suppress(address=event.address, reason="soft_bounces",
             detail=f"{count} soft bounces; last: {detail}"[:2000], source=source,
             source_event_id=event.pk)
    return BounceEvent.Action.SUPPRESSED, f"{count} soft bounces"


def _breaker_call(event: BounceEvent, pool: str) -> Callable[[], None]:
    provider, text, reason, delivery_id = (event.provider, event.diagnostic, event.reason,
                                           event.delivery_id)
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
            # count_rate=False: the message was counted as accepted when it went out.
            breaker.record(provider=provider, pool=pool, code=code, text=text, reason=reason,
                           delivery_id=delivery_id, late=True, count_rate=False)
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
    if not message.raw_compressed or hashlib.sha256(message.raw).hexdigest() != message.key:
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
    tied = (info is not None and info.get("sent", True)
            and (mailing_id is None or info.get("mailing_id") == mailing_id)
            and normalise(str(result.get("recipient") or "")) == normalise(info["address"]))
    problem = "" if tied else "not tied to a delivery of ours to the event's recipient"
    # A verified provider feedback loop counts as ARF does (DESIGN.md "Trust").
    context = {"info": info if tied else None, "arf": True, "problem": problem,
               "delivery_id": delivery_id if tied else None}
    with transaction.atomic():
        locked = InboundMessage.objects.select_for_update().get(pk=message.pk)
        if locked.processed_at is not None:
            return locked
        event = BounceEvent(message=locked, position=0)
        _fill(event, result, context, single=True)
        event.save()
        _act(event, locked, context)
        locked.outcome = event.kind[:64]
        if not tied and event.kind in _ACTING_KINDS:
            locked.review_reason = problem[:255]
        locked.processed_at = timezone.now()
        locked.save(update_fields=["outcome", "review_reason", "processed_at"])
    return locked
