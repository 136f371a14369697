"""Writes on subscriptions after the signup: confirm, unsubscribe, purge.

Every change of consent appends a ``ConsentRecord``. Signups and their
confirmation mails are in ``newsletter.services.signup``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from enum import StrEnum

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from deliverability.suppression import is_suppressed
from newsletter import conf, confirm_budget
from newsletter.exceptions import InvalidAddress
from newsletter.models import ConsentRecord, ConsentText, Subscriber, Subscription
from newsletter.services.consent import Client, consent_record_add
from newsletter.validation import address_clean

logger = logging.getLogger(__name__)

Event = ConsentRecord.Event
Source = ConsentRecord.Source
Status = Subscription.Status


# --- confirm / unsubscribe -----------------------------------------------------

class ConfirmOutcome(StrEnum):
    CONFIRMED = "confirmed"
    ALREADY_CONFIRMED = "already_confirmed"
    UNSUBSCRIBED = "unsubscribed"  # cancelled since: a new signup is needed
    SUPPRESSED = "suppressed"
    MISSING = "missing"  # purged or erased


def subscription_for_token(subscription_id: int) -> Subscription | None:
    return (Subscription.objects.select_related("subscriber", "mailing_list")
            .filter(id=subscription_id).first())


def subscription_confirm(*, subscription_id: int, client: Client = Client(),
                         consent_text: ConsentText | None = None) -> ConfirmOutcome:
    """Confirm a pending subscription (from the link's POST). Twice is harmless.

    ``consent_text`` is the version shown on the confirmation page; without it
    the record points to the text of the signup.
    """
    with transaction.atomic():
        subscription = (Subscription.objects.select_for_update()
                        .select_related("subscriber", "mailing_list")
                        .filter(id=subscription_id).first())
        if subscription is None:
            return ConfirmOutcome.MISSING
        if subscription.status == Status.CONFIRMED:
            return ConfirmOutcome.ALREADY_CONFIRMED
        if subscription.status == Status.UNSUBSCRIBED:
            return ConfirmOutcome.UNSUBSCRIBED
        address = subscription.subscriber.email
        if is_suppressed(address):
            return ConfirmOutcome.SUPPRESSED
        if consent_text is None:
            signup = (ConsentRecord.objects.filter(subscription=subscription)
                      .exclude(consent_text=None).order_by("-id").first())
            consent_text = signup.consent_text if signup else None
        subscription.status = Status.CONFIRMED
        subscription.confirmed_at = timezone.now()
        subscription.save(update_fields=["status", "confirmed_at"])
        consent_record_add(event=Event.CONFIRMATION, source=client.source,
                           subscription=subscription, address=address, ip=client.ip,
                           user_agent=client.user_agent,
                           consent_text=consent_text)
    confirm_budget.confirmation_clicked(address, subscription_id)
    return ConfirmOutcome.CONFIRMED


def subscription_unsubscribe(*, subscription_id: int, client: Client = Client(),
                             detail: str = "") -> bool:
    """Unsubscribe at once and record it. False when there was nothing to do."""
    with transaction.atomic():
        subscription = (Subscription.objects.select_for_update()
                        .select_related("subscriber", "mailing_list")
                        .filter(id=subscription_id).first())
        if subscription is None or subscription.status == Status.UNSUBSCRIBED:
            return False
        subscription.status = Status.UNSUBSCRIBED
        subscription.unsubscribed_at = timezone.now()
        subscription.save(update_fields=["status", "unsubscribed_at"])
        consent_record_add(event=Event.UNSUBSCRIBE, source=client.source,
                           subscription=subscription, address=subscription.subscriber.email,
                           ip=client.ip, user_agent=client.user_agent, detail=detail)
    logger.info("newsletter.unsubscribed", extra={"subscription_id": subscription_id,
                                                  "source": client.source})
    return True


def subscriptions_unsubscribe_address(*, address: str, source: str = Source.SYSTEM,
                                      detail: str = "") -> int:
    """Unsubscribe an address from every list (a complaint, for instance)."""
    try:
        address = address_clean(address)
    except InvalidAddress:
        return 0
    ids = list(Subscription.objects.filter(subscriber__email=address)
               .exclude(status=Status.UNSUBSCRIBED).values_list("id", flat=True))
    return sum(subscription_unsubscribe(subscription_id=i, client=Client(source=source),
                                        detail=detail) for i in ids)


# --- housekeeping ---------------------------------------------------------------

def subscriptions_purge_unconfirmed(*, older_than_days: int | None = None,
                                    batch: int = 1000) -> int:
    """Delete pending subscriptions not confirmed in time; the consent log stays."""
    days = older_than_days if older_than_days is not None else conf.PENDING_PURGE_DAYS
    cutoff = timezone.now() - timedelta(days=days)
    stale = Subscription.objects.filter(status=Status.PENDING).filter(
        Q(requested_at__lt=cutoff) | Q(requested_at__isnull=True, created_at__lt=cutoff))
    purged = 0
    while True:
        rows = list(stale.select_related("subscriber", "mailing_list")[:batch])
        if not rows:
            return purged
        with transaction.atomic():
            ConsentRecord.objects.bulk_create([
                ConsentRecord(event=Event.PURGE, source=Source.SYSTEM, subscription=None,
                              mailing_list=s.mailing_list, list_slug=s.mailing_list.slug,
                              address=s.subscriber.email,
                              address_sha256=ConsentRecord.hash_address(s.subscriber.email),
                              detail=f"not confirmed within {days} days")
                for s in rows])
            Subscription.objects.filter(id__in=[s.id for s in rows]).delete()
            Subscriber.objects.filter(id__in={s.subscriber_id for s in rows},
                                      subscriptions__isnull=True).delete()
        purged += len(rows)
