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


def bounce_for(name: str, delivery: Delivery, *, n: int = 1) -> bytes:
    """A fixture with its fake ``bounces+dNN@`` address replaced by the delivery's VERP one."""
    path = FIXTURES / ("intake" if name == "mailbox_full" else "bounces") / f"{name}.eml"
    raw = path.read_bytes()
    raw = raw.replace(b"__VERP__", return_path(delivery).encode())
    raw = raw.replace(b"__RCPT__", delivery.address.encode()).replace(b"__N__", str(n).encode())
    return re.sub(rb"bounces\+d\d+@news\.example\.com", return_path(delivery).encode(), raw)
