"""Postmark webhooks.

Verification (postmarkapp.com/developer/webhooks/webhooks-overview): Postmark
signs nothing; it sends the HTTP basic auth credentials put in the webhook URL,
compared here in constant time (POSTMARK_WEBHOOK_USER / _PASSWORD). Unset: every
post is refused.

Events (postmarkapp.com/developer/webhooks/bounce-webhook and
spam-complaint-webhook): ``RecordType`` Bounce with ``Type``/``TypeCode`` from
Postmark's bounce types and ``Details`` (often the remote answer), SpamComplaint,
Delivery. Postmark gives its own ``MessageID``; ours is found in ``Metadata``
(``pw-message-id``, set with an ``X-PM-Metadata-pw-message-id`` header) or in the
bounce ``Content`` when the webhook includes it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json

from deliverability.esp import conf
from deliverability.esp.base import Malformed, Refused, record, result

SOURCE = "postmark"

# Postmark's bounce types (postmarkapp.com/developer/api/bounce-api#bounce-types).
BOUNCE_TYPES = {
    "HardBounce": ("hard", "userunknown"),
    "Transient": ("soft", "undefined"),
    "Unsubscribe": ("unknown", "undefined"),
    "Subscribe": ("unknown", "undefined"),
    "AutoResponder": ("auto_reply", "vacation"),
    "AddressChange": ("auto_reply", "hasmoved"),
    "DnsError": ("soft", "networkerror"),
    "SpamNotification": ("block", "spamdetected"),
    "OpenRelayTest": ("unknown", "undefined"),
    "Unknown": ("unknown", "undefined"),
    "SoftBounce": ("soft", "undefined"),
    "VirusNotification": ("block", "virusdetected"),
    "ChallengeVerification": ("auto_reply", "vacation"),
    "BadEmailAddress": ("hard", "userunknown"),
    "SpamComplaint": ("complaint", "feedback"),
    "ManuallyDeactivated": ("unknown", "undefined"),
    "Unconfirmed": ("unknown", "undefined"),
    "Blocked": ("block", "blocked"),
    "SMTPApiError": ("unknown", "undefined"),
    "InboundError": ("unknown", "undefined"),
    "DMARCPolicy": ("block", "policyviolation"),
    "TemplateRenderingFailed": ("unknown", "undefined"),
}


def verify(authorization: str | None) -> None:
    if not (conf.POSTMARK_WEBHOOK_USER and conf.POSTMARK_WEBHOOK_PASSWORD):
        raise Refused("POSTMARK_WEBHOOK_USER/PASSWORD are not set")
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        raise Refused("basic auth required")
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode(
            "utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise Refused("basic auth unreadable") from exc
    ok_user = hmac.compare_digest(user.encode(), conf.POSTMARK_WEBHOOK_USER.encode())
    ok_password = hmac.compare_digest(password.encode(), conf.POSTMARK_WEBHOOK_PASSWORD.encode())
    if not (sep and ok_user and ok_password):
        raise Refused("wrong credentials")


def handle(body: bytes, authorization: str | None) -> dict:
    verify(authorization)
    try:
        event = json.loads(body)
    except ValueError as exc:
        raise Malformed("body is not JSON") from exc
    if not isinstance(event, dict):
        raise Malformed("body is not a JSON object")
    outcome = _outcome(event)
    if outcome is None:
        return {"recorded": 0}
    metadata = event.get("Metadata") if isinstance(event.get("Metadata"), dict) else {}
    record(SOURCE, event, outcome, metadata.get("pw-message-id"), event.get("Content"))
    return {"recorded": 1}


def _outcome(event: dict) -> dict | None:
    record_type = event.get("RecordType")
    recipient = str(event.get("Email") or event.get("Recipient") or "")
    if record_type == "Bounce":
        kind, reason = BOUNCE_TYPES.get(str(event.get("Type") or ""), ("unknown", "undefined"))
        if kind == "complaint":
            return result(kind, reason, recipient=recipient)
        return result(kind, reason, recipient=recipient, text=str(event.get("Details") or ""))
    if record_type == "SpamComplaint":
        return result("complaint", "feedback", recipient=recipient)
    if record_type == "Delivery":
        return result("delivered", "delivered", recipient=recipient)
    return None  # Open, Click, SubscriptionChange...
