"""The optional webhook called on every breaker transition (BREAKER_WEBHOOK_URL).

Every body is signed as the Standard Webhooks specification describes
(source: github.com/standard-webhooks/standard-webhooks, spec/standard-webhooks.md):
``webhook-id`` (unique per message), ``webhook-timestamp`` (Unix seconds) and
``webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``, keyed
with BREAKER_WEBHOOK_SECRET. A receiver recomputes the MAC, compares in constant
time and refuses timestamps more than five minutes away from its clock (replays).
A ``whsec_<base64>`` secret is the base64-decoded bytes, as the specification's
libraries expect; any other secret is its UTF-8 bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.request
import uuid

from django.core.exceptions import ImproperlyConfigured

from deliverability import conf
from deliverability.models import BreakerTransition


def transition_payload(transition: BreakerTransition, provider_info=None) -> dict:
    return {
        "event": "breaker.transition",
        "provider": transition.provider,
        "provider_name": provider_info.name if provider_info else transition.provider,
        "pool": transition.pool,
        "from": transition.from_state,
        "to": transition.to_state,
        "level": transition.level,
        "class": transition.klass,
        "rule": transition.rule_id,
        "reason": transition.reason,
        "reply": transition.reply,
        "until": transition.until.isoformat() if transition.until else None,
        "actor": transition.actor,
        "at": transition.created_at.isoformat(),
        "postmaster_url": provider_info.postmaster_url if provider_info else "",
        "delisting_url": provider_info.delisting_url if provider_info else "",
    }


def secret_bytes(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_"):])
    return secret.encode()


def signature_headers(body: bytes, secret: str, *, message_id: str | None = None,
                      timestamp: int | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``."""
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{message_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": "v1," + base64.b64encode(mac).decode()}


def post_json(url: str, payload: dict, timeout: float = 10.0) -> int:
    """POST ``payload`` signed with BREAKER_WEBHOOK_SECRET; never unsigned."""
    secret = conf.BREAKER_WEBHOOK_SECRET
    if not secret:
        raise ImproperlyConfigured("BREAKER_WEBHOOK_SECRET is not set: webhooks are signed")
    body = json.dumps(payload).encode()
    request = urllib.request.Request(  # noqa: S310 - the operator configures an http(s) URL
        url, data=body, method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "postwarden-breaker",
                 **signature_headers(body, secret)},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return response.status
