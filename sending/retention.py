"""Keep the delivery log for months, then prune it in batches; export a period of it.

Providers' delisting forms ask for timestamps and exact replies, and problems
show up as trends over weeks: SMTP attempts are kept ``LOG_RETENTION_DAYS``
(180 by default) and removed afterwards in small batches, so pruning never
locks the tables for long.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.utils import timezone

from config.env import env_int
from sending.models import Delivery, DeliveryAttempt

BATCH = 5000


def retention_days() -> int:
    return env_int("LOG_RETENTION_DAYS", 180, minimum=30)


def prune_attempts(*, days: int | None = None, batch: int = BATCH) -> int:
    """Delete SMTP attempts older than the retention period; returns how many."""
    cutoff = timezone.now() - timedelta(days=days or retention_days())
    total = 0
    while True:
        ids = list(DeliveryAttempt.objects.filter(at__lt=cutoff)
                   .order_by("id").values_list("id", flat=True)[:batch])
        if not ids:
            return total
        total += DeliveryAttempt.objects.filter(id__in=ids).delete()[0]


FIELDS = ("at", "mailing_id", "delivery_id", "address", "provider", "relay", "code",
          "enhanced_code", "kind", "outcome", "text")


def log_rows(since: datetime, until: datetime) -> Iterator[dict]:
    """Every SMTP attempt in [since, until), oldest first, streamed."""
    rows = (DeliveryAttempt.objects.filter(at__gte=since, at__lt=until).order_by("at", "id")
            .values_list("at", "delivery__mailing_id", "delivery_id", "delivery__address",
                         "delivery__provider", "relay", "code", "enhanced_code", "kind",
                         "outcome", "text"))
    for row in rows.iterator(chunk_size=2000):
        record = dict(zip(FIELDS, row, strict=True))
        record["at"] = record["at"].isoformat()
        yield record


def export_log(out, *, since: datetime, until: datetime, fmt: str = "csv") -> int:
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()
        for record in log_rows(since, until):
            writer.writerow(record)
            count += 1
    elif fmt == "jsonl":
        for record in log_rows(since, until):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    else:
        raise ValueError(f"unknown format {fmt!r} (csv or jsonl)")
    return count


def open_deliveries_older_than(days: int) -> int:
    """How many deliveries are still open after ``days`` (for the report; should be 0)."""
    cutoff = timezone.now() - timedelta(days=days)
    return Delivery.objects.filter(state__in=Delivery.OPEN_STATES,
                                   mailing__created_at__lt=cutoff).count()
