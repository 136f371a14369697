"""Raw inbound messages are kept 30 days (BOUNCE_RAW_RETENTION_DAYS), their events for good.

The raw bytes serve re-classification after a rule change and an operator's
look at an odd bounce; after the period only the parsed events remain (the
message row keeps its key, so a late duplicate is still recognised).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from config.env import env_int
from deliverability.models import InboundMessage

logger = logging.getLogger(__name__)


def raw_retention_days() -> int:
    return env_int("BOUNCE_RAW_RETENTION_DAYS", 30, minimum=1)


def prune_raw_messages(*, days: int | None = None, batch: int = 1000) -> int:
    cutoff = timezone.now() - timedelta(days=days or raw_retention_days())
    total = 0
    while True:
        ids = list(InboundMessage.objects.filter(received_at__lt=cutoff, size__gt=0)
                   .order_by("id").values_list("id", flat=True)[:batch])
        if not ids:
            return total
        total += InboundMessage.objects.filter(id__in=ids).update(raw_compressed=b"", size=0,
                                                                      stored_bytes=0)


def raw_quota_bytes() -> int:
    from deliverability import conf

    return conf.BOUNCE_RAW_QUOTA_BYTES


def raw_quota_enforce(*, quota: int | None = None) -> int:
    """Past the quota, prune raw bytes oldest first until under it, and alert once.

    Returns how many messages lost their raw bytes. Their events and key stay, so
    a late duplicate is still recognised and nothing decided is lost.
    """
    from django.db.models import Sum

    from deliverability.signals import raw_quota_reached

    quota = quota or raw_quota_bytes()
    total = InboundMessage.objects.aggregate(total=Sum("stored_bytes"))["total"] or 0
    if total <= quota:
        return 0
    pruned, over = 0, total - int(quota * 0.9)  # down to 90 %: not one prune per message
    rows = (InboundMessage.objects.filter(stored_bytes__gt=0).order_by("received_at", "id")
            .values_list("id", "stored_bytes"))
    ids = []
    for message_id, stored in rows.iterator(chunk_size=500):
        ids.append(message_id)
        over -= stored
        if over <= 0:
            break
    for start in range(0, len(ids), 500):
        pruned += InboundMessage.objects.filter(id__in=ids[start:start + 500]).update(
            raw_compressed=b"", size=0, stored_bytes=0)
    logger.warning("bounce raw storage over its quota: %s of %s bytes; pruned %s oldest",
                   total, quota, pruned)
    raw_quota_reached.send(sender=None, total_bytes=total, quota_bytes=quota, pruned=pruned)
    return pruned
