"""Sending's side of bounce intake (deliverability imports nothing of ours).

Imported by ``SendingConfig.ready()``: tells deliverability how to look up a
delivery (its address, provider, pool, mailing) and when an address last
took mail, and marks a delivery bounced when a later bounce report for it
arrives.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone

from deliverability.intake import register_delivery_source
from deliverability.signals import bounce_recorded
from sending.models import Delivery, DeliveryAttempt, Relay, RelayPool

# A report of these kinds means the message did not arrive.
_BOUNCING_KINDS = {"hard", "soft", "block"}
# A bounce proves the message left us; "review" means possibly sent.
_SENT_STATES = (Delivery.State.SENT, Delivery.State.REVIEW)


# The message left us (or may have): only then can a report about it be genuine.
_LEFT_STATES = {Delivery.State.SENT, Delivery.State.BOUNCED, Delivery.State.REVIEW}


def resolve_delivery(delivery_id: int) -> dict | None:
    row = (Delivery.objects.filter(id=delivery_id)
           .values("address", "provider", "mailing_id", "mailing__reference",
                   "mailing__pool_id", "mailing__pool__name", "relay", "subscription_id",
                   "state", "sent_at").first())
    if row is None:
        return None
    pool = row["mailing__pool__name"] or RelayPool.Purpose.BULK.value
    return {"address": row["address"], "provider": row["provider"], "pool": pool,
            "breaker_key": breaker_key_of(pool, row["mailing__pool_id"], row["relay"]),
            "mailing_id": row["mailing_id"], "campaign": row["mailing__reference"],
            "subscription_id": row["subscription_id"],
            "sent": row["state"] in _LEFT_STATES or row["sent_at"] is not None}


def breaker_key_of(pool: str, pool_id: int | None, relay_label: str) -> str:
    """The breaker key the message went out under: the pool and, where the relay it left
    from has its own source address, that egress IP (as at SMTP time, so a block
    reported by a DSN counts against the IP the provider judged, not the whole pool)."""
    from sending.relays import relay_config
    from sending.services import breaker_pool

    name, _, rest = (relay_label or "").partition("(")
    host, _, port = rest.rstrip(")").rpartition(":")
    if not name or not port.isdigit():
        return pool
    relays = Relay.objects.filter(name=name, host=host, port=int(port))
    relays = (relays.filter(pool_id=pool_id) if pool_id is not None
              else relays.filter(pool__purpose=RelayPool.Purpose.BULK))
    relay = relays.first()
    return breaker_pool(pool, relay_config(relay)) if relay is not None else pool


def last_success(address: str, exclude_delivery_ids: Iterable[int]) -> datetime | None:
    """When mail to this address was last accepted without a bounce since."""
    return (Delivery.objects.filter(address__iexact=address, state=Delivery.State.SENT)
            .exclude(id__in=list(exclude_delivery_ids)).exclude(sent_at=None)
            .order_by("-sent_at").values_list("sent_at", flat=True).first())


def on_bounce_recorded(sender, *, delivery_id: int, kind: str, reason: str = "",
                       status: str = "", diagnostic: str = "", **kwargs) -> None:
    if kind not in _BOUNCING_KINDS:
        return
    text = f"{kind}/{reason} {status} {diagnostic}".strip()
    changed = Delivery.objects.filter(id=delivery_id, state__in=_SENT_STATES).update(
        state=Delivery.State.BOUNCED, last_reply=text[:2000])
    if changed:
        DeliveryAttempt.objects.create(delivery_id=delivery_id, at=timezone.now(),
                                       relay="bounce report", enhanced_code=status[:16],
                                       text=text[:2000], kind=kind[:16],
                                       outcome=Delivery.State.BOUNCED)


register_delivery_source(resolve=resolve_delivery, last_success=last_success)
bounce_recorded.connect(on_bounce_recorded, dispatch_uid="sending.bounce_recorded")
