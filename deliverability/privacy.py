"""What deliverability stores about one address, for a subscriber's export and erasure.

Bounce events naming the address or one of its deliveries, the raw inbound
messages they came in, and the suppression entry. Erasure keeps each event's
classification (kind, reason, provider: the provider's figures stay true) but
removes the address and the texts quoting it, drops the raw message (it quotes
the address; the row keeps its key, so a late duplicate is still recognised)
and leaves the suppression as a hash only.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q

from config.addresses import address_normalise
from config.redact import without_address
from deliverability.models import BounceEvent, InboundMessage, Suppression
from deliverability.suppression import hashed, suppression_pseudonymise


def _events(address: str, delivery_ids: list[int]):
    return BounceEvent.objects.filter(Q(address=address_normalise(address))
                                      | Q(recipient__iexact=address)
                                      | Q(delivery_id__in=delivery_ids))


def _when(value):
    return value.isoformat() if value else None


def bounce_records_export(*, address: str, delivery_ids: list[int]) -> dict:
    events = list(_events(address, delivery_ids).select_related("message").order_by("id"))
    entry = Suppression.objects.filter(
        address__in=[address_normalise(address), hashed(address)]).first()
    return {
        "bounce_events": [
            {"at": _when(e.created_at), "delivery_id": e.delivery_id, "recipient": e.recipient,
             "kind": e.kind, "reason": e.reason, "status": e.status, "smtp_code": e.smtp_code,
             "diagnostic": e.diagnostic, "remote_mta": e.remote_mta, "provider": e.provider,
             "action": e.action,
             "message": {"received_at": _when(e.message.received_at),
                         "source": e.message.source, "subject": e.message.subject,
                         "raw": e.message.raw.decode("utf-8", "replace")}}
            for e in events],
        "suppression": ({"reason": entry.reason, "since": _when(entry.created_at),
                         "source": entry.source} if entry else None),
    }


def bounce_records_erase(*, address: str, delivery_ids: list[int], suppress_reason: str,
                         source: str) -> int:
    """Erase the address from deliverability's tables, keeping it suppressed as a hash."""
    spellings = {address, address_normalise(address)}

    def clean(text: str) -> str:
        for spelling in spellings:
            text = without_address(text, spelling)
        return text

    with transaction.atomic():
        events = list(_events(address, delivery_ids))
        spellings |= {e.recipient for e in events if e.recipient} | {
            e.address for e in events if e.address}
        for event in events:
            event.recipient, event.address = "", ""
            event.diagnostic, event.action_detail = clean(event.diagnostic), clean(
                event.action_detail)
        BounceEvent.objects.bulk_update(
            events, ["recipient", "address", "diagnostic", "action_detail"], batch_size=500)
        for message in InboundMessage.objects.filter(id__in={e.message_id for e in events}):
            message.raw_compressed, message.size = b"", 0
            message.envelope_recipients = clean(message.envelope_recipients)
            message.subject, message.error = clean(message.subject), clean(message.error)
            message.save(update_fields=["raw_compressed", "size", "envelope_recipients",
                                        "subject", "error"])
        suppression_pseudonymise(address=address, reason=suppress_reason, source=source)
    return len(events)
