"""What ties an inbound report to one delivery of ours (pure code, no database).

Anyone can mail the bounce domain, write any ``From:`` and name any recipient
in a report body. A report may act only on a delivery it is tied to by
something an outsider cannot forge (DESIGN.md, "Trust"):

1. the envelope: the VERP return path the report was sent to (SMTP listener
   RCPT, ``ingest_bounce --recipient``), whose token is an HMAC of the
   delivery id; or
2. the returned headers (IMAP, a pipe without recipient, an unknown return
   path): our Message-ID *and*, for the same delivery, a signed token of ours
   (the ``X-PW-Delivery`` header sending adds, or the VERP return path).

The Message-ID alone is guessable (``<pw.MAILING.DELIVERY@domain>``); the
token is not. Whoever holds a token got that message, so the most a forger
can do with it is act on their own delivery and address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from deliverability import verp

# The header sending adds to every bulk message (sending.compose).
SIGNED_HEADER = "X-PW-Delivery"

# The report's own headers end at the first empty line; evidence is read after it.
_BODY_START = re.compile(rb"\r?\n\r?\n")
# Returned headers as MTAs quote them: at a line start, maybe indented or "> "-quoted.
_OUR_MESSAGE_ID = re.compile(
    rb"^[ \t>]*message-id:[ \t]*(?:\r?\n[ \t]+)?<pw\.\d{1,19}\.(\d{1,19})@",
    re.IGNORECASE | re.MULTILINE)
_SIGNED = re.compile(rb"^[ \t>]*x-pw-delivery:[ \t]*([0-9a-z]{1,13}-[a-z2-7]{10})\b",
                     re.IGNORECASE | re.MULTILINE)
_VERP_ANYWHERE = re.compile(rb"bounces\+[0-9a-z]{1,13}-[a-z2-7]{10}@[a-z0-9.-]{1,253}",
                            re.IGNORECASE)
SCAN_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Tie:
    """The delivery a report is about, and how we know; or why we do not."""

    delivery_id: int | None
    how: str = ""  # "envelope" | "returned headers"
    problem: str = ""  # for review when nothing ties

    @property
    def tied(self) -> bool:
        return self.delivery_id is not None


NO_EVIDENCE = ("no VERP token in the envelope, and the returned headers do not carry our "
               f"Message-ID together with our signed {SIGNED_HEADER} header or VERP return path")


def envelope_delivery(envelope_recipients) -> int | None:
    """The delivery named by the first VERP return path among the envelope recipients."""
    for address in envelope_recipients:
        found = verp.decode(address)
        if found is not None:
            return found
    return None


def returned_header_deliveries(raw: bytes) -> tuple[set[int], set[int]]:
    """(deliveries named by our Message-IDs, deliveries named by our signed tokens)."""
    head = raw[:SCAN_BYTES]
    start = _BODY_START.search(head)
    body = head[start.end():] if start else b""
    message_ids = {int(m) for m in _OUR_MESSAGE_ID.findall(body)}
    signed = {found for token in _SIGNED.findall(body)
              if (found := verp.decode_token(token.decode("ascii"))) is not None}
    signed |= {found for address in _VERP_ANYWHERE.findall(body)
               if (found := verp.decode(address.decode("ascii"))) is not None}
    return message_ids, signed


_MAILTO = re.compile(r"^unsubscribe\+([0-9a-z]{1,13}-[a-z2-7]{16})@(.+)$", re.IGNORECASE)


def mailto_unsubscribe_token(address: str, domains) -> str | None:
    """The token of an ``unsubscribe+TOKEN@domain`` address (RFC 2369 mailto), or None.

    Only the shape is checked here; newsletter checks the signature."""
    match = _MAILTO.match(address.strip().strip("<>"))
    if not match or match.group(2).lower() not in {d.lower() for d in domains if d}:
        return None
    return match.group(1).lower()


def tie_to_delivery(raw: bytes, envelope_recipients=()) -> Tie:
    found = envelope_delivery(envelope_recipients)
    if found is not None:
        return Tie(found, "envelope")
    message_ids, signed = returned_header_deliveries(raw)
    both = message_ids & signed
    if len(both) == 1:
        return Tie(both.pop(), "returned headers")
    if len(both) > 1:
        return Tie(None, problem="the returned headers name several of our deliveries")
    if signed and message_ids:
        return Tie(None, problem="our Message-ID and our signed token in the returned headers "
                                 "name different deliveries")
    if signed:
        return Tie(None, problem="a signed token of ours but not our Message-ID in the "
                                 "returned headers")
    return Tie(None, problem=NO_EVIDENCE)
