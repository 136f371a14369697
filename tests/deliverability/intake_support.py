"""Shared pieces of the bounce intake tests: deliveries made with the ORM, fixtures with VERP."""

from __future__ import annotations

import re
from pathlib import Path

from django.utils import timezone

from deliverability import verp
from sending.models import Delivery, Mailing

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
BOUNCE_DOMAIN = "bounce.news.example.com"


def make_delivery(address: str, *, provider: str = "", reference: str = "campaign:7",
                  mailing: Mailing | None = None, sent_at=None) -> Delivery:
    mailing = mailing or Mailing.objects.create(
        reference=reference, from_email="News <news@news.example.com>",
        subject_template="June", text_template="Hello", state=Mailing.State.SENDING)
    return Delivery.objects.create(mailing=mailing, address=address, provider=provider,
                                   state=Delivery.State.SENT, sent_at=sent_at or timezone.now())


def return_path(delivery: Delivery) -> str:
    return verp.encode(delivery.id, BOUNCE_DOMAIN)


def bounce_for(name: str, delivery: Delivery, *, n: int = 1, evidence: bool = True) -> bytes:
    """A fixture with its fake ``bounces+dNN@`` address replaced by the delivery's VERP one.

    With ``evidence`` the returned headers carry what sending writes into every bulk
    message: our Message-ID and the signed X-PW-Delivery header (the first
    Message-ID after the report's own headers is replaced)."""
    path = FIXTURES / ("intake" if name == "mailbox_full" else "bounces") / f"{name}.eml"
    raw = path.read_bytes()
    raw = raw.replace(b"__VERP__", return_path(delivery).encode())
    raw = raw.replace(b"__RCPT__", delivery.address.encode()).replace(b"__N__", str(n).encode())
    raw = re.sub(rb"bounces\+d\d+@news\.example\.com", return_path(delivery).encode(), raw)
    return with_evidence(raw, delivery) if evidence else raw


def our_headers(delivery: Delivery) -> bytes:
    return (f"Message-ID: <pw.{delivery.mailing_id}.{delivery.id}@news.example.com>\n"
            f"X-PW-Delivery: {verp.token(delivery.id)}").encode()


def with_evidence(raw: bytes, delivery: Delivery) -> bytes:
    crlf = b"\r\n" in raw
    head, sep, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    body, count = re.subn(rb"(?im)^message-id:[ \t]*<[^>\n]*>\r?$", our_headers(delivery)
                          .replace(b"\\", b"\\\\"), body, count=1)
    if not count:  # no returned headers: add them as the report's last part
        closing = list(re.finditer(rb"\n--([^\s]+)--", body))
        if closing:
            at, boundary = closing[-1].start(), closing[-1].group(1)
            body = (body[:at] + b"\n--" + boundary + b"\nContent-Type: text/rfc822-headers\n\n"
                    + our_headers(delivery) + b"\n" + body[at:])
    out = head + sep + body
    return out.replace(b"\n", b"\r\n") if crlf else out
