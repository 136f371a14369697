"""Mailgun webhooks.

Verification (documentation.mailgun.com/docs/mailgun/user-manual/webhooks/
securing-webhooks): ``signature.signature`` is the hex HMAC-SHA256, keyed with the
webhook signing key, of ``timestamp`` followed by ``token``. As the documentation
advises, a token is taken once (kept in Redis) and a timestamp far from now is
refused (MAILGUN_WEBHOOK_MAX_AGE_S).

Events (documentation.mailgun.com/docs/mailgun/user-manual/events/): ``event-data``
with ``event`` failed (``severity`` permanent or temporary, ``reason``,
``delivery-status`` with the remote ``code`` and ``message``), complained,
delivered; ``message.headers.message-id`` is the Message-ID we set.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from deliverability.esp import conf
from deliverability.esp.base import Malformed, Refused, record, replay_guard, result

SOURCE = "mailgun"


def verify(signature: dict) -> replay_guard:
    if not conf.MAILGUN_WEBHOOK_SIGNING_KEY:
        raise Refused("MAILGUN_WEBHOOK_SIGNING_KEY is not set")
    timestamp, token, given = (str(signature.get(k) or "") for k in (
        "timestamp", "token", "signature"))
    if not (timestamp.isdigit() and len(timestamp) <= 12 and token and given):
        raise Refused("signature fields missing")
    expected = hmac.new(conf.MAILGUN_WEBHOOK_SIGNING_KEY.encode(),
                        (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given.lower()):
        raise Refused("bad signature")
    if abs(time.time() - int(timestamp)) > conf.MAILGUN_WEBHOOK_MAX_AGE_S:
        raise Refused("timestamp outside the accepted window")
    # Kept for twice the window: a token can never come back while its timestamp passes.
    return replay_guard(SOURCE, token, conf.MAILGUN_WEBHOOK_MAX_AGE_S * 2)


def handle(body: bytes) -> dict:
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise Refused("body is not JSON: nothing signed") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("signature"), dict):
        raise Refused("no signature")
    with verify(payload["signature"]):
        return _take(payload)


def _take(payload: dict) -> dict:
    event = payload.get("event-data")
    if not isinstance(event, dict):
        raise Malformed("no event-data")
    outcome = _outcome(event)
    if outcome is None:
        return {"recorded": 0}
    message = event.get("message") if isinstance(event.get("message"), dict) else {}
    headers = message.get("headers") if isinstance(message.get("headers"), dict) else {}
    variables = event.get("user-variables") if isinstance(event.get("user-variables"),
                                                          dict) else {}
    record(SOURCE, event, outcome, headers.get("message-id"), variables.get("pw_message_id"))
    return {"recorded": 1}


# failed + reason, when the remote answer decides nothing.
_PERMANENT = {
    "bounce": ("hard", "userunknown"),
    "suppress-bounce": ("hard", "suppressed"),
    "suppress-complaint": ("complaint", "feedback"),
    "espblock": ("block", "blocked"),
    "old": ("soft", "expired"),
}


def _outcome(event: dict) -> dict | None:
    kind = event.get("event")
    recipient = str(event.get("recipient") or "")
    status = event.get("delivery-status") if isinstance(event.get("delivery-status"),
                                                        dict) else {}
    text = str(status.get("message") or status.get("description") or "")
    code = status.get("code") if isinstance(status.get("code"), int) else None
    if kind == "failed":
        if event.get("severity") == "temporary":
            return result("soft", "undefined", recipient=recipient, text=text, code=code,
                          delayed=True)
        ours, reason = _PERMANENT.get(str(event.get("reason") or ""), ("hard", "undefined"))
        if ours == "complaint":
            return result(ours, reason, recipient=recipient)
        return result(ours, reason, recipient=recipient, text=text, code=code,
                      status=str(status.get("enhanced-code") or ""))
    if kind == "complained":
        return result("complaint", "feedback", recipient=recipient)
    if kind == "delivered":
        return result("delivered", "delivered", recipient=recipient)
    return None  # accepted, opened, clicked, unsubscribed, stored...
