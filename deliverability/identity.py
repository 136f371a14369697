"""What identifies mail sent through us: relay IPs, Message-ID domains, VERP, DKIM.

``deliverability`` cannot import ``sending``, which knows the relays and keys;
``sending`` registers a provider of this identity at start-up.
"""

from __future__ import annotations

from collections.abc import Callable

from deliverability.received import OurIdentity

_provider: Callable[[], OurIdentity] | None = None


def register_identity_provider(provider: Callable[[], OurIdentity]) -> None:
    global _provider
    _provider = provider


def current_identity() -> OurIdentity:
    from deliverability import verp

    identity = _provider() if _provider else OurIdentity()
    if identity.verp_decode is None:
        identity.verp_decode = lambda address: verp.decode(address, prefix=None)
    return identity
