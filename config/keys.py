"""Keys derived from ``SECRET_KEY``, one per purpose, with the rotation fallbacks.

Each purpose (``links``: confirm, unsubscribe and preference tokens; ``verp``:
return paths; ``test-mail``: the links of a test send, which never act;
``webhook`` has its own secret, see deliverability.webhooks) gets
its own key, ``sha256("postwarden-<purpose>:" + secret)``, so no signature made
for one purpose verifies for another, nor for Django's own uses of the secret
key (sessions, password resets). The ``verp`` derivation is the one VERP always
used, so return paths sent before keep decoding.

Rotation (README, "Key rotation"): the new key becomes ``DJANGO_SECRET_KEY``, the
old one moves to ``DJANGO_SECRET_KEY_FALLBACKS``. New tokens use the first,
readers accept every key derived from either, so links and return paths already
sent keep working for as long as the old key stays listed.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from django.conf import settings

LINKS = "links"
VERP = "verp"
TEST_MAIL = "test-mail"  # the links of a campaign's test send (newsletter.testsend)


@lru_cache(maxsize=32)
def derive(purpose: str, secret: str) -> bytes:
    """The 32-byte key of ``purpose`` derived from ``secret``."""
    return hashlib.sha256(f"postwarden-{purpose}:".encode() + secret.encode()).digest()


def secrets() -> list[str]:
    """The secret key first, then its fallbacks (old keys still accepted), without repeats."""
    found = [settings.SECRET_KEY]
    for key in getattr(settings, "SECRET_KEY_FALLBACKS", ()) or ():
        if key and key not in found:
            found.append(key)
    return found


def current(purpose: str) -> bytes:
    """The key new signatures of ``purpose`` are made with."""
    return derive(purpose, settings.SECRET_KEY)


def accepted(purpose: str) -> list[bytes]:
    """Every key a signature of ``purpose`` may verify with, the current one first."""
    return [derive(purpose, secret) for secret in secrets()]
