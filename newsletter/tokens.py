"""Signed links: confirm, unsubscribe and preferences.

Tokens are ``django.core.signing`` signatures over an id, each with its own
salt, so one kind can never be used as another and none can be forged or
altered without the secret key. Nothing is stored: checking a token needs no
database lookup.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from functools import lru_cache

from django.conf import settings
from django.core import signing

from newsletter import conf

_CONFIRM = "newsletter.confirm"
_UNSUBSCRIBE = "newsletter.unsubscribe"
_PREFERENCES = "newsletter.preferences"


class _KeyedMixin:
    """Django's signature, with the derived HMAC key computed once per signer rather
    than per call (a campaign signs two links for every recipient). Same bytes out."""

    def signature(self, value, key=None):
        if key is not None and key != self.key:
            return super().signature(value, key)  # a fallback key, while unsigning
        proto = self.__dict__.get("_proto")
        if proto is None:
            derived = hashlib.sha256(f"{self.salt}signer{self.key}".encode()).digest()
            proto = self._proto = hmac.new(derived, digestmod=hashlib.sha256)
        mac = proto.copy()
        mac.update(value.encode())
        return signing.b64_encode(mac.digest()).decode()


class _Signer(_KeyedMixin, signing.Signer):
    pass


class _TimestampSigner(_KeyedMixin, signing.TimestampSigner):
    pass


@lru_cache(maxsize=16)
def _signer(cls, salt: str, secret: str):
    return cls(salt=salt, key=secret)


def _sign(cls, salt: str, value: str) -> str:
    return _signer(cls, salt, settings.SECRET_KEY).sign(value)


class TokenInvalid(Exception):
    """Forged, altered or malformed."""


class TokenExpired(TokenInvalid):
    """Genuine but too old."""


def _unsign_id(token: str, salt: str, max_age_days: int | None) -> int:
    try:
        if max_age_days is None:
            value = signing.Signer(salt=salt).unsign(token)
        else:
            value = signing.TimestampSigner(salt=salt).unsign(
                token, max_age=max_age_days * 86400)
    except signing.SignatureExpired as exc:
        raise TokenExpired(str(exc)) from None
    except signing.BadSignature as exc:
        raise TokenInvalid(str(exc)) from None
    if not value.isdigit():
        raise TokenInvalid("not an id")
    return int(value)


def confirm_token(subscription_id: int) -> str:
    return _sign(_TimestampSigner, _CONFIRM, str(subscription_id))


def confirm_token_read(token: str) -> int:
    return _unsign_id(token, _CONFIRM, conf.CONFIRM_LINK_MAX_AGE_DAYS)


def unsubscribe_token(subscription_id: int) -> str:
    """Never expires: an unsubscribe link must work in any mail ever sent."""
    return _sign(_Signer, _UNSUBSCRIBE, str(subscription_id))


def unsubscribe_token_read(token: str) -> int:
    return _unsign_id(token, _UNSUBSCRIBE, None)


def preferences_token(subscriber_id: int) -> str:
    return _sign(_TimestampSigner, _PREFERENCES, str(subscriber_id))


def preferences_token_read(token: str) -> int:
    return _unsign_id(token, _PREFERENCES, conf.PREFERENCES_LINK_MAX_AGE_DAYS)


# --- mailto unsubscribe (RFC 2369) -------------------------------------------------
# The local part of ``unsubscribe+<token>@<domain>``: the subscription id in base 36
# and 16 base-32 characters (80 bits) of an HMAC, all lower case because some MTAs
# fold local parts. Own key (derived with its own label) and own function, so key
# rotation can change it alone.
_MAILTO_LABEL = b"postwarden-unsubscribe-mailto:"
_MAILTO_SHAPE = re.compile(r"^([0-9a-z]{1,13})-([a-z2-7]{16})$")


@lru_cache(maxsize=4)
def _mailto_keyed(secret: str) -> hmac.HMAC:
    return hmac.new(hashlib.sha256(_MAILTO_LABEL + secret.encode()).digest(),
                    digestmod=hashlib.sha256)


def _mailto_mac(subscription_id: int) -> str:
    mac = _mailto_keyed(settings.SECRET_KEY).copy()
    mac.update(str(subscription_id).encode())
    return base64.b32encode(mac.digest()[:10]).decode().lower()


def _base36(number: int) -> str:
    digits, out = "0123456789abcdefghijklmnopqrstuvwxyz", ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def unsubscribe_mailto_token(subscription_id: int) -> str:
    """Never expires, like the unsubscribe link: it may be used years later."""
    if subscription_id < 0:
        raise ValueError("subscription id must be positive")
    return f"{_base36(subscription_id)}-{_mailto_mac(subscription_id)}"


def unsubscribe_mailto_token_read(token: str) -> int:
    match = _MAILTO_SHAPE.match(token.strip().lower())
    if not match:
        raise TokenInvalid("not a mailto unsubscribe token")
    subscription_id = int(match.group(1), 36)
    if not hmac.compare_digest(_mailto_mac(subscription_id), match.group(2)):
        raise TokenInvalid("bad signature")
    return subscription_id
