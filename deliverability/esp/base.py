"""What every provider's hook shares: refusals, our message id, classification, intake.

An event is tied to a delivery by the Message-ID our engine sets
(``<pw.<mailing>.<delivery>@<domain>>``, sending.compose), which the providers
hand back; intake then also checks that delivery went to the event's recipient.
"""

from __future__ import annotations

import hashlib
import json
import re

from config.redis import get_redis
from deliverability.classify import classify_reply
from deliverability.intake import ingest_reported
from deliverability.models import InboundMessage

_OUR_MESSAGE_ID = re.compile(r"<?pw\.([0-9]{1,18})\.([0-9]{1,18})@[A-Za-z0-9.-]{1,253}>?")
_SMTP_CODE = re.compile(r"(?<![0-9])[245][0-9]{2}(?![0-9])")


class Refused(Exception):
    """The post is not verifiably from the provider (403): nothing is recorded."""


class Malformed(Exception):
    """Verified, or not yet checkable, but not the provider's documented shape (400)."""


class replay_guard:
    """Take a one-time value (a signature, a token) in Redis for ``ttl`` seconds; a value
    already taken is a replay. If what follows fails, the value is given back, so the
    provider's retry of the same post is not mistaken for one."""

    def __init__(self, name: str, value: str, ttl: int):
        self.key = f"deliverability:esp:{name}:{hashlib.sha256(value.encode()).hexdigest()}"
        self.ttl = ttl

    def __enter__(self):
        if not get_redis().set(self.key, "1", nx=True, ex=self.ttl):
            raise Refused("seen before (replay)")
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and not issubclass(exc_type, Refused | Malformed):
            get_redis().delete(self.key)
        return False


def our_message(*values) -> tuple[int | None, int | None]:
    """(mailing id, delivery id) from the first value holding our Message-ID."""
    for value in values:
        if isinstance(value, str):
            found = _OUR_MESSAGE_ID.search(value)
            if found:
                return int(found.group(1)), int(found.group(2))
    return None, None


def result(kind: str, reason: str, *, recipient: str, text: str = "", code=None,
           status: str = "", delayed: bool = False, provider: str = "") -> dict:
    """The event as classify's result. When the provider passes the remote server's SMTP
    answer, the DSN classifier decides (block vs bad address); else the provider's type."""
    text = str(text or "")[:4000]
    if text and kind in ("hard", "soft", "block") and (code or _SMTP_CODE.search(text)):
        classified = classify_reply(code, text, status=status or None, recipient=recipient)
        if classified.get("kind") not in ("unknown", "delivered", None):
            classified["recipient"] = recipient
            if delayed:
                classified["action"] = "delayed"
            return classified
    return {"recipient": recipient, "kind": kind, "reason": reason, "status": status or "",
            "smtp_code": str(code or "")[:8], "hard": kind == "hard", "diagnostic": text,
            "remote_mta": "", "provider": provider, "action": "delayed" if delayed else ""}


def record(source: str, event: dict, outcome: dict, *message_ids) -> InboundMessage:
    """Store the event (its JSON: the same event again changes nothing) and decide."""
    raw = json.dumps({"provider": source, "event": event}, sort_keys=True,
                     ensure_ascii=False, default=str).encode("utf-8")
    mailing_id, delivery_id = our_message(*message_ids)
    return ingest_reported(raw, source=source, result=outcome, delivery_id=delivery_id,
                           mailing_id=mailing_id)
