"""Which relays serve a pool, as plain values the SMTP code can use."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from django.conf import settings

from sending.models import Relay, RelayPool


@dataclass(frozen=True)
class RelayConfig:
    name: str
    host: str
    port: int
    tls_mode: str = Relay.TLSMode.NONE
    verify_certificate: bool = True
    username: str = ""
    password: str = ""
    helo_name: str = ""
    source_address: str | None = None
    max_connections: int = 4
    max_rate_per_s: float = 50.0

    @property
    def label(self) -> str:
        return f"{self.name}({self.host}:{self.port})"


def parse_relay_url(url: str, *, name: str = "default") -> RelayConfig:
    """``smtp://[user@]host:port`` (no TLS), ``smtp+starttls://``, ``smtps://`` (implicit TLS).

    The password is never in the URL: ``?password_env=NAME`` names the variable.
    """
    parts = urlsplit(url)
    tls_mode = {
        "smtp": Relay.TLSMode.NONE,
        "smtp+starttls": Relay.TLSMode.STARTTLS,
        "smtps": Relay.TLSMode.IMPLICIT,
    }[parts.scheme]
    query = parse_qs(parts.query)
    password_env = query.get("password_env", [""])[0]
    return RelayConfig(
        name=name,
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (465 if tls_mode == Relay.TLSMode.IMPLICIT else 25),
        tls_mode=tls_mode,
        verify_certificate=query.get("verify", ["true"])[0] != "false",
        username=unquote(parts.username or ""),
        password=os.environ.get(password_env, "") if password_env else "",
        helo_name=query.get("helo", [""])[0],
        max_rate_per_s=float(query.get("max_rate", ["50"])[0]),
        max_connections=int(query.get("max_connections", ["4"])[0]),
    )


def relay_config(relay: Relay) -> RelayConfig:
    return RelayConfig(
        name=relay.name,
        host=relay.host,
        port=relay.port,
        tls_mode=relay.tls_mode,
        verify_certificate=relay.verify_certificate,
        username=relay.username,
        password=os.environ.get(relay.password_env, "") if relay.password_env else "",
        helo_name=relay.helo_name,
        source_address=relay.source_address,
        max_connections=relay.max_connections,
        max_rate_per_s=relay.max_rate_per_s,
    )


def relays_for(purpose: str) -> list[RelayConfig]:
    """Enabled relays of the pools with this purpose, by priority; else the default relay."""
    relays = Relay.objects.filter(pool__purpose=purpose, enabled=True).order_by("priority", "id")
    configs = [relay_config(relay) for relay in relays]
    if configs:
        return configs
    return [parse_relay_url(settings.DEFAULT_RELAY_URL)]


def relays_for_pool(pool: RelayPool | None) -> list[RelayConfig]:
    """Enabled relays of this pool by priority; else those of the bulk purpose, else the default.

    ``max_rate_per_s`` of 0 means the relay itself sets no limit.
    """
    if pool is None:
        return relays_for(RelayPool.Purpose.BULK)
    relays = pool.relays.filter(enabled=True).order_by("priority", "id")
    configs = [relay_config(relay) for relay in relays]
    return configs or [parse_relay_url(settings.DEFAULT_RELAY_URL)]


def ensure_default_pools() -> None:
    """Create the two pools (empty: they then use DEFAULT_RELAY_URL) if missing."""
    for purpose in RelayPool.Purpose.values:
        RelayPool.objects.get_or_create(name=purpose, defaults={"purpose": purpose})
