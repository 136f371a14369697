"""The consent log: versioned consent texts and append-only records."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from newsletter.models import ConsentRecord, ConsentText, MailingList, Subscription

MAX_USER_AGENT = 400


@dataclass(frozen=True)
class Client:
    """Who is asking: recorded in the consent log."""

    ip: str | None = None
    user_agent: str = ""
    source: str = ConsentRecord.Source.FORM


def consent_text_current(mailing_list: MailingList) -> ConsentText:
    """The version of the list's consent text shown now (a new version when it changed)."""
    text = str(mailing_list.consent_text)
    latest = (ConsentText.objects.filter(mailing_list=mailing_list)
              .order_by("-version").first())
    if latest is not None and latest.text == text:
        return latest
    for _attempt in range(3):
        version = (ConsentText.objects.filter(mailing_list=mailing_list)
                   .aggregate(v=Max("version"))["v"] or 0) + 1
        try:
            with transaction.atomic():
                return ConsentText.objects.create(
                    mailing_list=mailing_list, version=version, text=text,
                    sha256=ConsentText.digest(text))
        except IntegrityError:  # another process wrote this version first
            latest = (ConsentText.objects.filter(mailing_list=mailing_list)
                      .order_by("-version").first())
            if latest is not None and latest.text == text:
                return latest
    raise RuntimeError("could not record the consent text version")


def consent_text_for(mailing_list: MailingList, version_id: int | str | None) -> ConsentText:
    """The version the person was shown (a form's hidden field), else the current one."""
    if version_id:
        try:
            number = int(version_id)
        except (TypeError, ValueError):
            number = 0
        shown = (ConsentText.objects.filter(mailing_list=mailing_list, id=number).first()
                 if 0 < number < 2**31 else None)
        if shown is not None:
            return shown
    return consent_text_current(mailing_list)


def client_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def user_agent_clean(value: str | None) -> str:
    value = "".join(ch if ch.isprintable() else " " for ch in (value or ""))
    return value[:MAX_USER_AGENT]


def consent_record_add(
    *, event: str, source: str, subscription: Subscription, address: str,
    ip: str | None = None, user_agent: str = "", consent_text: ConsentText | None = None,
    detail: str = "", subscriber_import_id: int | None = None, address_sha256: str = "",
    at: datetime | None = None,
) -> ConsentRecord:
    """Append a record; ``at`` is when it happened (a queued signup: when it was sent)."""
    mailing_list = subscription.mailing_list
    return ConsentRecord.objects.create(
        created_at=at or timezone.now(),
        event=event, source=source, subscription=subscription, mailing_list=mailing_list,
        list_slug=mailing_list.slug, address=address,
        address_sha256=address_sha256 or ConsentRecord.hash_address(address), ip=client_ip(ip),
        user_agent=user_agent_clean(user_agent), consent_text=consent_text,
        detail=detail[:400], subscriber_import_id=subscriber_import_id,
    )
