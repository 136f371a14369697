"""Which relays serve a pool, as plain values the SMTP code can use.

A relay's password is never stored: the relay names where it is, and only two
places are allowed, so that nobody who may edit a relay can make the service
send another secret (``DJANGO_SECRET_KEY``, ``DATABASE_URL``...) to a server of
their choosing in AUTH:

- an environment variable whose name starts with ``RELAY_PASSWORD_``;
- a file of that same name in ``RELAY_SECRETS_DIR`` (e.g. ``/run/secrets``, where
  docker and Kubernetes mount secrets), read when the variable is not set.

Any other name is refused by the admin form, by the system check
``sending.E001`` (``manage.py check`` and every start-up, for ``DEFAULT_RELAY_URL``)
and, should one be in the database from before, at use: the relay gets no password.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from django.conf import settings

from config.env import env_str
from sending.models import Relay, RelayPool

logger = logging.getLogger(__name__)

PASSWORD_PREFIX = "RELAY_PASSWORD_"  # noqa: S105 - the start of a name, not a password
_PASSWORD_NAME = re.compile(rf"{PASSWORD_PREFIX}[A-Z0-9_]{{1,100}}")


class RelaySecretError(ValueError):
    """A relay names its password somewhere it may not be read from."""


def password_name_check(name: str) -> str:
    """``name`` if a relay may read its password from it (empty: no password)."""
    if name and not _PASSWORD_NAME.fullmatch(name):
        raise RelaySecretError(
            f"{name!r} is not a relay password variable: the name must start with "
            f"{PASSWORD_PREFIX} and have only capital letters, digits and _ (e.g. "
            f"{PASSWORD_PREFIX}MAIN), set as an environment variable or as a file of "
            "that name in RELAY_SECRETS_DIR")
    return name


def relay_password(name: str) -> str:
    """The password named ``name``: the variable, else the file in RELAY_SECRETS_DIR."""
    if not name:
        return ""
    password_name_check(name)
    value = os.environ.get(name)
    if value is not None:
        return value
    directory = env_str("RELAY_SECRETS_DIR")
    if directory:
        path = Path(directory) / name  # the name has no "/" or ".": stays in the folder
        try:
            return path.read_text().rstrip("\r\n")
        except FileNotFoundError:
            pass
    return ""


def _password_or_nothing(name: str, relay: str) -> str:
    try:
        return relay_password(name)
    except RelaySecretError as error:
        logger.error("relay.password_refused", extra={"relay": relay, "error": str(error)})
        return ""


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

    The password is never in the URL: ``?password_env=RELAY_PASSWORD_NAME`` names it.
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
        password=_password_or_nothing(password_env, name),
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
        password=_password_or_nothing(relay.password_env, relay.name),
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


def default_relay_password_name(url: str) -> str:
    """The ``password_env`` of a relay URL (empty when it has none)."""
    return parse_qs(urlsplit(url).query).get("password_env", [""])[0]
