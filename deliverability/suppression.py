"""Service functions over the suppression list."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from deliverability.models import Suppression
from deliverability.signals import address_suppressed


def normalise(address: str) -> str:
    """Lower-cased, IDNA-encoded domain; the local part is kept as typed."""
    local, _, domain = address.strip().rpartition("@")
    if not local:
        return address.strip()
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    return f"{local}@{domain.lower()}"


def is_suppressed(address: str) -> bool:
    return Suppression.objects.filter(address=normalise(address)).exists()


def suppressed_among(addresses: Iterable[str]) -> set[str]:
    """The normalised addresses of ``addresses`` that are suppressed (one query per 1,000)."""
    wanted = [normalise(a) for a in addresses]
    found: set[str] = set()
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start:start + 1000]
        rows = Suppression.objects.filter(address__in=chunk).values_list("address", flat=True)
        found.update(rows)
    return found


def suppress(*, address: str, reason: str, detail: str = "", source: str = "",
             source_event_id: int | None = None) -> Suppression:
    """Suppress an address (idempotent: the first reason is kept) and announce it."""
    address = normalise(address)
    with transaction.atomic():
        entry, created = Suppression.objects.get_or_create(
            address=address,
            defaults={"reason": reason, "detail": detail[:2000], "source": source,
                      "source_event_id": source_event_id},
        )
    if created:
        transaction.on_commit(lambda: address_suppressed.send(
            sender=None, address=address, reason=reason, source=source))
    return entry


def unsuppress(*, address: str) -> bool:
    deleted, _ = Suppression.objects.filter(address=normalise(address)).delete()
    return bool(deleted)
