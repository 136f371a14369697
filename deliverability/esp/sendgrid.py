"""SendGrid's signed event webhook.

Verification (twilio.com/docs/sendgrid/for-developers/tracking-events/
getting-started-event-webhook-security-features): ECDSA (P-256, SHA-256) over the
``X-Twilio-Email-Event-Webhook-Timestamp`` header followed by the raw body, the
signature base64 DER in ``X-Twilio-Email-Event-Webhook-Signature``, checked with
the account's verification key. A timestamp older than SENDGRID_WEBHOOK_MAX_AGE_S
and a signature seen before (Redis) are refused.

Events (twilio.com/docs/sendgrid/for-developers/tracking-events/event): a JSON
array; ``bounce`` (``type`` bounce or blocked, ``reason`` the remote answer,
``status``, ``bounce_classification``), ``dropped``, ``deferred``,
``delivered``, ``spamreport``; ``smtp-id`` is the Message-ID of mail we relayed.
"""

from __future__ import annotations

import base64
import binascii
import json
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from deliverability.esp import conf
from deliverability.esp.base import Malformed, Refused, record, replay_guard, result

SOURCE = "sendgrid"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


def public_key(text: str) -> ec.EllipticCurvePublicKey:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
    else:
        key = serialization.load_der_public_key(base64.b64decode(text))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an elliptic curve key")
    return key


def verify(body: bytes, signature: str | None, timestamp: str | None) -> replay_guard:
    if not conf.SENDGRID_WEBHOOK_PUBLIC_KEY:
        raise Refused("SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
    if not signature or not timestamp or not timestamp.isdigit() or len(timestamp) > 12:
        raise Refused("signature or timestamp header missing")
    if abs(time.time() - int(timestamp)) > conf.SENDGRID_WEBHOOK_MAX_AGE_S:
        raise Refused("timestamp outside the accepted window")
    try:
        der = base64.b64decode(signature, validate=True)
        public_key(conf.SENDGRID_WEBHOOK_PUBLIC_KEY).verify(
            der, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise Refused("bad signature") from exc
    return replay_guard(SOURCE, base64.b64encode(der).decode(),
                        conf.SENDGRID_WEBHOOK_MAX_AGE_S)


def handle(body: bytes, headers) -> dict:
    with verify(body, headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER)):
        return _take(body)


def _take(body: bytes) -> dict:
    try:
        events = json.loads(body)
    except ValueError as exc:
        raise Malformed("body is not JSON") from exc
    if not isinstance(events, list):
        raise Malformed("body is not a JSON array of events")
    count = 0
    for event in events:
        if not isinstance(event, dict):
            continue
        outcome = _outcome(event)
        if outcome is not None:
            record(SOURCE, event, outcome, event.get("smtp-id"), event.get("pw_message_id"))
            count += 1
    return {"recorded": count}


# bounce_classification (SendGrid's own grouping) -> ours, when the reason text decides nothing.
_CLASSIFICATIONS = {
    "Invalid Address": ("hard", "userunknown"),
    "Mailbox Unavailable": ("soft", "mailboxfull"),
    "Reputation": ("block", "blocked"),
    "Content": ("block", "contenterror"),
    "Frequency or Volume Too High": ("block", "speeding"),
    "Technical": ("soft", "systemerror"),
}
# dropped: SendGrid did not send, for a reason it keeps about the address.
_DROPPED = {
    "Bounced Address": ("hard", "suppressed"),
    "Invalid": ("hard", "userunknown"),
    "Spam Reporting Address": ("complaint", "feedback"),
}


def _outcome(event: dict) -> dict | None:
    kind = event.get("event")
    recipient = str(event.get("email") or "")
    text, status = str(event.get("reason") or event.get("response") or ""), str(
        event.get("status") or "")
    if kind == "bounce":
        blocked = event.get("type") == "blocked"
        ours, reason = _CLASSIFICATIONS.get(str(event.get("bounce_classification") or ""),
                                            ("block", "blocked") if blocked else
                                            ("hard", "undefined"))
        return result(ours, reason, recipient=recipient, text=text, status=status)
    if kind == "deferred":
        return result("soft", "undefined", recipient=recipient, text=text, delayed=True)
    if kind == "dropped":
        ours, reason = _DROPPED.get(str(event.get("reason") or ""), ("unknown", "undefined"))
        return result(ours, reason, recipient=recipient)
    if kind == "spamreport":
        return result("complaint", "feedback", recipient=recipient)
    if kind == "delivered":
        return result("delivered", "delivered", recipient=recipient, text=text)
    return None  # processed, open, click, unsubscribe...: not bounce intake's business
