"""Raw inbound messages are kept 30 days (BOUNCE_RAW_RETENTION_DAYS), their events for good.

The raw bytes serve re-classification after a rule change and an operator's
look at an odd bounce; after the period only the parsed events remain (the
message row keeps its key, so a late duplicate is still recognised).
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from config.env import env_int
from deliverability.models import InboundMessage


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
        total += InboundMessage.objects.filter(id__in=ids).update(raw_compressed=b"", size=0)
