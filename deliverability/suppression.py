"""Service functions over the suppression list.

An entry holds the normalised address, or, once its person was erased, only
``sha256:<hex>`` of it (``config.addresses.address_digest``): the address is
gone from the database but stays suppressed, since every check looks for both.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.db import connection, transaction

from config.addresses import address_digest, address_normalise
from deliverability.models import Suppression
from deliverability.signals import address_suppressed


def normalise(address: str) -> str:
    """The project's one normalisation (config.addresses): lower case, IDNA domain."""
    return address_normalise(address)


HASHED = "sha256:"


def hashed(address: str) -> str:
    """The form an erased person's entry keeps."""
    return HASHED + address_digest(address)


def is_suppressed(address: str) -> bool:
    return Suppression.objects.filter(address__in=[normalise(address), hashed(address)]).exists()


def suppressed_among(addresses: Iterable[str]) -> set[str]:
    """The normalised addresses of ``addresses`` that are suppressed, plainly or by hash."""
    wanted = {normalise(a) for a in addresses}
    by_hash = {hashed(a): a for a in wanted}
    keys = [*wanted, *by_hash]
    found: set[str] = set()
    # One parameter per query, not one per address: Django binds (and on PostgreSQL
    # quotes) every element of an IN list on the client, which cost more per address
    # than the whole lookup.
    table = connection.ops.quote_name(Suppression._meta.db_table)
    if connection.vendor == "postgresql":
        sql = f"SELECT address FROM {table} WHERE address = ANY(%s)"  # noqa: S608
        param = list
    else:
        sql = (f"SELECT address FROM {table} "  # noqa: S608
               "WHERE address IN (SELECT value FROM json_each(%s))")
        param = json.dumps
    with connection.cursor() as cursor:
        for start in range(0, len(keys), 20_000):
            cursor.execute(sql, [param(keys[start:start + 20_000])])
            found.update(by_hash.get(a, a) for (a,) in cursor.fetchall())
    return found


def suppression_pseudonymise(*, address: str, reason: str = Suppression.Reason.ERASED,
                             source: str = "") -> Suppression:
    """Keep the address suppressed, by its hash only (erasure).

    An existing entry keeps its reason and date but loses the address and the
    detail text (a bounce's diagnostic quotes the address); with none, a new
    entry of ``reason`` is made. No announcement: there is nobody left to act on.
    """
    digest = hashed(address)
    with transaction.atomic():
        plain = Suppression.objects.select_for_update().filter(address=normalise(address)).first()
        entry = Suppression.objects.filter(address=digest).first()
        if entry is None and plain is not None:
            plain.address, plain.detail = digest, ""
            plain.save(update_fields=["address", "detail"])
            return plain
        if plain is not None:
            plain.delete()
        if entry is None:
            entry = Suppression.objects.create(address=digest, reason=reason, source=source)
    return entry


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
    deleted, _ = Suppression.objects.filter(
        address__in=[normalise(address), hashed(address)]).delete()
    return bool(deleted)
