"""Our sending identity for deliverability's header analyser and pre-flight checks.

Before ``make migrate`` it is the configuration's alone (the default relay and
From domain), so explaining headers needs no database.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.conf import settings

from config.database import tables_ready
from deliverability.preflight import DomainTarget, RelayTarget
from deliverability.received import OurIdentity
from sending import conf
from sending.dkim import dns_record, load_private_key
from sending.models import Mailing, Relay
from sending.relays import parse_relay_url


def _public_ip(host: str) -> str | None:
    try:
        ip = ipaddress.ip_address(socket.gethostbyname(host))
    except (OSError, ValueError):
        return None
    return None if ip.is_loopback or ip.is_private else str(ip)


def relay_targets() -> list[RelayTarget]:
    targets = []
    relays = list(Relay.objects.filter(enabled=True)) if tables_ready(Relay) else []
    configs = [(r.host, r.port, r.helo_name, r.source_address) for r in relays] or [
        (c.host, c.port, c.helo_name, None) for c in [parse_relay_url(settings.DEFAULT_RELAY_URL)]]
    for host, port, helo, source in configs:
        ip = source or _public_ip(host)
        targets.append(RelayTarget(ip=ip or "", helo=helo, host=host, port=port))
    return targets


def dkim_keys(key_dir: Path) -> dict[str, dict[str, str]]:
    """domain -> selector -> public key (base64) for every key in the key folder."""
    found: dict[str, dict[str, str]] = {}
    if not key_dir.is_dir():
        return found
    for path in sorted(key_dir.glob("*/*.pem")):
        try:
            key = load_private_key(path.read_bytes())
        except (ValueError, OSError):
            continue
        if isinstance(key, ed25519.Ed25519PrivateKey):
            public = key.public_key().public_bytes(serialization.Encoding.Raw,
                                                   serialization.PublicFormat.Raw)
        else:
            public = key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        found.setdefault(path.parent.name, {})[path.stem] = base64.b64encode(public).decode()
    return found


def _records(key_dir: Path) -> dict[bytes, bytes]:
    records = {}
    for path in key_dir.glob("*/*.pem"):
        try:
            record = dns_record(load_private_key(path.read_bytes()))
        except (ValueError, OSError):
            continue
        records[f"{path.stem}._domainkey.{path.parent.name}.".encode()] = record.encode()
    return records


def from_domains() -> list[str]:
    domains = {settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].lower()}
    recent = (Mailing.objects.order_by("-id").values_list("from_email", flat=True)[:200]
              if tables_ready(Mailing) else [])
    for from_email in recent:
        address = from_email.rpartition("<")[2].rstrip(">").strip()
        if "@" in address:
            domains.add(address.rpartition("@")[2].lower())
    return sorted(d for d in domains if d)


def build_identity() -> OurIdentity:
    config = conf.get()
    keys = dkim_keys(config.dkim_key_dir)
    records = _records(config.dkim_key_dir)

    def verify(data: bytes) -> bool:
        # Verify against our own keys, not public DNS: "is this our signature?"
        return dkim.verify(data, dnsfunc=lambda name, timeout=5: records.get(name, b""))

    relays = relay_targets()
    domains = from_domains()
    return OurIdentity(
        relay_ips={r.ip for r in relays if r.ip},
        message_id_domains=set(domains),
        dkim_domains=set(keys),
        dkim_verify=verify,
        relays=relays,
        domains=[DomainTarget(domain, dkim=keys.get(domain, {}))
                 for domain in sorted(set(domains) | set(keys))],
        from_domains=domains,
        return_path_domain=config.bounce_domain,
    )
