"""VERP return paths: ``bounces+<token>@<bounce domain>`` identifies one delivery.

The token is the delivery id in base 36, a dash, and a short HMAC of it
(10 base-32 characters, 50 bits), so a bounce can be matched to its delivery
and a forged address is refused. Everything is lower case: some MTAs fold
the local part. The key is the ``verp`` key derived from ``SECRET_KEY``
(``config.keys``); addresses made with a key in ``SECRET_KEY_FALLBACKS`` still
decode, so a bounce or complaint for mail sent before a rotation is matched.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from functools import lru_cache

from django.conf import settings

from config import keys

_TOKEN = re.compile(r"^([a-z0-9_.-]+)\+([0-9a-z]{1,13})-([a-z2-7]{10})$")
_BARE_TOKEN = re.compile(r"^([0-9a-z]{1,13})-([a-z2-7]{10})$")


@lru_cache(maxsize=8)
def _keyed(secret: str) -> hmac.HMAC:
    """An HMAC keyed once per secret; each token copies it (one per message sent)."""
    return hmac.new(keys.derive(keys.VERP, secret), digestmod=hashlib.sha256)


def current_secret() -> str:
    """The secret VERP tokens are made with now (callers that make many may keep it)."""
    return settings.SECRET_KEY


def _mac(delivery_id: int, secret: str) -> str:
    mac = _keyed(secret).copy()
    mac.update(str(delivery_id).encode())
    digest = mac.digest()
    return base64.b32encode(digest[:7]).decode().lower()[:10]


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def token(delivery_id: int, *, secret: str | None = None) -> str:
    if delivery_id < 0:
        raise ValueError("delivery id must be positive")
    return f"{_base36(delivery_id)}-{_mac(delivery_id, secret or current_secret())}"


def encode(delivery_id: int, domain: str, *, prefix: str = "bounces",
           secret: str | None = None) -> str:
    """The return path for a delivery, e.g. ``bounces+2n9c-k3jd8skd0a@bounce.example.org``."""
    return f"{prefix}+{token(delivery_id, secret=secret)}@{domain}"


def decode(address: str, *, prefix: str | None = "bounces",
           secret: str | None = None) -> int | None:
    """The delivery id in a VERP address, or None (not ours, or forged).

    Accepts the address with or without angle brackets; ``prefix=None`` accepts
    any prefix (``bounces``, ``unsubscribe``).
    """
    local = address.strip().strip("<>").rpartition("@")[0].lower()
    match = _TOKEN.match(local)
    if not match or (prefix is not None and match.group(1) != prefix):
        return None
    return _checked(match.group(2), match.group(3), secret)


def decode_token(value: str, *, secret: str | None = None) -> int | None:
    """The delivery id of a bare token (the signed ``X-PW-Delivery`` header), or None."""
    match = _BARE_TOKEN.match(value.strip().lower())
    return _checked(match.group(1), match.group(2), secret) if match else None


def _checked(number: str, mac: str, secret: str | None) -> int | None:
    try:
        delivery_id = int(number, 36)
    except ValueError:
        return None
    for candidate in [secret] if secret else keys.secrets():  # current key, then fallbacks
        if hmac.compare_digest(_mac(delivery_id, candidate), mac):
            return delivery_id
    return None
