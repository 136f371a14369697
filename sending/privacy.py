"""What sending stores about one address, for a subscriber's export and erasure.

Deliveries (one per mailing sent to the address), their SMTP attempts and the
transactional mails (confirmations) addressed to it. Erasure cancels
deliveries not sent yet, pseudonymises all of them (the counts per mailing and
provider stay true) and removes the address from the SMTP replies quoting it;
transactional mails to it are deleted. Called by newsletter.services.privacy (export, erase).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import CharField, Q, Value
from django.db.models.functions import Cast, Concat

from config.addresses import address_normalise
from config.redact import without_address
from sending.models import Delivery, DeliveryAttempt, TransactionalEmail

ERASED_DOMAIN = "erased.invalid"  # RFC 2606: never a real domain


def _deliveries(address: str, subscription_ids: list[int]):
    return Delivery.objects.filter(Q(address=address_normalise(address)) | Q(address=address)
                                   | Q(subscription_id__in=subscription_ids))


def _when(value):
    return value.isoformat() if value else None


def sending_records_export(*, address: str, subscription_ids: list[int]) -> dict:
    deliveries = list(_deliveries(address, subscription_ids).select_related("mailing")
                      .order_by("id"))
    attempts: dict[int, list] = {}
    for attempt in DeliveryAttempt.objects.filter(
            delivery_id__in=[d.id for d in deliveries]).order_by("at", "id"):
        attempts.setdefault(attempt.delivery_id, []).append({
            "at": _when(attempt.at), "relay": attempt.relay, "code": attempt.code,
            "enhanced_code": attempt.enhanced_code, "reply": attempt.text,
            "kind": attempt.kind, "outcome": attempt.outcome})
    transactional = TransactionalEmail.objects.filter(to__iexact=address).order_by("id")
    return {
        "deliveries": [
            {"id": d.id, "mailing": d.mailing.reference, "subject": d.mailing.subject_template,
             "address": d.address, "provider": d.provider, "state": d.state,
             "sent_at": _when(d.sent_at), "last_reply": d.last_reply,
             "message_id": d.message_id, "attempts": attempts.get(d.id, [])}
            for d in deliveries],
        "transactional_mails": [
            {"purpose": m.purpose, "subject": m.subject, "state": m.state,
             "created_at": _when(m.created_at), "sent_at": _when(m.sent_at),
             "from": m.from_email, "body_text": m.body_text}
            for m in transactional],
    }


def sending_records_erase(*, address: str, subscription_ids: list[int]) -> list[int]:
    """Erase the address from sending's tables; returns the ids of its deliveries."""
    with transaction.atomic():
        rows = list(_deliveries(address, subscription_ids).values_list("id", "address",
                                                                        "last_reply"))
        ids = [row[0] for row in rows]
        spellings = {address, address_normalise(address)} | {row[1] for row in rows}
        for delivery_id, _old, reply in rows:
            clean = reply
            for spelling in spellings:
                clean = without_address(clean, spelling)
            if clean != reply:
                Delivery.objects.filter(id=delivery_id).update(last_reply=clean)
        # Not yet sent: never sent now (a row a worker holds is already on its way).
        Delivery.objects.filter(id__in=ids, state__in=[Delivery.State.QUEUED,
                                                       Delivery.State.DEFERRED]).update(
            state=Delivery.State.CANCELLED, next_attempt_at=None, last_reply="recipient erased")
        Delivery.objects.filter(id__in=ids).update(
            subscription_id=None,
            address=Concat(Value("erased-"), Cast("id", CharField()),
                           Value(f"@{ERASED_DOMAIN}")))
        for attempt in DeliveryAttempt.objects.filter(delivery_id__in=ids).only("id", "text"):
            clean = attempt.text
            for spelling in spellings:
                clean = without_address(clean, spelling)
            if clean != attempt.text:
                DeliveryAttempt.objects.filter(id=attempt.id).update(text=clean)
        TransactionalEmail.objects.filter(to__iexact=address).delete()
    return ids
