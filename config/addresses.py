"""The one normalisation of e-mail addresses, used wherever two are compared or stored.

Lower case throughout and an IDNA (ASCII) domain. RFC 5321 (2.4) lets a server
treat the local part as case-sensitive but tells it not to define mailboxes
that depend on case, and no provider does: ``Bob@example.org`` and
``bob@example.org`` are one person, who unsubscribes, bounces and is
suppressed once. The classifier, the suppression list, the subscriber table,
the sending ledger and the bounce intake all go through this function.
"""

from __future__ import annotations

import hashlib


def address_normalise(address: str) -> str:
    """``" Bob@Exämple.ORG "`` -> ``"bob@xn--exmple-cua.org"``; never raises."""
    value = address.strip()
    local, at, domain = value.rpartition("@")
    if not at or not local:
        return value.lower()
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            pass
    return f"{local}@{domain}".lower()


def address_digest(address: str) -> str:
    """SHA-256 of the normalised address: what remains of an erased address."""
    return hashlib.sha256(address_normalise(address).encode("utf-8", "surrogatepass")).hexdigest()
